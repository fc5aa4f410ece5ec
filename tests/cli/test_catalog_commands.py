"""``mutants``, ``faults`` and ``simulate`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.contract.catalog import RULES
from harness.contract.checker import check_file


def test_mutants_json_covers_every_driver_and_client_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutants", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(r) == {"name", "rules", "description", "kind"} for r in rows)
    covered = {rule for r in rows for rule in r["rules"]}
    owed = {rid for rid, rule in RULES.items() if "driver" in rule.party or rule.party == "client"}
    assert owed <= covered


def test_faults_json_covers_every_engine_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faults", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    covered = {rule for r in rows for rule in r["rules"]}
    engine = {rid for rid, rule in RULES.items() if "engine" in rule.party}
    assert engine <= covered
    revealing = {r["name"]: r["callout"] for r in rows}
    assert revealing["pend_allowed_on_reauth"] == "mutant:absorbs_after_cannot_pend"
    assert revealing["no_forced_abort"] == "reference"


def test_simulate_uses_the_revealing_callout_for_a_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.jsonl"
    code = main(["simulate", "--engine-fault", "pend_allowed_on_reauth", "--events", "3000",
                 "-o", str(out)])
    assert code == 0
    assert "callout mutant_absorbs_after_cannot_pend" in capsys.readouterr().err
    assert not check_file(out).ok


def test_simulate_to_standard_output(capfdbinary: pytest.CaptureFixture[bytes],
                                     tmp_path: Path) -> None:
    assert main(["simulate", "--events", "500", "-o", "-"]) == 0
    out = capfdbinary.readouterr().out
    assert not (Path.cwd() / "-").exists()
    (tmp_path / "t.jsonl").write_bytes(out)
    assert out.startswith(b'{"ev":"trace"') or out.startswith(b'{"ev": "trace"')
    assert check_file(tmp_path / "t.jsonl").ok


def test_simulate_writes_a_checkable_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.jsonl"
    assert main(["simulate", "--seed", "4", "--events", "3000", "-o", str(out)]) == 0
    assert "events/s" in capsys.readouterr().err
    result = check_file(out)
    assert result.ok and result.events >= 3000
    assert main(["simulate", "--events", "0", "-o", str(out)]) == 2
    assert main(["simulate", "--engine-fault", "nope", "-o", str(out)]) == 2
