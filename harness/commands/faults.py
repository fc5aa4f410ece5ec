"""``callout-harness faults``: the engine faults, the engine rules each breaks, and the
callout that reveals it (the one ``simulate --engine-fault NAME`` uses by default)."""

from __future__ import annotations

import argparse

from harness.commands.listing import print_catalog


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from harness.engine.workload import describe_faults

    # the callout column: what a run with the fault uses unless told otherwise
    return print_catalog(describe_faults(), args.format, ("callout",))
