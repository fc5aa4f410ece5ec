"""Render check results for people (text) and for programs (JSON).

The text report groups violations per trace and shows, under each, the
evidence events themselves: after the streaming check, a second pass over
the trace file picks out only the lines whose ``seq`` is cited, so the
checker itself never has to keep events.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.contract.base import seconds
from harness.contract.checker import CheckResult
from harness.trace.events import Event
from harness.trace.reader import TraceReader

# Framing and the most telling fields first; the rest follow in trace order.
_FIRST = ("id", "layer", "endpoint", "ctx", "handle", "packet", "session", "status")


def format_event(ev: Event) -> str:
    """One compact line for an event: ``#12 t=0.004 pend_operation id=k3 ctx=c1 ...``."""
    t = ev.get("t")
    shown_t = seconds(t) if isinstance(t, int | float) and not isinstance(t, bool) else t
    parts = [f"#{ev.get('seq')}", f"t={shown_t}", str(ev.get("ev"))]
    shown = {"seq", "t", "ev"}
    for key in _FIRST:
        if key in ev:
            parts.append(f"{key}={_value(ev[key])}")
            shown.add(key)
    for key, value in ev.items():
        if key not in shown:
            parts.append(f"{key}={_value(value)}")
    return " ".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def collect_evidence(path: str | Path, seqs: Iterable[int]) -> dict[int, Event]:
    """The events of ``path`` whose seq is in ``seqs`` (one streaming pass)."""
    wanted = set(seqs)
    found: dict[int, Event] = {}
    if not wanted or str(path) == "-" or not Path(path).is_file():
        return found
    for ev in TraceReader(path):
        seq = ev["seq"]
        if seq in wanted:
            found[seq] = ev
            if len(found) == len(wanted):
                break
    return found


def format_text(
    results: list[CheckResult],
    evidence: dict[str, dict[int, Event]] | None = None,
    *,
    show_not_applicable: bool = True,
) -> str:
    """The human report: per trace, each violation with its evidence events."""
    lines: list[str] = []
    total_errors = total_warnings = 0
    for result in results:
        errors, warnings = len(result.errors), len(result.warnings)
        total_errors += errors
        total_warnings += warnings
        verdict = "FAIL" if errors else "ok"
        lines.append(
            f"{result.path}: {verdict} ({result.events} events, "
            f"{errors} error(s), {warnings} warning(s))"
        )
        events = (evidence or {}).get(result.path, {})
        for v in result.violations:
            lines.append(f"  {v.rule} [{v.party}, {v.severity}] {v.message}")
            for seq in v.events:
                ev = events.get(seq)
                lines.append(f"      {format_event(ev) if ev else f'#{seq}'}")
        if show_not_applicable and result.not_applicable:
            lines.append(f"  not applicable: {', '.join(result.not_applicable)}")
    if len(results) > 1:
        lines.append(
            f"{len(results)} traces: {total_errors} error(s), {total_warnings} warning(s)"
        )
    return "\n".join(lines)


def as_json(results: list[CheckResult]) -> dict[str, Any]:
    """The machine report, exactly ``{"traces": [...]}`` as documented for ``check``."""
    return {"traces": [r.as_json() for r in results]}
