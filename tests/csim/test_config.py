"""One PROBE_CONFIG packer: the step agent's plan and the host runtime use the same fields."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.agent.plan import probe_config
from harness.callouts.settings import CalloutSettings
from harness.csim.config import FLAG_ADD_POLICY, SIZE, VERSION, fields, pack
from harness.errors import UsageError
from harness.scenario.loader import load_scenario
from harness.scenario.model import CalloutConfig
from tests.csim.conftest import SCENARIOS

HEAD = struct.Struct("<11I")


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_the_agents_fields_are_the_bytes_the_host_runtime_packs(path: Path) -> None:
    scenario = load_scenario(path)
    plan = probe_config(scenario)
    head = HEAD.unpack(pack(CalloutSettings(scenario.callout), add_policy=True)[:HEAD.size])
    assert head[:7] == (SIZE, VERSION, plan["pendMask"], plan["delayUs"], plan["decision"],
                        plan["streamMode"], plan["flags"])
    assert plan["flags"] & FLAG_ADD_POLICY  # in a guest the probe adds its own policy
    assert plan["blocked"] == [] and plan["editPorts"] == []


def test_fields_are_sorted_and_bounded() -> None:
    f = fields(CalloutConfig(pend=frozenset({"closure", "connect"}), delay_ms=1.005),
               blocked={"10.0.1.9:80", "10.0.1.2:80"}, edit_ports={443, 80})
    assert (f["pendMask"], f["delayUs"], f["blocked"], f["editPorts"]) == (
        0x5, 1005, ["10.0.1.2:80", "10.0.1.9:80"], [80, 443])
    with pytest.raises(UsageError, match="at most 64 ports"):
        fields(CalloutConfig(), edit_ports=range(65))
