"""``pytest --errata FILE``: known failures, expired entries, stale entries, bad files."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from harness.errata import load_errata
from tests.certify.helpers import errata_file, needs_sim, scenario_project

pytestmark = needs_sim
MUTANT = ("--callout", "mutant:forgets_complete")


def _days(n: int) -> str:
    return (dt.date.today() + dt.timedelta(days=n)).isoformat()


def test_a_matched_failure_is_known_not_green_not_red(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    errata = errata_file(pytester, created=_days(-10), expires=_days(30))
    result = pytester.runpytest(*MUTANT, "--errata", errata, "--certify", "bundle", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*pend-connect.toml::pend-connect?sim? KNOWN*",
        f"KNOWN scenarios/pend-connect.toml::pend-connect[[]sim[]]: known issue: {errata}:1 "
        f"[[]PC001 on si*[]] pend leak in the retry path, bug 1234 (owner alice, until "
        f"{_days(30)})",
        "*1 passed*1 known*",
    ])
    data = json.loads((pytester.path / "bundle" / "results.json").read_text())
    item = next(i for i in data["items"] if i["scenario"] == "pend-connect")
    assert item["outcome"] == "known"
    assert item["known_issues"] == ["rule=PC001 scenario=* target=si* os_build=*"]
    assert data["summary"]["known"] == 1 and data["ok"] is True
    assert data["errata"]["matched"] == item["known_issues"]
    for page in (pytester.path / "bundle" / "report.html",
                 pytester.path / "harness-out" / "report.html"):
        assert '<span class="badge known">known</span><span class="name">pend-connect' in (
            page.read_text())


def test_after_expiry_the_failure_is_red_and_names_the_entry(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    errata = errata_file(pytester, created=_days(-60), expires=_days(-30))
    result = pytester.runpytest(*MUTANT, "--errata", errata)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"known issue {errata}:1 [[]PC001 on si*[]] expired on {_days(-30)} (owner alice: "
        "pend leak in the retry path, bug 1234)",
        "scenario pend-connect on sim (seed 1) failed:",
    ])


def test_an_entry_for_another_rule_leaves_the_failure_red(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    errata = errata_file(pytester, rule="PC002", created=_days(-1), expires=_days(9))
    result = pytester.runpytest(*MUTANT, "--errata", errata)
    result.assert_outcomes(passed=1, failed=1)


def test_a_malformed_errata_file_stops_the_run_with_one_line(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    errata = errata_file(pytester, rule="PC999", created=_days(-1), expires=_days(9))
    result = pytester.runpytest("--errata", errata)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: {errata}:2: known[[]0[]].rule: expected a rule ID of the contract catalog, "
        "found unknown rule 'PC999'"])


def test_an_entry_unmatched_for_n_runs_is_reported_stale(pytester: pytest.Pytester) -> None:
    scenario_project(pytester)
    errata = errata_file(pytester, created=_days(-10), expires=_days(30))
    ident = load_errata(errata).entries[0].ident
    history = pytester.path / "history.jsonl"
    unmatched = {"items": [], "errata": {"entries": [ident], "matched": []}}
    history.write_text("\n".join(json.dumps(unmatched) for _ in range(2)) + "\n")
    # Reference callout: nothing fails, so the entry matches nothing in this run (3 in a row).
    result = pytester.runpytest("--errata", errata, "--errata-history", str(history),
                                "--errata-stale-runs", "3", "--certify", "bundle")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        f"stale known issue {errata}:1 [[]PC001 on si*[]]: matched nothing in the last 3 runs "
        "(owner alice)"])
    data = json.loads((pytester.path / "bundle" / "results.json").read_text())
    assert [s["entry"] for s in data["errata"]["stale"]] == [ident]
    # With a longer window it is not stale yet.
    result = pytester.runpytest("--errata", errata, "--errata-history", str(history),
                                "--errata-stale-runs", "4")
    assert "stale known issue" not in result.stdout.str()
