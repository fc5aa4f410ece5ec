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
    assert "harness_record" not in props  # the record travels in the report, not in JUnit


def test_junit_properties_under_xdist(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit", "txn-one-per-session")
    pytester.runpytest_subprocess("scenarios", "-n", "2", "--junitxml", "junit.xml",
                                  "-p", "no:cacheprovider")
    tree = ET.parse(pytester.path / "junit.xml")
    names = [p.get("name") for p in tree.iter("property")]
    assert names.count("trace") == 2 and "harness_record" not in names


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


def test_a_scenario_file_named_on_the_command_line_is_collected_anywhere(
    pytester: pytest.Pytester,
) -> None:
    elsewhere = pytester.path / "bugs" / "repro"
    elsewhere.mkdir(parents=True)
    shutil.copy(CATALOG / "connect-pend-permit.toml", elsewhere / "mine.toml")
    (elsewhere / "other.toml").write_text("not = 'a scenario'\n")
    result = pytester.runpytest("bugs/repro/mine.toml", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*mine.toml::mine[[]sim[]] PASSED*"])
    # a directory outside harness_scenario_dirs is not taken as scenarios
    result = pytester.runpytest("bugs")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_bad_scenario_file_is_one_line_collect_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "bad.toml").write_text('[[steps]]\ndo = "tcp_conect"\n')
    result = pytester.runpytest("scenarios")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*bad.toml:2: steps[[]0[]].do: expected one of 'tcp_listen'*found string 'tcp_conect'",
    ])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(("args", "words"), [
    (["--callout", "nonsense"],
     "*argument --callout: expected reference, mutant:NAME, module:pkg.mod:Class*, got 'nonsense'"),
    (["--seed", "-3"], "*argument --seed: expected a whole number from 0 to 4294967295, got '-3'"),
    (["--seed=-3"], "*argument --seed: expected a whole number from 0 to 4294967295, got '-3'"),
    (["--seed", "99999999999999999999999"], "*argument --seed: expected a whole number from 0*"),
    (["--explore", "x"], "*argument --explore: expected a whole number from 0 to 10000, got 'x'"),
    (["--engine-fault", "nonsense"], "*argument --engine-fault: unknown engine fault 'nonsense'*"),
    (["--callout", "mutant:no_such_bug"], "*UsageError: unknown mutant 'no_such_bug'*"),
    (["--callout", "mutant:txn_left_open"], "*'txn_left_open' is a policy-client mutant*simulate*"),
    (["--callout", "module:harness.callouts.reference:FAMILIES"],
     "*'FAMILIES' is a tuple, not a class*"),
    (["--engine-fault", "pend_allowed_on_reauth", "--vm", "linux-tcg"],
     "*--engine-fault applies to --vm sim only*"),
])
def test_bad_options_stop_the_run_once_at_start_up(
    pytester: pytest.Pytester, args: list[str], words: str
) -> None:
    _copy(pytester, "connect-pend-permit", "txn-one-per-session")
    shutil.copytree(CATALOG.parent / "fixtures", pytester.path / "fixtures")
    result = pytester.runpytest("scenarios", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([words])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "failed" not in result.stdout.str()


def test_a_vm_profile_without_images_stops_at_start_up(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLOUT_HARNESS_IMAGES", raising=False)
    _copy(pytester, "connect-pend-permit", "txn-one-per-session")
    shutil.copytree(CATALOG.parent / "fixtures", pytester.path / "fixtures")
    shutil.copytree(CATALOG.parent / "drivers", pytester.path / "drivers")
    result = pytester.runpytest("scenarios", "--vm", "win11",
                                "--driver", "drivers/probe/driver.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*win11.toml:*CALLOUT_HARNESS_IMAGES*"])


def test_a_bad_driver_manifest_stops_at_start_up(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit")
    (pytester.path / "bad.toml").write_text("[driver]\nname = 3\n")
    result = pytester.runpytest("scenarios", "--driver", "bad.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--driver: *bad.toml*"])


def test_unknown_vm_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    _copy(pytester, "connect-pend-permit")
    result = pytester.runpytest("scenarios", "--vm", "win12")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--vm win12: no profile win12.toml in *fixtures; known: sim*"])


def test_a_set_up_error_is_reported_before_a_teardown_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """libvirt's test driver cannot undefine with the flags teardown uses: the
    report still leads with what went wrong first (the missing base image)."""
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (extra 'vm')")
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (Debian package 'qemu-utils')")
    monkeypatch.setenv("CALLOUT_HARNESS_IMAGES", str(tmp_path))  # empty: no base image
    _copy(pytester, "connect-pend-permit")
    shutil.copytree(CATALOG.parent / "fixtures", pytester.path / "fixtures")
    shutil.copytree(CATALOG.parent / "drivers", pytester.path / "drivers")
    result = pytester.runpytest("scenarios", "--vm", "win11", "--vm-uri", "test:///default",
                                "--driver", "drivers/probe/driver.toml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    first = next(line for line in out.splitlines() if line.startswith("VmError:"))
    assert "Could not open backing image" in first.split("(cleaning up")[0]
    assert "cleaning up afterwards also failed" in first
