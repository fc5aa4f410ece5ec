"""``callout-harness scenarios``: list and validate the scenario catalog."""

from __future__ import annotations

import argparse
import json

from harness.scenario.loader import load_catalog


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default="scenarios", metavar="DIR", help="catalog directory")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.dir)  # validates every file; a mistake exits 2
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
