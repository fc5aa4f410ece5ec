"""Every C mutant of the probe fails catalog scenarios naming each of its rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.csim.manifest import load_sim_manifest
from harness.csim.target import IsolatedSimTarget
from harness.errors import DriverCrashed
from harness.scenario.loader import load_catalog
from harness.session import HarnessSession, SessionOptions
from tests.csim.conftest import PROBE, SCENARIOS

CATALOG = load_catalog(SCENARIOS)
MUTANTS = {m.name: m for m in load_sim_manifest(PROBE).mutants}


def test_at_least_twelve_c_mutants() -> None:
    assert len([m for m in MUTANTS.values() if not m.crashes]) >= 12


@pytest.mark.parametrize("name", sorted(n for n, m in MUTANTS.items() if not m.crashes))
def test_c_mutant_fails_scenarios_naming_its_rules(name: str, tmp_path: Path) -> None:
    session = HarnessSession(SessionOptions(callout=f"c:drivers/probe#{name}", out_dir=tmp_path))
    named: set[str] = set()
    failed = 0
    for scenario in CATALOG:
        try:
            result = session.run(scenario)
        except DriverCrashed as exc:
            # the runtime's pool accounting at DriverUnload (a leaked endpoint context)
            assert "pool still allocated" in str(exc), exc
            failed += 1
            continue
        if result.failures:
            failed += 1
            named |= {v.rule for v in result.check.violations}
    assert failed, f"no scenario catches C mutant {name}"
    missing = set(MUTANTS[name].rules) - named
    assert not missing, f"C mutant {name}: no failing scenario names {sorted(missing)}"


def test_the_use_after_free_mutant_crashes_its_scenario(tmp_path: Path) -> None:
    scenario = next(s for s in CATALOG if s.name == "udp-out-of-band-inspection")
    target = IsolatedSimTarget("c:drivers/probe#use_after_free_clone")
    with pytest.raises(DriverCrashed) as info:
        target.run(scenario, seed=1, out_dir=tmp_path)
    message = str(info.value)
    assert "driver crashed" in message
    assert "at probe.c:" in message and "csim_fire" in message  # the driver's frames
