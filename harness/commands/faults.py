"""``callout-harness faults``: the engine faults, with the engine rule each breaks."""

from __future__ import annotations

import argparse

from harness.commands.listing import print_catalog


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from harness.engine.faults import FAULTS

    return print_catalog(FAULTS.values(), args.format)
