"""Map the driver's and the agent's TraceLogging events in an ``.etl`` onto the trace format.

Both providers log into one ETW session, so their events share one clock and
come out of :func:`harness.etw.decode.decode_events` in one time-stamp order.
The event name is the trace kind and each field the trace field of the same
name (drivers/README.md); values are normalised exactly as on the tracerpt
path (:func:`harness.guest.etw.field_value`), so a status logged as HEXINT32,
a handle as a pointer and a GUID all end up as the trace format spells them.
``seq`` counts the kept events from 1 and ``t`` is seconds since the first
kept event on the session clock (QPC over ``PerfFreq``). Events of other
providers, and events without TraceLogging metadata, are skipped. Nothing is
left at ``out`` when the input is bad.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import TraceFormatError, describe
from harness.etw.decode import DecodedEvent, decode_events
from harness.etw.etl import etl_file
from harness.guest.etw import FieldValueError, field_value
from harness.trace.events import Event
from harness.trace.writer import TraceWriter

_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")
_FRAMING = frozenset({"seq", "t", "ev"})


@dataclass
class EtlConversionStats:
    events: int = 0
    skipped: int = 0


def provider_guid(text: str) -> str:
    """``{GUID}`` upper case, or ValueError for anything that is not a GUID."""
    if not _GUID.fullmatch(text.strip()):
        raise ValueError(f"expected a provider GUID like {{6B2B7A63-...}}, found {text!r}")
    return "{" + text.strip().strip("{}").upper() + "}"


def _text(value: Any) -> str | None:
    """The text rendering the shared converters read (None: not a scalar)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def trace_fields(path: str, ev: DecodedEvent) -> dict[str, Any]:
    assert ev.name is not None
    fields: dict[str, Any] = {}
    for name, value in ev.fields.items():
        if name in _FRAMING:
            continue
        text = _text(value)
        key = f"{ev.name}.{name}"
        if text is None:
            raise TraceFormatError(path, key=f"{key} ({ev.timestamp})",
                                   expected="a scalar value", found=describe(value))
        if text == "" and not (ev.name == "complete_classify" and name == "action"):
            continue
        try:
            fields[name] = field_value(ev.name, name, text)
        except FieldValueError as exc:
            raise TraceFormatError(path, key=f"{key} ({ev.timestamp})",
                                   expected=exc.expected, found=describe(value)) from None
    return fields


def _mapped(path: str, providers: set[str], stats: EtlConversionStats
            ) -> Any:
    with etl_file(path) as etl:
        first: float | None = None
        for ev in decode_events(etl, providers=providers):
            if ev.name is None:
                stats.skipped += 1
                continue
            if first is None:
                first = ev.t
            stats.events += 1
            yield ev.t - first, ev.name, trace_fields(path, ev), etl


def convert_etl(source: str | Path, out: str | Path, *, providers: list[str],
                ends: bool = False, **meta: Any) -> EtlConversionStats:
    """Write the trace of ``providers``' events in the ``.etl`` at ``source`` to ``out``.

    ``ends=True`` (a target's own trace) promises and writes the final ``trace_end``.
    """
    wanted = {provider_guid(p) for p in providers}
    out = Path(out)
    stats = EtlConversionStats()
    partial = out.with_name(out.name + ".partial")
    now = [0.0]
    try:
        with partial.open("wb") as stream:
            writer = TraceWriter(stream, clock=lambda: now[0])
            header_written = False
            for t, kind, fields, etl in _mapped(str(source), wanted, stats):
                if not header_written:
                    writer.header(ends=ends, source="etw", os_build=etl.header.os_build,
                                  clock_hz=etl.header.hertz, **meta)
                    header_written = True
                now[0] = t
                writer.emit(kind, **fields)
            if not header_written:
                writer.header(ends=ends, source="etw", **meta)
            if ends:
                writer.end()
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return stats


def etl_events(source: str | Path, *, providers: list[str]) -> list[Event]:
    """The converted events in memory, numbered as :func:`convert_etl` numbers them."""
    wanted = {provider_guid(p) for p in providers}
    now = [0.0]
    writer = TraceWriter(None, clock=lambda: now[0], keep=True)
    for t, kind, fields, _etl in _mapped(str(source), wanted, EtlConversionStats()):
        now[0] = t
        writer.emit(kind, **fields)
    return writer.events
