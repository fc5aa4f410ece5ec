"""``callout-harness mutants``: the mutant callouts and clients, with their rules."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from harness.callouts.mutants import CLIENT_MUTANTS, MUTANTS

    rows = [{"name": m.name, "rules": list(m.rules), "description": m.description}
            for m in MUTANTS.values()]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for m in MUTANTS.values():
        kind = "client" if m.name in CLIENT_MUTANTS else "driver"
        print(f"{m.name:<{width}}  {kind:<6}  {','.join(m.rules):<12}  {m.description}")
    return 0
