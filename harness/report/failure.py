"""How a scenario's result is shown: failure text, JUnit properties, result files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.contract.report import collect_evidence, format_event
from harness.report.html import ReportItem, write_html
from harness.scenario.evaluate import ScenarioResult

MAX_EVIDENCE_LINES = 6


def describe_failure(result: ScenarioResult, replay: str = "") -> str:
    """The failure text: what went wrong, each violation with its evidence events."""
    run = result.run
    lines = [f"scenario {result.scenario.name} on {run.target} (seed {run.seed}) failed:"]
    lines += [f"  - {f}" for f in result.failures]
    if result.check.violations:
        evidence = collect_evidence(
            run.trace_path, (s for v in result.check.violations for s in v.events)
        )
        lines.append("violations:")
        for v in result.check.violations:
            expected = " (expected)" if v.rule in result.scenario.expect.violations else ""
            lines.append(f"  {v.rule} [{v.party}, {v.severity}]{expected} {v.message}")
            for seq in v.events[:MAX_EVIDENCE_LINES]:
                ev = evidence.get(seq)
                lines.append(f"      {format_event(ev) if ev else f'#{seq}'}")
            if len(v.events) > MAX_EVIDENCE_LINES:
                lines.append(f"      ... {len(v.events) - MAX_EVIDENCE_LINES} more events")
    lines.append(f"trace: {run.trace_path}")
    if replay:
        lines.append(f"replay: {replay}")
    return "\n".join(lines)


def result_record(result: ScenarioResult) -> dict[str, Any]:
    """A JSON-able record of one result (the plugin's per-item result file)."""
    return {
        "scenario": result.scenario.name,
        "path": str(result.scenario.path),
        "target": result.run.target,
        "seed": result.run.seed,
        "outcome": result.outcome,
        "failures": result.failures,
        "violations": [v.as_json() for v in result.check.violations],
        "not_applicable": result.check.not_applicable,
        "expected_violations": sorted(result.scenario.expect.violations),
        "counts": result.counts,
        "trace": str(result.run.trace_path),
        "events": result.check.events,
        "duration_s": round(float(result.run.meta.get("duration_s", 0.0)), 4),
    }


def properties(result: ScenarioResult) -> list[tuple[str, str]]:
    """JUnit properties of an item (rule IDs, seed, trace) and its result file."""
    record = result_record(result)
    path = Path(str(result.run.trace_path) + ".result.json")
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    rules = sorted({v["rule"] for v in record["violations"]})
    return [
        ("target", result.run.target),
        ("seed", str(result.run.seed)),
        ("trace", str(result.run.trace_path)),
        ("rules", ",".join(rules)),
        ("harness_result", str(path)),
    ]


def item_from_record(record: dict[str, Any], outcome: str | None = None) -> ReportItem:
    return ReportItem(
        name=record["scenario"],
        target=record["target"],
        outcome=outcome or record["outcome"],
        violations=record["violations"],
        seed=record["seed"],
        duration_s=record.get("duration_s", 0.0),
        trace_path=record["trace"],
        message="; ".join(record.get("failures", [])),
        expected_rules=record.get("expected_violations", []),
    )


def write_run_report(out_dir: Path, entries: list[tuple[str, str, str]], **meta: object) -> Path:
    """The HTML report of a pytest run from (nodeid, outcome, result file) entries."""
    items: list[ReportItem] = []
    for _nodeid, outcome, result_file in sorted(entries):
        try:
            record = json.loads(Path(result_file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        items.append(item_from_record(record, outcome))
    return write_html(out_dir / "report.html", items, **meta)
