"""The pytest plugin end to end, as a user runs it (pytester, real pytest runs)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "scenarios"

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")


def _copy(pytester: pytest.Pytester, *names: str) -> None:
    target = pytester.path / "scenarios"
    target.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(CATALOG / f"{name}.toml", target / f"{name}.toml")


def test_scenarios_are_items_named_for_scenario_and_target(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit", "txn-one-per-session")
    result = pytester.runpytest("scenarios", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "scenarios/connect-pend-permit.toml::connect-pend-permit[[]sim[]]",
        "scenarios/txn-one-per-session.toml::txn-one-per-session[[]sim[]]",
    ])


def test_catalog_passes_and_writes_report_and_traces(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit", "recv-accept-reinject", "txn-wait-default-timeout")
    result = pytester.runpytest("scenarios", "--harness-out", "out")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["callout-harness report: *out/report.html"])
    out = pytester.path / "out"
    assert len(list((out / "traces").glob("*.jsonl"))) == 3
    assert "txn-wait-default-timeout" in (out / "report.html").read_text()


def test_mutant_fails_the_scenarios_covering_its_rules(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit", "txn-one-per-session")
    result = pytester.runpytest("scenarios", "--callout", "mutant:forgets_complete")
    result.assert_outcomes(passed=1, failed=1)
    # the failure names the rule, its message and the evidence event itself
    result.stdout.fnmatch_lines([
        "*scenario connect-pend-permit on sim (seed 1) failed:*",
        "*PC001 [[]driver, error[]]*",
        "*pend_operation id=* ctx=* status=STATUS_SUCCESS*",
        "replay: pytest scenarios/connect-pend-permit.toml --vm sim --seed 1 --callout mutant:forgets_complete",
    ])


def test_junit_properties(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit")
    pytester.runpytest("scenarios", "--callout", "mutant:completes_twice",
                       "--junitxml", "junit.xml", "--seed", "7")
    tree = ET.parse(pytester.path / "junit.xml")
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert props["seed"] == "7"
    assert props["rules"] == "PC001"
    assert props["target"] == "sim"
    assert props["trace"].endswith("connect-pend-permit.sim.seed7.jsonl")
    assert Path(props["trace"]).is_file()


def test_xdist_gives_the_same_outcomes(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit", "connect-pend-block", "txn-read-only",
          "closure-udp-many-peers")
    serial = pytester.runpytest_subprocess("scenarios", "--callout", "mutant:flips_reauth_decision",
                                           "-p", "no:cacheprovider")
    parallel = pytester.runpytest_subprocess("scenarios", "--callout",
                                             "mutant:flips_reauth_decision", "-n", "2",
                                             "-p", "no:cacheprovider")
    assert serial.parseoutcomes() == {k: v for k, v in parallel.parseoutcomes().items()
                                      if k in serial.parseoutcomes()}
    assert serial.parseoutcomes()["failed"] >= 1
    # the controller builds the report from every worker's items
    report = (pytester.path / "harness-out" / "report.html").read_text()
    assert report.count("<details") == 4


def test_fixtures_for_hand_written_tests(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit")
    pytester.makepyfile(test_mine="""
        import pytest

        def test_connect(run_scenario, trace, target):
            result = run_scenario("connect-pend-permit", seed=3)
            assert result.outcome == "passed"
            assert target.name == "sim"
            pends = trace.of_kind("pend_operation")
            assert len(pends) == 1 and pends[0]["status"] == "STATUS_SUCCESS"

        @pytest.mark.harness_target("win11")
        def test_only_on_windows():
            pass
    """)
    result = pytester.runpytest("test_mine.py", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs target win11; this run uses --vm sim*"])


def test_bad_scenario_file_is_one_line_collect_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "bad.toml").write_text('[[steps]]\ndo = "tcp_conect"\n')
    result = pytester.runpytest("scenarios")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*bad.toml:2: steps[[]0[]].do: expected one of 'tcp_listen'*found string 'tcp_conect'",
    ])
    assert "Traceback" not in result.stdout.str()


def test_bad_option_values(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit")
    result = pytester.runpytest("scenarios", "--callout", "nonsense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--callout takes reference, mutant:NAME or module:*"])
    result = pytester.runpytest("scenarios", "--seed", "-3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_unknown_mutant_fails_with_a_usage_message(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit")
    result = pytester.runpytest("scenarios", "--callout", "mutant:no_such_bug")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*UsageError*no_such_bug*"])


def test_unknown_vm_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit")
    result = pytester.runpytest("scenarios", "--vm", "win12")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--vm win12: no profile win12.toml in *fixtures; known: sim*"])
