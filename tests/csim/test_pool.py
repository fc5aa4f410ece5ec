"""Pool accounting per tag: a driver that unloads with allocations outstanding fails its scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.csim.adapter import pool_leaks
from harness.csim.target import IsolatedSimTarget
from harness.errors import DriverCrashed
from harness.scenario.loader import load_scenario
from tests.csim.conftest import SCENARIOS

#: The catalog scenarios that unload the driver (a callout_unregister step that succeeds).
UNLOADING = ("unregister-with-flow-contexts", "unload-after-blocked-accept")


def test_the_report_lines_with_allocations_outstanding_are_leaks() -> None:
    report = "EPcx 2 48 9\nWork 0 0 31\nab c 1 8 1\n"
    assert pool_leaks(report) == [("EPcx", 2, 48), ("ab c", 1, 8)]
    assert pool_leaks("") == []


@pytest.mark.parametrize("name", UNLOADING)
def test_the_reference_probe_unloads_with_no_pool_outstanding(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    out = IsolatedSimTarget("c:drivers/probe").run(scenario, seed=1, out_dir=tmp_path)
    assert out.trace_path.is_file()


@pytest.mark.parametrize(("name", "count"), [("unload-after-blocked-accept", 2),
                                             ("unregister-with-flow-contexts", 1)])
def test_a_leaked_endpoint_context_fails_the_scenario_naming_its_tag(
    name: str, count: int, tmp_path: Path
) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    target = IsolatedSimTarget("c:drivers/probe#leaks_endpoint_context")
    with pytest.raises(DriverCrashed) as info:
        target.run(scenario, seed=1, out_dir=tmp_path)
    message = str(info.value)
    assert "DriverUnload returned with pool still allocated" in message
    assert f"tag 'EPcx' {count} allocation(s)" in message
