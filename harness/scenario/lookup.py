"""Find a scenario by name, path or value (for fixtures and the CLI)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import UsageError
from harness.scenario.loader import load_catalog, load_scenario
from harness.scenario.model import Scenario


def resolve_scenario(spec: object, root: Path) -> Scenario:
    """A Scenario from a Scenario, a path to a .toml file, or a catalog name."""
    if isinstance(spec, Scenario):
        return spec
    if isinstance(spec, Path) or (isinstance(spec, str) and spec.endswith(".toml")):
        return load_scenario(Path(spec) if Path(spec).is_absolute() else root / spec)
    if isinstance(spec, str):
        for scenario in load_catalog(root / "scenarios"):
            if scenario.name == spec:
                return scenario
        raise UsageError(f"no scenario named {spec!r} in {root / 'scenarios'}")
    raise UsageError(f"a scenario is a name, a path or a Scenario, not {type(spec).__name__}")
