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
    assert all(set(r) == {"name", "rules", "description"} for r in rows)
    covered = {rule for r in rows for rule in r["rules"]}
    owed = {rid for rid, rule in RULES.items() if "driver" in rule.party or rule.party == "client"}
    assert owed <= covered


def test_faults_json_covers_every_engine_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faults", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    covered = {rule for r in rows for rule in r["rules"]}
    engine = {rid for rid, rule in RULES.items() if "engine" in rule.party}
    assert engine <= covered


def test_simulate_writes_a_checkable_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.jsonl"
    assert main(["simulate", "--seed", "4", "--events", "3000", "-o", str(out)]) == 0
    assert "events/s" in capsys.readouterr().err
    result = check_file(out)
    assert result.ok and result.events >= 3000
    assert main(["simulate", "--events", "0", "-o", str(out)]) == 2
    assert main(["simulate", "--engine-fault", "nope", "-o", str(out)]) == 2
