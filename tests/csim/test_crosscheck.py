"""The driver's TraceLogging stream is cross-checked against the engine's trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.csim.adapter import TLG_SUFFIX
from harness.csim.crosscheck import compare
from harness.csim.target import IsolatedSimTarget
from harness.errors import TargetError
from harness.scenario.loader import load_scenario
from tests.csim.conftest import DRIVERS, SCENARIOS


def _run(tmp_path: Path, name: str, spec: str = "c:drivers/probe") -> Path:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    return IsolatedSimTarget(spec).run(scenario, seed=2, out_dir=tmp_path).trace_path


def test_the_probe_stream_agrees_with_the_engine(tmp_path: Path) -> None:
    trace = _run(tmp_path, "mixed-traffic")
    stream = Path(f"{trace}{TLG_SUFFIX}")
    kinds = {json.loads(line)["ev"] for line in stream.read_text().splitlines()}
    assert {"classify", "classify_done", "pend_operation", "complete_operation", "clone",
            "inject", "inject_complete", "free_clone", "alloc", "free"} <= kinds
    assert compare(trace, stream) == []


def test_a_changed_field_is_reported_with_both_events(tmp_path: Path) -> None:
    trace = _run(tmp_path, "recv-accept-reinject")
    stream = Path(f"{trace}{TLG_SUFFIX}")
    lines = [json.loads(line) for line in stream.read_text().splitlines()]
    inject = next(e for e in lines if e["ev"] == "inject")
    inject["kind"] = "transport_send"
    stream.write_text("".join(json.dumps(e) + "\n" for e in lines))
    problems = compare(trace, stream)
    assert len(problems) == 1
    assert problems[0].startswith("inject #1: the driver logged")
    assert '"kind": "transport_send"' in problems[0]
    assert '"kind": "transport_recv"' in problems[0]
    assert "differs in kind" in problems[0]


def test_a_driver_whose_stream_lies_fails_its_scenario(tmp_path: Path) -> None:
    with pytest.raises(TargetError) as info:
        _run(tmp_path, "connect-pend-permit", f"c:{DRIVERS / 'liar'}")
    message = str(info.value)
    assert "TraceLogging stream" in message and "disagrees with the engine's trace" in message
    assert '"action": "BLOCK"' in message and '"action": "PERMIT"' in message
