"""``callout-harness history``: record a bundle's run, render the trend page.

    callout-harness history add BUNDLE [--file history.jsonl]
    callout-harness history report [--file history.jsonl] [--out trends.html]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UsageError
from harness.history.records import read_history
from harness.history.store import DEFAULT_FILE, add_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    add_p = sub.add_parser("add", help="append a bundle's run to the history file")
    add_p.add_argument("bundle", metavar="BUNDLE", help="bundle directory or DIR.tar.gz")
    add_p.add_argument("--file", default=DEFAULT_FILE, metavar="FILE",
                       help=f"history file, JSON lines (default {DEFAULT_FILE})")
    add_p.set_defaults(history_func=run_add)
    rep_p = sub.add_parser("report", help="render the trend page from the history file")
    rep_p.add_argument("--file", default=DEFAULT_FILE, metavar="FILE",
                       help=f"history file (default {DEFAULT_FILE})")
    rep_p.add_argument("--out", default="trends.html", metavar="FILE",
                       help="the page to write (default trends.html)")
    rep_p.set_defaults(history_func=run_report)


def run(args: argparse.Namespace) -> int:
    return int(args.history_func(args))


def run_add(args: argparse.Namespace) -> int:
    record, added = add_run(args.bundle, args.file)
    counts: dict[str, int] = {}
    for item in record["items"]:
        counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
    shown = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no items"
    if not added:
        print(f"{args.file}: run of {record['created']} already recorded ({shown})")
    else:
        print(f"{args.file}: recorded the run of {record['created']} ({shown})")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from harness.history.trends import build_groups, write_trends

    if not Path(args.file).is_file():
        raise UsageError(f"{args.file}: no such history file (make one with "
                         "'callout-harness history add BUNDLE --file FILE')")
    records = read_history(args.file)
    groups = build_groups(records)
    out = write_trends(args.out, groups)
    for group in groups:
        for item, before, now in group.newly_failing():
            print(f"newly failing: {item} ({group.driver}, {group.os_build}): {before} -> {now}")
    print(f"{out}: {len(records)} run(s), {len(groups)} driver/OS build group(s)")
    return 0
