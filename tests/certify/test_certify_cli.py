"""``callout-harness certify run``: the same bundle for runs made without pytest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from harness.certify.verify import verify
from harness.cli import main
from tests.certify.helpers import PEND_CONNECT, PLAIN_CONNECT, needs_sim

pytestmark = needs_sim
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "pend-connect.toml").write_text(PEND_CONNECT)
    (folder / "plain-connect.toml").write_text(PLAIN_CONNECT)
    return folder


def _run(catalog: Path, out: Path, *extra: str) -> int:
    return main(["certify", "run", "--scenarios-dir", str(catalog), "--callout",
                 "mutant:forgets_complete", "--out", str(out), *extra])


def test_certify_run_writes_the_bundle_and_fails_on_a_red_item(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    manifest = ROOT / "drivers" / "probe" / "driver.toml"
    assert _run(catalog, bundle, "--driver", str(manifest)) == 1
    out = capsys.readouterr().out
    assert f"1 passed, 1 failed; bundle {bundle} and bundle.tar.gz" in out
    assert verify(bundle).problems == []
    assert verify(tmp_path / "bundle.tar.gz").problems == []
    results = json.loads((bundle / "results.json").read_text())
    assert {i["id"]: i["outcome"] for i in results["items"]} == {
        "pend-connect[sim]": "failed", "plain-connect[sim]": "passed"}
    junit = (bundle / "junit.xml").read_text()
    assert '<testcase classname="scenarios.pend-connect" name="pend-connect[sim]"' in junit
    assert '<property name="rules" value="PC001' in junit
    assert '<failure message="PC001 broken: pend ctx' in junit
    env = json.loads((bundle / "environment.json").read_text())
    assert env["driver"]["name"] == "probe"
    assert env["driver"]["files"]["inf"]["sha256"]
    assert env["command"]["command"] == "callout-harness certify run"
    assert env["command"]["options"]["callout"] == "mutant:forgets_complete"


def test_certify_run_with_errata_and_retries(catalog: Path, tmp_path: Path) -> None:
    today = dt.date.today()
    errata = tmp_path / "errata.toml"
    errata.write_text(
        '[[known]]\nscenario = "pend-*"\ntarget = "sim"\nreason = "bug 1234"\nowner = "bob"\n'
        f"created = {today - dt.timedelta(days=3)}\nexpires = {today + dt.timedelta(days=3)}\n")
    bundle = tmp_path / "bundle"
    assert _run(catalog, bundle, "--errata", str(errata), "--retries", "1") == 0
    results = json.loads((bundle / "results.json").read_text())
    item = next(i for i in results["items"] if i["scenario"] == "pend-connect")
    assert item["outcome"] == "known"
    assert len(item["attempts"]) == 2  # retried once, failed both times, then judged known
    assert results["errata"]["matched"] == [
        "rule=* scenario=pend-* target=sim os_build=*"]
    assert '<property name="harness_outcome" value="known" />' in (bundle / "junit.xml").read_text()


def test_certify_run_rejects_a_bad_errata_file(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    errata = tmp_path / "errata.toml"
    errata.write_text('[[known]]\nrule = "PC001"\ntarget = "win[11"\nreason = "r"\nowner = "o"\n'
                      "created = 2026-01-01\nexpires = 2026-02-01\n")
    assert _run(catalog, tmp_path / "bundle", "--errata", str(errata)) == 2
    assert capsys.readouterr().err.strip() == (
        f"callout-harness: {errata}:3: known[0].target: expected a glob pattern with balanced "
        "[ ], found string 'win[11' with an unbalanced '['")
    assert not (tmp_path / "bundle").exists()
