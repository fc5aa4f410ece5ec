"""``callout-harness simulate``: run the engine model on a built-in workload."""

from __future__ import annotations

import argparse
import sys
import time

from harness.errors import UsageError
from harness.options import add_to_argparse, whole_number

#: A bound on one simulated workload (about 1.3 GB of trace at 10,000,000).
MAX_EVENTS = 10_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", default="mixed", help="built-in workload (default: mixed)")
    add_to_argparse(p, ["callout", "faults", "seed"], callout=None, seed=0)
    p.add_argument("--events", type=whole_number(1, MAX_EVENTS), default=20000, metavar="N",
                   help=f"about how many events to generate (default 20000, at most {MAX_EVENTS})")
    p.add_argument("-o", "--output", required=True, metavar="TRACE",
                   help="the trace file to write (JSON Lines); - for standard output")


def run(args: argparse.Namespace) -> int:
    from harness.engine.faults import parse_faults
    from harness.engine.workload import simulate

    faults = parse_faults(args.faults)
    started = time.perf_counter()
    try:
        result = simulate(args.output, workload=args.workload, seed=args.seed,
                          events=args.events, callout=args.callout, faults=sorted(faults))
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    took = time.perf_counter() - started
    rate = result.events / took if took > 0 else float("inf")
    where = "stdout" if args.output == "-" else args.output
    print(f"{where}: {result.events} events, {result.end_s:.1f} s virtual, "
          f"{took:.2f} s wall ({rate:,.0f} events/s); callout {result.callout}", file=sys.stderr)
    return 0
