"""``pytest --certify DIR`` and ``--harness-retries N`` end to end on the engine model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.certify.verify import verify
from tests.certify.helpers import needs_sim, scenario_project

pytestmark = needs_sim


def _results(bundle: Path) -> dict[str, dict]:
    data = json.loads((bundle / "results.json").read_text())
    return {item["id"]: item for item in data["items"]}


def test_certify_writes_a_verifiable_bundle_with_pytests_junit(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    result = pytester.runpytest("--callout", "mutant:forgets_complete", "--certify", "bundle")
    result.assert_outcomes(passed=1, failed=1)
    bundle = pytester.path / "bundle"
    result.stdout.fnmatch_lines([f"callout-harness certification bundle: {bundle} (bundle.tar.gz)"])
    assert (pytester.path / "bundle.tar.gz").is_file()
    items = _results(bundle)
    assert {k: v["outcome"] for k, v in items.items()} == {
        "pend-connect[sim]": "failed", "plain-connect[sim]": "passed"}
    leak = items["pend-connect[sim]"]
    assert leak["trace"] == "traces/pend-connect.sim.seed1.jsonl"
    assert (bundle / leak["trace"]).is_file()
    assert [v["rule"] for v in leak["violations"] if v["severity"] == "error"] == ["PC001"]
    assert all(v["events"] for v in leak["violations"])
    junit = (bundle / "junit.xml").read_text()
    assert 'name="pend-connect[sim]"' in junit and "<failure" in junit  # pytest's own XML
    assert '<property name="harness_outcome" value="failed" />' in junit
    env = json.loads((bundle / "environment.json").read_text())
    assert env["seeds"] == {"pend-connect[sim]": 1, "plain-connect[sim]": 1}
    assert verify(bundle).problems == []
    assert verify(pytester.path / "bundle.tar.gz").problems == []


def test_an_explicit_junitxml_is_the_one_bundled(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    result = pytester.runpytest("--certify", "out/bundle", "--junitxml", "mine.xml")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "out" / "bundle" / "junit.xml").read_bytes() == (
        pytester.path / "mine.xml").read_bytes()


def test_certify_refuses_a_directory_holding_other_files(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    pytester.mkdir("bundle")
    (pytester.path / "bundle" / "notes.txt").write_text("mine")
    result = pytester.runpytest("--certify", "bundle")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bundle: holds files a bundle does not (notes.txt)*"])


def test_under_xdist_the_controller_writes_one_bundle(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    result = pytester.runpytest_subprocess("-n", "2", "--certify", "bundle",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    items = _results(pytester.path / "bundle")
    assert sorted(items) == ["pend-connect[sim]", "plain-connect[sim]"]
    assert verify(pytester.path / "bundle").problems == []


def test_a_pass_after_a_retry_is_flaky_everywhere(pytester: pytest.Pytester) -> None:
    scenario_project(pytester, flaky=True)
    result = pytester.runpytest("--harness-retries", "2", "--certify", "bundle", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*pend-connect.toml::pend-connect?sim? FLAKY*",
        "*FLAKY scenarios/pend-connect.toml::pend-connect[[]sim[]]: passed on attempt 2 after "
        "1 failed attempt(s)",
        "*1 passed*1 flaky*",
    ])
    item = _results(pytester.path / "bundle")["pend-connect[sim]"]
    assert item["outcome"] == "flaky"
    assert [(a["outcome"], a["trace"]) for a in item["attempts"]] == [
        ("failed", "traces/pend-connect.sim.seed1.jsonl"),
        ("passed", "traces/pend-connect.sim.seed1-try1.jsonl"),
    ]
    assert "PC001 broken" in item["attempts"][0]["failures"][0]
    assert verify(pytester.path / "bundle").problems == []  # both traces are in it
    for page in (pytester.path / "bundle" / "report.html",
                 pytester.path / "harness-out" / "report.html"):
        assert '<span class="badge flaky">flaky</span><span class="name">pend-connect' in (
            page.read_text())


def test_without_retries_the_same_item_fails(pytester: pytest.Pytester) -> None:
    scenario_project(pytester, flaky=True)
    result = pytester.runpytest("--certify", "bundle")
    result.assert_outcomes(passed=1, failed=1)
    item = _results(pytester.path / "bundle")["pend-connect[sim]"]
    assert item["outcome"] == "failed" and len(item["attempts"]) == 1


def test_retries_stop_at_n_more_attempts(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    result = pytester.runpytest("--callout", "mutant:forgets_complete", "--harness-retries", "2",
                                "--certify", "bundle")
    result.assert_outcomes(passed=1, failed=1)
    item = _results(pytester.path / "bundle")["pend-connect[sim]"]
    assert [a["outcome"] for a in item["attempts"]] == ["failed"] * 3
    traces = sorted(p.name for p in (pytester.path / "bundle" / "traces").iterdir())
    assert traces == ["pend-connect.sim.seed1-try1.jsonl", "pend-connect.sim.seed1-try2.jsonl",
                      "pend-connect.sim.seed1.jsonl", "plain-connect.sim.seed1.jsonl"]
    assert verify(pytester.path / "bundle").problems == []


def test_a_bad_retry_count_is_a_usage_error(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    result = pytester.runpytest("--harness-retries", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --harness-retries: expected a whole number from 0 to 100, got '-1'*"])
