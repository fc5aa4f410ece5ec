"""Benchmark: the C probe on the engine model against the Python reference (run on demand).

    .venv/bin/python ci/bench_csim.py [--events 200000] [--explore 0] [--rounds 3]

1. The scenario catalog, every scenario once per round, with ``c:drivers/probe``
   (each scenario in its own child process, as pytest runs it) and with the
   Python reference, interleaved in one run: the wall-time ratio (target <= 3x);
   then the same as ``pytest scenarios --callout ...`` end to end.
2. ``simulate --events N`` throughput with the C probe and with the reference
   (in-process, as the simulate command runs it).
3. The build: a cold compile of the probe and a cached lookup.

Figures are best of the rounds; the machine's other load shows in them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.csim.build import build  # noqa: E402
from harness.csim.manifest import load_sim_manifest  # noqa: E402
from harness.engine.workload import run_workload  # noqa: E402
from harness.scenario.loader import load_catalog  # noqa: E402
from harness.session import HarnessSession, SessionOptions  # noqa: E402

TARGET_RATIO = 3.0


def catalog_wall(callout: str, out_dir: Path, explore: int) -> tuple[float, int]:
    session = HarnessSession(SessionOptions(callout=callout, out_dir=out_dir, explore=explore))
    catalog = load_catalog(ROOT / "scenarios")
    failed = 0
    start = time.perf_counter()
    for scenario in catalog:
        if session.run(scenario).failures:
            failed += 1
    return time.perf_counter() - start, failed


def pytest_wall(callout: str, out_dir: Path, explore: int) -> float:
    """``pytest scenarios --callout X`` end to end, as a user runs it."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "scenarios",
           "--callout", callout, "--harness-out", str(out_dir)]
    if explore:
        cmd += ["--explore", str(explore)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-2000:])
    return elapsed


def simulate_rate(callout: str, events: int) -> float:
    fd, name = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            start = time.perf_counter()
            result, _ = run_workload(seed=1, events=events, callout=callout, out=out, keep=False)
            elapsed = time.perf_counter() - start
        return result.events / elapsed
    finally:
        os.unlink(name)
        Path(f"{name}.driver-tlg.jsonl").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, metavar="N")
    parser.add_argument("--explore", type=int, default=0, metavar="N")
    parser.add_argument("--rounds", type=int, default=3, metavar="K")
    args = parser.parse_args(argv)

    manifest = load_sim_manifest(ROOT / "drivers" / "probe")
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        build(manifest, cache=Path(cache))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        build(manifest, cache=Path(cache))
        warm = time.perf_counter() - start
    print(f"build: cold {cold:.2f} s, cached {warm * 1000:.1f} ms")

    c_best = py_best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            c_wall, c_failed = catalog_wall("c:drivers/probe", Path(tmp) / f"c{r}", args.explore)
            py_wall, py_failed = catalog_wall("reference", Path(tmp) / f"py{r}", args.explore)
            c_best, py_best = min(c_best, c_wall), min(py_best, py_wall)
            print(f"round {r + 1}: catalog c:drivers/probe {c_wall:.2f} s ({c_failed} failed), "
                  f"reference {py_wall:.2f} s ({py_failed} failed)")
    ratio = c_best / py_best
    verdict = "ok" if ratio <= TARGET_RATIO else "above target"
    print(f"catalog (explore {args.explore}): best c:drivers/probe {c_best:.2f} s, reference "
          f"{py_best:.2f} s, ratio {ratio:.2f}x (target <= {TARGET_RATIO:g}x): {verdict}")

    with tempfile.TemporaryDirectory() as tmp:
        c_py = min(pytest_wall("c:drivers/probe", Path(tmp) / f"pc{r}", args.explore)
                   for r in range(args.rounds))
        py_py = min(pytest_wall("reference", Path(tmp) / f"pp{r}", args.explore)
                    for r in range(args.rounds))
    print(f"pytest scenarios (explore {args.explore}): c:drivers/probe {c_py:.2f} s, reference "
          f"{py_py:.2f} s, ratio {c_py / py_py:.2f}x")

    for callout in ("c:drivers/probe", "reference"):
        rate = max(simulate_rate(callout, args.events) for _ in range(args.rounds))
        print(f"simulate --events {args.events} --callout {callout}: {rate:,.0f} ev/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
