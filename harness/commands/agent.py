"""``callout-harness agent build --out DIR``: cross-compile the step agent (cached)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="agent_command", metavar="ACTION", parser_class=type(p))
    build = sub.add_parser("build", help="cross-compile harness-agent.exe with mingw-w64")
    build.add_argument("--out", type=Path, required=True, metavar="DIR")
    build.add_argument("--compiler", default=None, metavar="CC",
                       help="the mingw-w64 C compiler (default x86_64-w64-mingw32-gcc)")


def run(args: argparse.Namespace) -> int:
    from harness.agent.build import COMPILER, build_agent

    if args.agent_command != "build":
        raise UsageError("agent: expected an action: build")
    result = build_agent(args.out, compiler=args.compiler or COMPILER)
    state = "cached" if result.cached else "built"
    print(f"{result.image}: {state} (sources {result.digest[:16]})")
    return 0
