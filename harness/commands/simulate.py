"""``callout-harness simulate``: run the engine model on a built-in workload."""

from __future__ import annotations

import argparse
import sys
import time

from harness.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", default="mixed", help="built-in workload (default: mixed)")
    p.add_argument("--callout", default="reference", metavar="SPEC",
                   help="reference, mutant:NAME (driver or client mutant) or module:pkg.mod:Class")
    p.add_argument("--engine-fault", action="append", default=[], metavar="NAME",
                   help="break one engine guarantee (repeatable; see 'callout-harness faults')")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--events", type=int, default=20000, metavar="N",
                   help="about how many events to generate (default 20000)")
    p.add_argument("-o", "--output", required=True, metavar="TRACE",
                   help="the trace file to write (JSON Lines)")


def run(args: argparse.Namespace) -> int:
    from harness.engine.faults import parse_faults
    from harness.engine.workload import simulate

    if args.events < 1:
        raise UsageError("--events takes a number >= 1")
    if args.seed < 0:
        raise UsageError("--seed takes a number >= 0")
    faults = parse_faults(args.engine_fault)
    started = time.perf_counter()
    try:
        result = simulate(args.output, workload=args.workload, seed=args.seed,
                          events=args.events, callout=args.callout, faults=sorted(faults))
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    took = time.perf_counter() - started
    rate = result.events / took if took > 0 else float("inf")
    print(f"{args.output}: {result.events} events, {result.end_s:.1f} s virtual, "
          f"{took:.2f} s wall ({rate:,.0f} events/s)", file=sys.stderr)
    return 0
