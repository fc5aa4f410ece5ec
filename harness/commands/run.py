"""``callout-harness run``: run scenarios without writing tests.

Shows progress, prints a summary table (scenario, result, violations),
writes every trace and the HTML report, and exits like ``check``: 0 when
nothing is red (failed or error; known issues and flaky passes are not red),
1 otherwise, 2 for bad input or usage. ``certify run`` is this same loop
followed by a certification bundle.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errata import Errata, load_errata
from harness.errors import UsageError
from harness.options import add_ci_arguments, add_to_argparse
from harness.report.failure import item_from_record, rules_text
from harness.report.html import ReportItem, write_html
from harness.scenario.loader import load_catalog, load_scenario, select
from harness.scenario.model import Scenario
from harness.session import HarnessSession, SessionOptions, report_header
from harness.verdict import RED, ItemOutcome, judge_record


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_to_argparse(p, ["vm", "callout"])
    p.add_argument("--scenario", default="all", metavar="NAME|all|FILE",
                   help="comma list of scenario names, 'all', or a scenario file")
    p.add_argument("--scenarios-dir", default="scenarios", metavar="DIR",
                   help="the catalog directory (default: scenarios)")
    add_to_argparse(p, ["faults", "seed", "explore"])
    p.add_argument("--out", default="harness-out", metavar="DIR",
                   help="where traces and report.html go (default: harness-out)")
    p.add_argument("--fixtures", default="fixtures", metavar="DIR",
                   help="where VM profiles are found (default: fixtures)")
    add_to_argparse(p, ["vm_uri", "driver"])
    add_ci_arguments(p)


@dataclass
class RunSummary:
    """What a run of the catalog produced, item by item."""

    options: SessionOptions
    items: list[ItemOutcome] = field(default_factory=list)
    report: list[ReportItem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def red(self) -> int:
        return sum(1 for i in self.items if i.outcome in RED)


def scenarios_for(args: argparse.Namespace) -> list[Scenario]:
    if args.scenario.endswith(".toml"):
        return [load_scenario(args.scenario)]
    return select(load_catalog(args.scenarios_dir), args.scenario)


def execute(args: argparse.Namespace, out_dir: Path) -> RunSummary:
    """Run the chosen scenarios, judge each (errata, retries), print progress."""
    errata: Errata | None = load_errata(args.errata) if args.errata else None
    scenarios = scenarios_for(args)
    options = SessionOptions(
        vm=args.vm, callout=args.callout, seed=args.seed, out_dir=out_dir,
        faults=tuple(args.faults), explore=args.explore, retries=args.retries,
        driver=Path(args.driver) if args.driver else None,
        search_dirs=(Path(args.fixtures),), vm_uri=args.vm_uri,
    )
    session = HarnessSession(options)  # a bad --vm, --callout or --engine-fault stops here
    summary = RunSummary(options)
    started = time.perf_counter()
    width = len(str(len(scenarios)))
    try:
        for n, scenario in enumerate(scenarios, 1):
            print(f"[{n:>{width}}/{len(scenarios)}] {scenario.name} ...", end="", flush=True,
                  file=sys.stderr)
            t0 = time.perf_counter()
            record = session.run_item(scenario)
            item = judge_record(record, errata=errata)
            summary.report.append(item_from_record(item.record, item.outcome))
            print(f" {item.outcome} ({time.perf_counter() - t0:.2f} s)", file=sys.stderr)
            for failure in record.failures:
                print(f"      {failure}", file=sys.stderr)
            if item.message:
                print(f"      {item.message}", file=sys.stderr)
            if record.explored:
                print("      " + record.explored.replace("\n", "\n      "), file=sys.stderr)
            summary.items.append(item)
    finally:
        session.close()
    summary.seconds = time.perf_counter() - started
    return summary


def output_dir(text: str, option: str = "--out") -> Path:
    """The output directory: it may not exist yet, but it may not be a file."""
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{option} {text}: expected a directory for traces and the report, "
                         "found a file")
    return out


def run(args: argparse.Namespace) -> int:
    out = output_dir(args.out)
    summary = execute(args, out)
    report = write_html(out / "report.html", summary.report,
                        **report_header(summary.options))
    _table(summary.items)
    counts: dict[str, int] = {}
    for item in summary.items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    passed = counts.pop("passed", 0)
    failed = summary.red
    counts.pop("failed", None)
    counts.pop("error", None)
    extra = "".join(f", {n} {k}" for k, n in sorted(counts.items()))
    print(f"\n{passed} passed, {failed} failed{extra} in {summary.seconds:.2f} s; "
          f"traces and report in {out}/ ({report.name})")
    return 1 if failed else 0


def _table(items: list[ItemOutcome]) -> None:
    name_w = max([len("scenario")] + [len(str(i.record["scenario"])) for i in items])
    print(f"\n{'scenario':<{name_w}}  {'result':<7}  violations")
    print(f"{'-' * name_w}  {'-' * 7}  {'-' * 10}")
    for item in items:
        rules = rules_text(item.record.get("violations", []),
                           item.record.get("expected_violations", []))
        print(f"{item.record['scenario']:<{name_w}}  {item.outcome:<7}  {rules or '-'}")
