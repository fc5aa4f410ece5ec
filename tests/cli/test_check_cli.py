"""``callout-harness check`` and ``rules`` as a user runs them: exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.contract.catalog import RULES

CLEAN = (
    '{"ev":"trace","format":1,"target":"test"}\n'
    '{"seq":1,"t":0,"ev":"txn_commit","session":1,"status":"FWP_E_NO_TXN_IN_PROGRESS"}\n'
)
# A txn_commit that succeeded with no transaction in progress breaks TX002 (engine).
BROKEN = (
    '{"seq":1,"t":0,"ev":"session_open","session":1,"dynamic":false,"txn_wait_ms":0,'
    '"kernel":false,"status":"STATUS_SUCCESS"}\n'
    '{"seq":2,"t":0,"ev":"txn_commit","session":1,"status":"STATUS_SUCCESS"}\n'
    '{"seq":3,"t":0,"ev":"session_close","session":1}\n'
)


def _trace(tmp_path: Path, text: str, name: str = "t.jsonl") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_exit_0_when_no_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", _trace(tmp_path, CLEAN)]) == 0
    out = capsys.readouterr().out
    assert "ok (1 events, 0 error(s), 0 warning(s))" in out


def test_exit_1_on_violation_with_evidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", _trace(tmp_path, BROKEN)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "TX002 [engine, error]" in out
    # the evidence event itself is printed under the violation
    assert "#2 t=0 txn_commit session=1 status=STATUS_SUCCESS" in out


def test_select_and_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _trace(tmp_path, BROKEN)
    assert main(["check", "--ignore", "TX*", path]) == 0
    assert main(["check", "--select", "TX002", path]) == 1
    assert main(["check", "--select", "PC*", path]) == 0
    capsys.readouterr()


def test_exit_2_on_bad_input_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _trace(tmp_path, '{"seq":1,"t":0,"ev":"x"}\nnot json\n')
    assert main(["check", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"{path}:2:" in err


def test_exit_2_on_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--select", "ZZ999", "x"]) == 2
    assert "unknown rule ID 'ZZ999'" in capsys.readouterr().err
    assert main(["check", "--format", "yaml", "x"]) == 2
    assert "argument --format: invalid choice: 'yaml'" in capsys.readouterr().err
    assert main(["run", "--help"]) == 0


def test_bad_input_wins_over_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _trace(tmp_path, BROKEN, "a.jsonl")
    empty = _trace(tmp_path, "", "b.jsonl")
    assert main(["check", good, empty]) == 2
    captured = capsys.readouterr()
    assert "TX002" in captured.out
    assert "b.jsonl: expected at least one JSON line" in captured.err


def test_json_shape_is_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _trace(tmp_path, BROKEN)
    assert main(["check", "--format", "json", path]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["traces"]
    [trace] = doc["traces"]
    assert list(trace) == ["path", "events", "violations", "not_applicable"]
    assert trace["path"] == path and trace["events"] == 3
    tx002 = [v for v in trace["violations"] if v["rule"] == "TX002"]
    assert tx002 and list(tx002[0]) == ["rule", "party", "severity", "message", "events"]
    assert 2 in tx002[0]["events"]
    assert "PC001" in trace["not_applicable"]


def test_rules_json_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(RULES)
    assert len(rows) == 52
    assert set(rows[0]) == {"id", "party", "severity", "title", "source"}
    severities = {r["id"]: r["severity"] for r in rows}
    assert {k for k, v in severities.items() if v == "warning"} == {"EP009", "TX009"}


def test_console_script_runs(tmp_path: Path) -> None:
    """The installed entry point works as a separate process."""
    path = _trace(tmp_path, CLEAN)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", path],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
