"""The driver's own TraceLogging stream against the engine's trace of the same run.

The probe logs every classify it saw, what it returned and every fwpsk call it
made, as trace-format events (the instrumentation a Windows run relies on). On
the model both views exist: the engine's trace, and the driver's stream that
the adapter kept beside it (``TRACE.driver-tlg.jsonl``). For each event kind
the driver logs, the n-th event it logged must match the engine's n-th event
of that kind, field by field, every value read with the ETW path's mapping
(:func:`harness.guest.etw.field_value`). Kinds are compared one by one, not
interleaved, because a call logged before it is made (a completion) can start
a nested classify that the engine writes after it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from harness.guest.etw import FieldValueError, field_value
from harness.trace.status import canonical

#: The kinds both sides write; alloc/free/decision/queue come from the driver alone.
COMPARED = frozenset({
    "classify", "classify_done", "pend_operation", "complete_operation",
    "acquire_classify_handle", "pend_classify", "complete_classify", "release_classify_handle",
    "clone", "free_clone", "reference", "dereference", "inject", "inject_complete",
    "flow_associate", "flow_remove",
})
#: The first mismatches reported.
MAX_REPORTED = 5
MAX_EVENTS = 2_000_000


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return "null"
    return str(value)


def _value(kind: str, name: str, value: object) -> object:
    if name == "status":
        return canonical(value)
    try:
        return field_value(kind, name, _text(value))
    except FieldValueError:
        return _text(value)


def _by_kind(lines: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = defaultdict(list)
    for event in lines:
        kind = event.get("ev")
        if isinstance(kind, str) and kind in COMPARED:
            out[kind].append(event)
    return out


def _read(path: Path) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as stream:
        for n, line in enumerate(stream):
            if n >= MAX_EVENTS:
                break
            if line.strip():
                events.append(json.loads(line))
    return events


def compare(trace: Path, driver_stream: Path) -> list[str]:
    """Mismatches between the two views, each naming both events (empty: they agree)."""
    engine = _by_kind(_read(trace))
    driver = _by_kind(_read(driver_stream))
    problems: list[str] = []
    for kind in sorted(set(engine) | set(driver)):
        mine, theirs = driver.get(kind, []), engine.get(kind, [])
        for i, (d, e) in enumerate(zip(mine, theirs, strict=False)):
            fields = [k for k in d if k != "ev" and k in e]
            wrong = [k for k in fields if _value(kind, k, d[k]) != _value(kind, k, e[k])]
            if wrong:
                problems.append(
                    f"{kind} #{i + 1}: the driver logged {json.dumps(d)} but the engine wrote "
                    f"{json.dumps(e)} (differs in {', '.join(wrong)})")
                break
        if len(mine) != len(theirs):
            extra = (f"first unmatched engine event {json.dumps(theirs[len(mine)])}"
                     if len(theirs) > len(mine) else
                     f"first unmatched driver event {json.dumps(mine[len(theirs)])}")
            problems.append(f"{kind}: the engine wrote {len(theirs)}, the driver logged "
                            f"{len(mine)}; {extra}")
        if len(problems) >= MAX_REPORTED:
            break
    return problems
