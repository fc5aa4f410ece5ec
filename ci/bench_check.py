"""Benchmark the contract checker against parsing alone (run on demand, not a test).

    python ci/bench_check.py [--events 1000000] [--seed 1] [--trace FILE] [--repeat 3]

Generates a trace with the engine model's mixed workload (many endpoints,
pends, closures, transactions, interleaved), or takes ``--trace``. Then, each
in a fresh process so one cannot warm the other: the time stdlib ``json``
takes to parse every line (parse-only), and the time ``check_file`` takes to
read, validate and check it, with the checker's peak RSS. Prints the ratio.
Targets: check time at most 2.0x parse-only; peak RSS at most 150 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARSE = """
import json, sys, time
t0 = time.perf_counter()
n = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        if line.strip():
            json.loads(line)
            n += 1
print(time.perf_counter() - t0, n)
"""

CHECK = """
import resource, sys, time
from harness.contract.checker import check_file
t0 = time.perf_counter()
result = check_file(sys.argv[1])
took = time.perf_counter() - t0
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(took, result.events, len(result.violations), rss_mb)
"""

BASELINE = """
import resource
import harness.contract.checker, harness.contract.pc  # what the checker imports
from harness.contract.checker import monitor_classes
monitor_classes()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _run(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True)
    return [float(x) for x in out.stdout.split()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trace", type=Path, help="an existing trace instead of a generated one")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    args = ap.parse_args()

    tmp = None
    trace = args.trace
    if trace is None:
        tmp = tempfile.TemporaryDirectory()
        trace = Path(tmp.name) / "bench.jsonl"
        from harness.engine.workload import simulate

        t0 = time.perf_counter()
        result = simulate(str(trace), seed=args.seed, events=args.events)
        print(f"generated {result.events:,} events in {time.perf_counter() - t0:.1f} s "
              f"({trace.stat().st_size / 1e6:.0f} MB)")
    parse = min((_run(PARSE, str(trace)) for _ in range(args.repeat)), key=lambda r: r[0])
    check = min((_run(CHECK, str(trace)) for _ in range(args.repeat)), key=lambda r: r[0])
    baseline_mb = _run(BASELINE)[0]
    ratio = check[0] / parse[0]
    report = {
        "events": int(check[1]),
        "parse_only_s": round(parse[0], 3),
        "check_s": round(check[0], 3),
        "ratio": round(ratio, 2),
        "violations": int(check[2]),
        "peak_rss_mb": round(check[3], 1),
        "interpreter_and_imports_rss_mb": round(baseline_mb, 1),
    }
    print(json.dumps(report, indent=2))
    print(f"check/parse = {ratio:.2f}x (target <= 2.0x); peak RSS {check[3]:.0f} MB "
          f"(target <= 150 MB)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
