"""How a scenario item's record is shown: the failure text and the HTML report rows."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.contract.report import collect_evidence, format_event
from harness.report.html import ReportItem, rules_text, split_failures, write_html
from harness.scenario.record import ItemRecord

__all__ = ["describe_failure", "item_from_record", "rules_text", "split_failures",
           "write_run_report"]
MAX_EVIDENCE_LINES = 6


def describe_failure(record: ItemRecord, replay: str = "") -> str:
    """The failure text: what went wrong, each violation with its evidence events."""
    lines = [f"scenario {record.scenario} on {record.target} (seed {record.seed}) failed:"]
    root, knock_on = split_failures(record.failures)
    lines += [f"  - {f}" for f in root]
    if root and knock_on:
        lines.append("    and, following from them:")
        lines += [f"      - {f}" for f in knock_on]
    else:
        lines += [f"  - {f}" for f in knock_on]
    if record.violations:
        evidence = collect_evidence(
            record.trace, (int(s) for v in record.violations for s in v["events"])
        )
        lines.append("violations:")
        for v in record.violations:
            expected = " (expected)" if v["rule"] in record.expected_violations else ""
            lines.append(f"  {v['rule']} [{v['party']}, {v['severity']}]{expected} "
                         f"{v['message']}")
            seqs = list(v["events"])
            for seq in seqs[:MAX_EVIDENCE_LINES]:
                ev = evidence.get(int(seq))
                lines.append(f"      {format_event(ev) if ev else f'#{seq}'}")
            if len(seqs) > MAX_EVIDENCE_LINES:
                lines.append(f"      ... {len(seqs) - MAX_EVIDENCE_LINES} more events")
    if record.trace:
        lines.append(f"trace: {record.trace}")
    if replay:
        lines.append(f"replay: {replay}")
    if record.explored:
        lines.append(record.explored)
    return "\n".join(lines)


def item_from_record(record: dict[str, Any], outcome: str | None = None) -> ReportItem:
    """A report row from a record's JSON form (``ItemRecord.as_json``)."""
    return ReportItem(
        name=record["scenario"],
        target=record["target"],
        outcome=outcome or record["outcome"],
        violations=record["violations"],
        seed=record["seed"],
        duration_s=record.get("duration_s", 0.0),
        trace_path=record["trace"],
        failures=[str(f) for f in record.get("failures", [])],
        expected_rules=record.get("expected_violations", []),
        setup_events=record.get("setup_events"),
    )


def write_run_report(out_dir: Path, entries: Iterable[tuple[str, str, ItemRecord]],
                     **meta: object) -> Path:
    """The HTML report of a run from (nodeid, outcome, record) entries."""
    items = [item_from_record(record.as_json(), outcome)
             for _nodeid, outcome, record in sorted(entries, key=lambda e: e[0])]
    return write_html(out_dir / "report.html", items, **meta)
