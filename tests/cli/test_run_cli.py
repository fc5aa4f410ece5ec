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
