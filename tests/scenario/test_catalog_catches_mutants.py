"""The catalog against every driver mutant: the scenarios covering a mutant's
rules fail, naming those rule IDs (and the clean reference passes them all)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.callouts.mutants import DRIVER_MUTANTS
from harness.scenario.loader import load_catalog
from harness.session import HarnessSession, SessionOptions

REPO = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(REPO / "scenarios")


@pytest.mark.parametrize("name", sorted(DRIVER_MUTANTS))
def test_mutant_fails_scenarios_naming_its_rules(name: str, tmp_path: Path) -> None:
    session = HarnessSession(SessionOptions(callout=f"mutant:{name}", out_dir=tmp_path))
    named: set[str] = set()
    failed = 0
    for scenario in CATALOG:
        result = session.run(scenario)
        if result.failures:
            failed += 1
            named |= {v.rule for v in result.check.violations}
    assert failed, f"no scenario catches mutant {name}"
    missing = set(DRIVER_MUTANTS[name].rules) - named
    assert not missing, f"mutant {name}: no failing scenario names {sorted(missing)}"


def test_catalog_covers_every_rule_family() -> None:
    """Between them, the scenarios' applicability expectations touch every family."""
    families = {rule[:2] for sc in CATALOG for rule in sc.expect.applicable}
    families |= {rule[:2] for sc in CATALOG for rule in sc.expect.violations}
    assert families == {"PC", "PK", "PI", "ST", "EP", "FC", "TX", "OB", "RA"}
    assert len(CATALOG) >= 30
