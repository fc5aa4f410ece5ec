"""Benchmark: events per second the built-in workload writes (run on demand, not a test).

    .venv/bin/python ci/bench_simulate.py [--events 200000] [--seeds 3] [--callout reference]

Each run streams the trace as JSON Lines into a temporary file, as
``callout-harness simulate`` does; the figure is events written divided by
wall time, best of the seeds. The target is 100,000 ev/s on a 2-core CI box.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.engine.workload import run_workload

TARGET_EV_S = 100_000


def bench(events: int, seed: int, callout: str) -> tuple[int, float]:
    fd, name = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            start = time.perf_counter()
            result, _ = run_workload(seed=seed, events=events, callout=callout, out=out,
                                     keep=False)
            elapsed = time.perf_counter() - start
        return result.events, elapsed
    finally:
        os.unlink(name)


def lock_timeout_wall_s() -> tuple[float, float]:
    """Wall time to simulate a user-mode transaction held past the 1-hour limit:
    (wall seconds, virtual seconds at the forced abort)."""
    from harness.engine.model import Engine

    engine = Engine(seed=1)
    session = engine.open_session()

    def hold() -> object:
        status = yield session.txn_begin()
        assert status == "STATUS_SUCCESS", status
        yield 3700.0
        return session.txn_commit()

    start = time.perf_counter()
    done = engine.spawn(hold())
    engine.run()
    elapsed = time.perf_counter() - start
    forced = [e for e in engine.events if e["ev"] == "txn_forced_abort"]
    assert forced and done.value == "FWP_E_TXN_ABORTED", (forced, done.value)
    return elapsed, float(forced[0]["t"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, metavar="N")
    parser.add_argument("--seeds", type=int, default=3, metavar="K")
    parser.add_argument("--callout", default="reference", metavar="SPEC")
    args = parser.parse_args(argv)
    rates = []
    for seed in range(1, args.seeds + 1):
        written, elapsed = bench(args.events, seed, args.callout)
        rate = written / elapsed
        rates.append(rate)
        print(f"seed {seed}: {written} events in {elapsed:.2f} s = {rate:,.0f} ev/s")
    best = max(rates)
    verdict = "ok" if best >= TARGET_EV_S else "below target"
    print(f"best {best:,.0f} ev/s (target {TARGET_EV_S:,}): {verdict}")
    wall, virtual = lock_timeout_wall_s()
    print(f"1-hour lock timeout: forced abort at t={virtual:.0f} s virtual, "
          f"{wall * 1000:.2f} ms wall (target < 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
