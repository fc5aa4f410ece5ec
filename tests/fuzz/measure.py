"""Run many fuzz inputs, each in its own child process, and report memory and outcomes.

    python -m tests.fuzz.measure [--per-kind N] [--run-scenarios]

For every file kind: N inputs, the kind's seed corpus (the valid file and the
issue's inputs of that kind, ``tests/fuzz/corpus.py``) and then mutations of it
(``tests/fuzz/mutate.py``), plus every issue case through the command line. Each input is read in a forked
child; the child's peak resident set (``ru_maxrss`` from ``wait4``) is recorded.
A child that raises anything but a harness error, exits 1 on a one-line
reader error, prints a traceback, or passes its time limit is a *crash*.
With ``--run-scenarios`` an accepted scenario is also run on the engine model
(this is how a too-large count shows up as memory, not as a load error).

Not a test: a measuring script (no timed assertions belong in the suite).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from tests.fuzz.corpus import CASES, CLI_KINDS, KINDS, argv_for, issue_seeds, load, seed_file
from tests.fuzz.mutate import mutate

CHILD_LIMIT_S = 120
CHILD_MEMORY_BYTES = 4 << 30


def _child(kind: str, path: Path, work: Path, run_scenarios: bool) -> int:
    from harness.cli import main
    from harness.errors import HarnessError

    signal.alarm(CHILD_LIMIT_S)
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    if kind in CLI_KINDS:
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(argv_for(kind, path, work))
        lines = err.getvalue().strip().splitlines()
        return 0 if code in (0, 1) or (code == 2 and len(lines) == 1) else 3
    try:
        loaded = load(kind, path)
    except HarnessError as exc:
        return 0 if "\n" not in str(exc) and len(str(exc)) < 1000 else 3
    if run_scenarios and kind == "scenario":
        from harness.targets.sim import SimTarget

        with contextlib.suppress(HarnessError):
            SimTarget().run(loaded, seed=1, out_dir=work)
    return 0


def run_one(kind: str, path: Path, work: Path, run_scenarios: bool) -> tuple[str, int]:
    """(verdict, peak RSS in KiB) of reading ``path`` in a child process."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = _child(kind, path, work, run_scenarios)
        except BaseException:
            traceback.print_exc(limit=3, file=sys.stderr)
        finally:
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}", usage.ru_maxrss
    return ("ok" if os.WEXITSTATUS(status) == 0 else "crash"), usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=500)
    parser.add_argument("--run-scenarios", action="store_true")
    args = parser.parse_args()
    work_root = Path(tempfile.mkdtemp(prefix="harness-fuzz-"))
    print(f"{'kind':<12} {'inputs':>6} {'crashes':>7} {'peak RSS':>10}  worst seed")
    total = 0
    worst_all = (0, "")
    for kind in KINDS:
        work = work_root / kind
        path = seed_file(kind, work)
        original = path.read_bytes()
        seeds = issue_seeds(kind, original)
        peak, peak_seed, crashes = 0, -1, 0
        for seed in range(args.per_kind):
            # the seed corpus as it is first, then mutations of its files in turn
            base = seeds[seed % len(seeds)]
            path.write_bytes(base if seed < len(seeds) else mutate(kind, base, seed))
            verdict, rss = run_one(kind, path, work, args.run_scenarios)
            if verdict != "ok":
                crashes += 1
                print(f"  {kind} seed {seed}: {verdict}", file=sys.stderr)
            if rss > peak:
                peak, peak_seed = rss, seed
        path.write_bytes(original)
        total += args.per_kind
        print(f"{kind:<12} {args.per_kind:>6} {crashes:>7} {peak / 1024:>8.1f} MB  {peak_seed}")
        if peak > worst_all[0]:
            worst_all = (peak, f"{kind} seed {peak_seed}")
    peak_case, peak_name, crashes = 0, "", 0
    for case in CASES:
        work = work_root / "cases" / case.name
        work.mkdir(parents=True)
        argv = case.build(work)
        pid = os.fork()
        if pid == 0:
            from harness.cli import main as cli_main

            resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
            signal.alarm(CHILD_LIMIT_S)
            err = io.StringIO()
            code = 3
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                    code = cli_main(argv)
            except BaseException:
                code = 4
            os._exit(0 if code == case.exit and case.says in err.getvalue() else 3)
        _, status, usage = os.wait4(pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            crashes += 1
            print(f"  case {case.name}: failed", file=sys.stderr)
        if usage.ru_maxrss > peak_case:
            peak_case, peak_name = usage.ru_maxrss, case.name
    total += len(CASES)
    print(f"{'issue cases':<12} {len(CASES):>6} {crashes:>7} {peak_case / 1024:>8.1f} MB  {peak_name}")
    if peak_case > worst_all[0]:
        worst_all = (peak_case, f"case {peak_name}")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\n{total} inputs; largest single input: {worst_all[0] / 1024:.1f} MB ({worst_all[1]}); "
          f"the measuring process itself: {baseline / 1024:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
