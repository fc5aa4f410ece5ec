"""``callout-harness faults``: the engine faults, with the engine rule each breaks."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from harness.engine.faults import FAULTS

    rows = [{"name": f.name, "rules": list(f.rules), "description": f.description}
            for f in FAULTS.values()]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for f in FAULTS.values():
        print(f"{f.name:<{width}}  {','.join(f.rules):<6}  {f.description}")
    return 0
