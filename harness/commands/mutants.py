"""``callout-harness mutants``: the mutant callouts and clients, with their rules."""

from __future__ import annotations

import argparse

from harness.commands.listing import print_catalog


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from harness.callouts.mutants import CLIENT_MUTANTS, MUTANTS

    return print_catalog(MUTANTS.values(), args.format,
                         lambda m: "client" if m.name in CLIENT_MUTANTS else "driver")
