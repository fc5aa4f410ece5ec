"""``callout-harness mutants``: the mutant callouts and clients, with their rules."""

from __future__ import annotations

import argparse

from harness.commands.listing import print_catalog


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from harness.callouts.mutants import describe_mutants

    return print_catalog(describe_mutants(), args.format, ("kind",))
