"""``callout-harness run`` and ``scenarios``: progress, summary, files, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[2]
CATALOG = str(REPO / "scenarios")


def test_run_all_passes_with_summary_traces_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--scenario", "connect-pend-permit,txn-read-only",
                 "--scenarios-dir", CATALOG, "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    assert "[1/2] connect-pend-permit ... passed" in captured.err
    assert "scenario             result   violations" in captured.out
    assert "2 passed, 0 failed in" in captured.out
    assert len(list((tmp_path / "traces").glob("*.jsonl"))) == 2
    assert (tmp_path / "report.html").is_file()


def test_run_exit_1_names_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--scenario", "connect-pend-permit", "--scenarios-dir", CATALOG,
                 "--callout", "mutant:pend_without_absorb", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "PC002 broken:" in captured.err
    assert "connect-pend-permit  failed   PC002" in captured.out


@pytest.mark.parametrize(("argv", "message"), [
    (["--scenario", "no-such-scenario"], "unknown scenario 'no-such-scenario'"),
    (["--callout", "mutant:nope"], "nope"),
    (["--engine-fault", "melted"], "unknown engine fault 'melted'"),
    (["--scenarios-dir", "/nonexistent"], "expected a directory of scenario files"),
])
def test_run_exit_2_on_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str], message: str) -> None:
    base = ["run", "--scenarios-dir", CATALOG, "--out", str(tmp_path)]
    code = main(base + argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_run_engine_fault_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--scenario", "connect-pend-permit", "--scenarios-dir", CATALOG,
                 "--engine-fault", "no_reauth_after_connect_completion", "--out", str(tmp_path)])
    assert code == 1
    assert "PC006" in capsys.readouterr().out


def test_scenarios_lists_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "--dir", CATALOG]) == 0
    out = capsys.readouterr().out
    assert "connect-pend-permit" in out and "scenarios, all valid" in out


def test_scenarios_reports_every_bad_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    shutil.copy(Path(CATALOG) / "connect-pend-permit.toml", tmp_path)
    (tmp_path / "a-bad.toml").write_text('[[steps]]\ndo = "tcp_conect"\n')
    (tmp_path / "b-bad.toml").write_text('description = 3\n')
    assert main(["scenarios", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a-bad.toml:2:" in err and "b-bad.toml:1:" in err
    assert "2 of 3 scenario files are invalid" in err


def test_run_with_errata_reports_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    today = dt.date.today()
    errata = tmp_path / "errata.toml"
    errata.write_text(
        "[[known]]\n"
        'scenario = "connect-pend-permit"\n'
        'target = "sim"\n'
        'reason = "pend leak, bug 1"\n'
        'owner = "qa"\n'
        f"created = {today - dt.timedelta(days=1)}\n"
        f"expires = {today + dt.timedelta(days=30)}\n"
    )
    code = main(["run", "--scenario", "connect-pend-permit", "--scenarios-dir", CATALOG,
                 "--callout", "mutant:forgets_complete", "--errata", str(errata),
                 "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "connect-pend-permit  known" in out
    assert "0 passed, 0 failed, 1 known" in out
    assert 'data-outcome="known"' in (tmp_path / "out" / "report.html").read_text()


def test_bad_history_and_pool_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "report", "--file", str(tmp_path / "none.jsonl")]) == 2
    assert "no such history file" in capsys.readouterr().err
    assert main(["vm", "list", "--pool", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: file not found" in capsys.readouterr().err


def test_a_callout_that_raises_fails_that_scenario_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--scenarios-dir", CATALOG, "--out", str(tmp_path),
                 "--scenario", "connect-pend-permit,txn-one-per-session",
                 "--callout", "module:tests.support.user_callouts:Raises"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err + captured.out
    assert "DriverCrashed: scenario 'connect-pend-permit': the callout raised ZeroDivisionError" \
        in captured.err
    assert "user_callouts.py:" in captured.err and " in classify" in captured.err
    assert "txn-one-per-session  passed" in captured.out
    assert (tmp_path / "report.html").is_file()


@pytest.mark.parametrize(("argv", "message"), [
    (["--seed", "99999999999999999999999"], "argument --seed: expected a whole number from 0"),
    (["--callout", "module:harness.callouts.reference:FAMILIES"], "is a tuple, not a class"),
    (["--callout", "module:tests.support.user_callouts:NoFlowDelete"], "it lacks flow_delete"),
    (["--vm", "nonsense"], "known: sim, linux-tcg"),
])
def test_usage_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     argv: list[str], message: str) -> None:
    code = main(["run", "--scenarios-dir", CATALOG, "--out", str(tmp_path),
                 "--fixtures", str(Path(CATALOG).parent / "fixtures"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.strip().count("\n") <= 2


def test_run_out_naming_a_file_is_a_usage_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "taken"
    existing.write_text("x")
    assert main(["run", "--scenarios-dir", CATALOG, "--out", str(existing)]) == 2
    assert "--out " in capsys.readouterr().err
    assert existing.read_text() == "x"
