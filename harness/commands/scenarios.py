"""``callout-harness scenarios``: list and validate the scenario catalog."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import ScenarioError
from harness.scenario.loader import load_scenario
from harness.scenario.model import Scenario


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default="scenarios", metavar="DIR", help="catalog directory")
    p.add_argument("--format", choices=("text", "json"), default="text")


def validate_all(directory: str) -> tuple[list[Scenario], list[str]]:
    """Every scenario of ``directory`` that loads, and one line per bad file."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ScenarioError(str(folder), expected="a directory of scenario files",
                            found="no such directory")
    good: list[Scenario] = []
    errors: list[str] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            errors.append(str(exc))
            continue
        if scenario.name in seen:
            errors.append(f"{path}: name: duplicate scenario name {scenario.name!r} "
                          f"(also in {seen[scenario.name]})")
            continue
        seen[scenario.name] = path
        good.append(scenario)
    return sorted(good, key=lambda s: s.name), errors


def run(args: argparse.Namespace) -> int:
    catalog, errors = validate_all(args.dir)
    if errors:
        for line in errors:
            print(f"callout-harness: {line}", file=sys.stderr)
        print(f"callout-harness: {len(errors)} of {len(errors) + len(catalog)} scenario files "
              "are invalid", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps([
            {"name": s.name, "path": str(s.path), "description": s.description,
             "tags": list(s.tags), "steps": len(s.steps),
             "expected_violations": sorted(s.expect.violations)}
            for s in catalog
        ], indent=2))
        return 0
    width = max((len(s.name) for s in catalog), default=8)
    for s in catalog:
        broken = ",".join(sorted(s.expect.violations))
        negative = f"  expects {broken}" if broken else ""
        print(f"{s.name:<{width}}  {len(s.steps):>2} steps  {s.description}{negative}")
    print(f"{len(catalog)} scenarios, all valid")
    return 0
