"""``callout-harness run``: run scenarios without writing tests.

Shows progress, prints a summary table (scenario, result, violations),
writes every trace and the HTML report, and exits like ``check``: 0 all
passed, 1 a scenario failed, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.errors import UsageError
from harness.scenario.loader import load_catalog, load_scenario, select
from harness.scenario.model import Scenario
from harness.session import HarnessSession, SessionOptions, report_item, write_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vm", default="sim", metavar="NAME",
                   help="target: sim (default) or a VM profile name")
    p.add_argument("--scenario", default="all", metavar="NAME|all|FILE",
                   help="comma list of scenario names, 'all', or a scenario file")
    p.add_argument("--scenarios-dir", default="scenarios", metavar="DIR",
                   help="the catalog directory (default: scenarios)")
    p.add_argument("--callout", default="reference", metavar="SPEC",
                   help="sim only: reference, mutant:NAME or module:pkg.mod:Class")
    p.add_argument("--engine-fault", action="append", default=[], metavar="NAME",
                   help="sim only: break one engine guarantee (repeatable)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed for every scenario (default: each scenario's own)")
    p.add_argument("--explore", type=int, default=0, metavar="N",
                   help="try N seeded interleavings per scenario; shrink a failure")
    p.add_argument("--out", default="harness-out", metavar="DIR",
                   help="where traces and report.html go (default: harness-out)")
    p.add_argument("--fixtures", default="fixtures", metavar="DIR",
                   help="where VM profiles are found (default: fixtures)")


def _scenarios(spec: str, directory: str) -> list[Scenario]:
    if spec.endswith(".toml"):
        return [load_scenario(spec)]
    return select(load_catalog(directory), spec)


def run(args: argparse.Namespace) -> int:
    if args.seed is not None and args.seed < 0:
        raise UsageError("--seed takes a number >= 0")
    if args.explore < 0:
        raise UsageError("--explore takes a number >= 0")
    scenarios = _scenarios(args.scenario, args.scenarios_dir)
    options = SessionOptions(
        vm=args.vm, callout=args.callout, seed=args.seed, out_dir=Path(args.out),
        faults=tuple(args.engine_fault), explore=args.explore,
        search_dirs=(Path(args.fixtures),),
    )
    session = HarnessSession(options)
    rows: list[tuple[str, str, str, float]] = []
    items = []
    started = time.perf_counter()
    width = len(str(len(scenarios)))
    try:
        for n, scenario in enumerate(scenarios, 1):
            t0 = time.perf_counter()
            print(f"[{n:>{width}}/{len(scenarios)}] {scenario.name} ...", end="", flush=True,
                  file=sys.stderr)
            extra = ""
            if args.explore:
                from harness.scenario.explore import explore

                found = explore(session, scenario, args.explore)
                result = found.result
                extra = found.describe()
            else:
                result = session.run(scenario)
            took = time.perf_counter() - t0
            print(f" {result.outcome} ({took:.2f} s)", file=sys.stderr)
            if result.failures:
                for failure in result.failures:
                    print(f"      {failure}", file=sys.stderr)
            if extra:
                print(extra.strip("\n"), file=sys.stderr)
            rules = " ".join(sorted({v.rule for v in result.check.violations})) or "-"
            rows.append((scenario.name, result.outcome, rules, took))
            items.append(report_item(result))
    finally:
        session.close()
    report = write_report(Path(args.out) / "report.html", items, target=args.vm,
                          callout=args.callout if args.vm == "sim" else None)
    _table(rows)
    failed = sum(1 for r in rows if r[1] != "passed")
    took = time.perf_counter() - started
    print(f"\n{len(rows) - failed} passed, {failed} failed in {took:.2f} s; "
          f"traces and report in {args.out}/ ({report.name})")
    return 1 if failed else 0


def _table(rows: list[tuple[str, str, str, float]]) -> None:
    name_w = max([len("scenario")] + [len(r[0]) for r in rows])
    print(f"\n{'scenario':<{name_w}}  {'result':<7}  violations")
    print(f"{'-' * name_w}  {'-' * 7}  {'-' * 10}")
    for name, outcome, rules, _took in rows:
        print(f"{name:<{name_w}}  {outcome:<7}  {rules}")
