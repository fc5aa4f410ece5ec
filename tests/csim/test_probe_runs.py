"""The C probe on the engine model: the Python reference's trace, crash isolation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.csim.target import IsolatedSimTarget
from harness.errors import DriverCrashed
from harness.scenario.loader import load_scenario
from harness.targets.sim import SimTarget
from tests.csim.conftest import DRIVERS, SCENARIOS

SAMPLE = ("connect-pend-permit", "recv-accept-reinject", "closure-pended-drain",
          "stream-out-of-band", "connect-pend-permit-v6", "reauth-policy-change-inbound",
          "unregister-with-flow-contexts", "mixed-traffic")


def _events(path: Path, *, rename: bool = False) -> list[str]:
    lines = path.read_text().splitlines()[1:]  # the header names the callout spec
    if rename:
        lines = [line.replace('"reference.', '"probe.') for line in lines]
    return lines


@pytest.mark.parametrize("name", SAMPLE)
def test_probe_trace_equals_the_python_reference(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    (tmp_path / "c").mkdir()
    (tmp_path / "py").mkdir()
    c = IsolatedSimTarget("c:drivers/probe").run(scenario, seed=3, out_dir=tmp_path / "c")
    py = SimTarget("reference").run(scenario, seed=3, out_dir=tmp_path / "py")
    assert c.steps == py.steps
    assert _events(c.trace_path) == _events(py.trace_path, rename=True)


def test_same_seed_gives_a_byte_identical_trace(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "mixed-traffic.toml")
    traces = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        out = IsolatedSimTarget("c:drivers/probe").run(scenario, seed=7, out_dir=tmp_path / run)
        traces.append(out.trace_path.read_bytes())
    assert traces[0] == traces[1]


def test_a_segfault_in_driver_code_fails_the_scenario_only(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "connect-pend-permit.toml")
    target = IsolatedSimTarget(f"c:{DRIVERS / 'crasher'}")
    with pytest.raises(DriverCrashed) as info:
        target.run(scenario, seed=1, out_dir=tmp_path)
    message = str(info.value)
    assert "driver crashed (signal SIGSEGV)" in message
    assert "C stack" in message and "TestClassify" in message  # the frame in driver code
    trace = tmp_path / "connect-pend-permit.sim.seed1.jsonl"
    assert str(trace) in message
    last = trace.read_text().splitlines()[-1]
    assert '"ev":"classify"' in last and "ALE_AUTH_CONNECT_V4" in last  # up to the crash


def test_an_irql_violation_is_a_driver_bug_with_its_stack(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "connect-pend-permit.toml")
    with pytest.raises(DriverCrashed) as info:
        IsolatedSimTarget(f"c:{DRIVERS / 'waiter'}").run(scenario, seed=1, out_dir=tmp_path)
    message = str(info.value)
    assert "signal SIGABRT" in message
    assert "driver bug: KeWaitForSingleObject (a wait) called at IRQL 2" in message
    assert "TestClassify" in message


def test_simulate_with_the_probe_writes_the_reference_trace(tmp_path: Path) -> None:
    from harness.cli import main

    c, py = tmp_path / "c.jsonl", tmp_path / "py.jsonl"
    assert main(["simulate", "--callout", "c:drivers/probe", "--events", "4000", "-o", str(c)]) == 0
    assert main(["simulate", "--events", "4000", "-o", str(py)]) == 0
    assert _events(c) == _events(py, rename=True)
    assert main(["check", str(c)]) == 0


def test_a_bad_c_spec_is_a_one_line_usage_error() -> None:
    from harness.errors import ManifestError, UsageError

    with pytest.raises(UsageError, match=r"expected c:DIR or c:DIR#MUTANT"):
        IsolatedSimTarget("c:drivers/probe#")
    with pytest.raises(ManifestError, match=r"a mutant named 'nope' \(known: forgets_complete"):
        IsolatedSimTarget("c:drivers/probe#nope")
    with pytest.raises(ManifestError, match=r"driver.toml: file not found"):
        IsolatedSimTarget("c:no/such/dir")


def test_a_driver_that_never_returns_is_stopped(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_HARNESS_CSIM_TIMEOUT_S", "2")
    scenario = load_scenario(SCENARIOS / "connect-pend-permit.toml")
    with pytest.raises(DriverCrashed, match=r"driver crashed \(no result within 2 s \(killed\)\)"):
        IsolatedSimTarget(f"c:{DRIVERS / 'spinner'}").run(scenario, seed=1, out_dir=tmp_path)
    # the next scenario gets a new worker
    out = IsolatedSimTarget("c:drivers/probe").run(scenario, seed=1, out_dir=tmp_path)
    assert out.steps["c1"].outcome == "allowed"


def test_a_bad_timeout_is_a_one_line_usage_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import UsageError

    monkeypatch.setenv("CALLOUT_HARNESS_CSIM_TIMEOUT_S", "soon")
    scenario = load_scenario(SCENARIOS / "connect-pend-permit.toml")
    with pytest.raises(UsageError, match="CALLOUT_HARNESS_CSIM_TIMEOUT_S: expected seconds"):
        IsolatedSimTarget("c:drivers/probe").run(scenario, seed=1, out_dir=tmp_path)


def test_a_double_free_is_a_driver_bug_with_its_stack(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "connect-pend-permit.toml")
    with pytest.raises(DriverCrashed) as info:
        IsolatedSimTarget(f"c:{DRIVERS / 'doublefree'}").run(scenario, seed=1, out_dir=tmp_path)
    message = str(info.value)
    assert "driver bug: ExFreePoolWithTag: the block at" in message
    assert "was freed before (a double free)" in message
    assert "TestClassify at doublefree.c:" in message
