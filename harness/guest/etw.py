"""Capture the driver's TraceLogging events in the guest and turn them into a trace.

Capture (commands rendered by :mod:`harness.guest.powershell`): an ETW file
session for the driver's provider (``logman create trace NAME -p {GUID}
0xffffffffffffffff 0xff -o X.etl -ets``), stopped with ``logman stop NAME
-ets``, rendered with ``tracerpt X.etl -of XML -o X.xml -y`` and pulled back
over the transport (:class:`TraceCapture`).

Conversion (:func:`convert_tracerpt`): tracerpt writes one ``<Event>`` per
ETW event in the Windows event schema::

    <Events>
      <Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
        <System>
          <Provider Name="CalloutProbe" Guid="{...}"/>
          <EventID>0</EventID> ... <Task>0</Task> ...
          <TimeCreated SystemTime="2026-11-22T01:02:03.123456700Z"/> ...
        </System>
        <EventData><Data Name="id">0xffffa50c1a2b3c40</Data> ...</EventData>
        <RenderingInfo Culture="en-US"><Task>classify</Task> ...</RenderingInfo>
      </Event>
    </Events>

A TraceLogging event has no manifest: its name is the rendered Task (or a
non-numeric System/Task) and its fields are the named Data elements. Names
are trace-format kinds and field names are trace-format fields, so the mapping
is 1:1; values are normalised as drivers/README.md documents (statuses to
names, booleans, handles to lower-case hex strings, GUIDs to upper case in
braces, FWP enumerations to names). Events are read as a stream, ``seq``
counts from 1 in file order, ``t`` is seconds since the first event: from
``RawTime`` (``tracerpt -rts``) on the session clock that the EventTrace header
event names (``PerfFreq``, ``ReservedFlags``), else from ``SystemTime`` in UTC
or local time with its offset (``Z``, ``-07:00``, ``+0159``). A header event
that reports lost events or buffers, a field tracerpt rendered as
``win:Error...`` and an event left as ``BinaryEventData`` are errors naming
the event: the binary ``.etl`` path (:mod:`harness.etw`) is the primary one.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import ntpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

from harness.errors import TraceFormatError, describe
from harness.guest import powershell as ps
from harness.guest.base import Transport
from harness.trace.events import BOOL, HANDLE, INT, NUMBER, SCHEMA, Event
from harness.trace.status import name_for_value
from harness.trace.writer import TraceWriter

# -- capture -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtwSession:
    """One ETW file session in the guest and where its files go."""

    name: str
    provider: str
    etl: str
    xml: str

    @classmethod
    def for_driver(cls, driver: str, provider: str, trace_dir: str) -> EtwSession:
        name = f"callout-harness-{driver}"
        return cls(name, provider, ntpath.join(trace_dir, f"{driver}.etl"),
                   ntpath.join(trace_dir, f"{driver}.xml"))

    def scripts(self) -> dict[str, str]:
        return {
            "etw_start": ps.etw_start(self.name, self.provider, self.etl),
            "etw_stop": ps.etw_stop(self.name),
            "etw_convert": ps.etw_convert(self.etl, self.xml),
        }


class TraceCapture:
    """Start a session before a scenario; stop, render and fetch it after."""

    def __init__(self, transport: Transport, session: EtwSession, timeout_s: float = 300.0) -> None:
        self.transport = transport
        self.session = session
        self.timeout_s = timeout_s
        self._scripts = session.scripts()

    def _step(self, name: str) -> None:
        self.transport.run_powershell(self._scripts[name], timeout_s=self.timeout_s).check(
            f"{name} ({self.session.name})"
        )

    def start(self) -> None:
        self._step("etw_start")

    def stop_and_fetch(self, local_xml: Path) -> Path:
        """Stop the session, render it with tracerpt, copy the XML to ``local_xml``."""
        self._step("etw_stop")
        self._step("etw_convert")
        self.transport.get_file(self.session.xml, local_xml)
        return local_xml


# -- conversion ---------------------------------------------------------------------------

#: FWP_ACTION_TYPE values (fwptypes.h) -> trace action names.
FWP_ACTIONS: dict[int, str] = {
    0x1001: "BLOCK", 0x1002: "PERMIT", 0x2006: "CONTINUE", 0x7: "NONE", 0x8: "NONE",
}
#: IPPROTO values -> trace protocol names (anything else is raw).
PROTOCOLS: dict[int, str] = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}
#: FWP_DIRECTION values.
DIRECTIONS: dict[int, str] = {0: "out", 1: "in"}
#: FWPS_PACKET_INJECTION_STATE values.
INJECTION_STATES: dict[int, str] = {0: "none", 1: "self", 2: "other", 3: "prev_self"}
_LAYER_PREFIXES = ("FWPS_LAYER_", "FWPM_LAYER_")
_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")
_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d\d:?\d\d)?"
)
#: The NT Kernel Logger's header event ("EventTrace"): carries the session's clock.
EVENT_TRACE_GUID = "{68FDD900-4A3E-11D1-84F4-0000F80464E3}"
#: TRACE_LOGFILE_HEADER.ReservedFlags: the session clock (logman -ct).
CLOCK_QPC, CLOCK_SYSTEM, CLOCK_CYCLE = 1, 2, 3
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


class _BadValue(ValueError):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _int(text: str) -> int:
    text = text.strip()
    try:
        return int(text, 16) if text[:2].lower() == "0x" else int(text)
    except ValueError:
        raise _BadValue("an integer (decimal or 0x hex)") from None


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+|0[xX][0-9a-fA-F]+", text.strip()))


def _handle(text: str) -> int | str:
    if _is_int(text):
        return f"0x{_int(text) & 0xFFFFFFFFFFFFFFFF:x}"
    if _GUID.fullmatch(text.strip()):
        return "{" + text.strip().strip("{}").upper() + "}"
    return text


def _status(text: str) -> str:
    if _is_int(text):
        return name_for_value(_int(text) & 0xFFFFFFFF)
    return text.strip()


def _action(text: str) -> str:
    if _is_int(text):
        value = _int(text)
        if value not in FWP_ACTIONS:
            raise _BadValue("an FWP_ACTION_TYPE value or action name")
        return FWP_ACTIONS[value]
    return text.strip().upper().removeprefix("FWP_ACTION_")


def _enum(table: dict[int, str], default: str | None = None) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if _is_int(text):
            value = _int(text)
            if value in table:
                return table[value]
            if default is not None:
                return default
            raise _BadValue("one of " + ", ".join(f"{k} ({v})" for k, v in table.items()))
        return text.strip()

    return convert


def _layer(text: str) -> str:
    text = text.strip()
    for prefix in _LAYER_PREFIXES:
        text = text.removeprefix(prefix)
    return text


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _BadValue("true/false or 1/0")


def _number(text: str) -> int | float:
    if _is_int(text):
        return _int(text)
    try:
        return float(text)
    except ValueError:
        raise _BadValue("a number") from None


def _nullable_action(text: str) -> str | None:
    return None if text.strip().lower() in ("", "null") else _action(text)


#: field name -> converter, where the name alone decides it.
_BY_FIELD: dict[str, Callable[[str], Any]] = {
    "action": _action, "proto": _enum(PROTOCOLS, "raw"), "dir": _enum(DIRECTIONS),
    "injection": _enum(INJECTION_STATES), "layer": _layer,
}


@functools.cache
def _converter(kind: str, name: str) -> Callable[[str], Any]:
    """How to turn the text of field ``name`` of event ``kind`` into its JSON value."""
    types = SCHEMA.get(kind, {}).get(name)
    if kind == "complete_classify" and name == "action":
        return _nullable_action
    if name in _BY_FIELD and (types is None or str in types):
        return _BY_FIELD[name]
    if types is None:
        return str
    if types == BOOL:
        return _bool
    if types == INT:
        return _int
    if types == NUMBER:
        return _number
    if name == "status":  # STATUS and HANDLE are the same type set; the name decides
        return _status
    if types == HANDLE:
        return _handle
    return str


class FieldValueError(ValueError):
    """A field's value does not convert; ``expected`` says what would have."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def field_value(kind: str, name: str, text: str) -> Any:
    """The trace-format value of field ``name`` of event ``kind`` from its text rendering.

    The one normalisation of driver values (drivers/README.md), shared by the
    tracerpt path and the binary ``.etl`` path (:mod:`harness.etw.convert`).
    """
    try:
        return _converter(kind, name)(text)
    except _BadValue as exc:
        raise FieldValueError(exc.expected) from None


def _ticks(stamp: str) -> int:
    """100-ns ticks since 0001-01-01 UTC of an ETW SystemTime (full precision, no float).

    tracerpt writes UTC (``Z``) or local time with the machine's offset
    (``-07:00``, ``+0159``); a stamp without either is taken as UTC.
    """
    match = _TIME.fullmatch(stamp.strip())
    if not match:
        raise _BadValue("a SystemTime like 2026-11-22T01:02:03.1234567Z or ...-07:00")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match[7] or "").ljust(9, "0")
    offset_s = 0
    zone = match[8]
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        off_h, off_m = int(digits[:2]), int(digits[2:])
        if off_h > 14 or off_m > 59:
            raise _BadValue("a UTC offset of at most +-14:00 in SystemTime")
        offset_s = (off_h * 3600 + off_m * 60) * (1 if zone[0] == "+" else -1)
    try:
        days = datetime.date(year, month, day).toordinal()
    except ValueError:
        raise _BadValue("a valid date in SystemTime") from None
    if hour > 23 or minute > 59 or second > 60:
        raise _BadValue("a valid time of day in SystemTime")
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_s
    return seconds * 10_000_000 + int(fraction) // 100


def _guid(text: str | None) -> str:
    return "{" + (text or "").strip().strip("{}").upper() + "}"


@dataclass
class ConversionStats:
    events: int = 0
    skipped: int = 0


@dataclass
class _RawEvent:
    """The parts of one tracerpt ``<Event>`` the conversion reads."""

    line: int
    provider: str | None = None
    system_time: str | None = None
    raw_time: str | None = None
    system_task: str | None = None
    rendered_task: str | None = None
    event_id: str | None = None
    binary: bool = False
    data: list[tuple[str | None, str]] = field(default_factory=list)


@dataclass
class _Clock:
    """How to turn a RawTime into seconds: the session clock from the header event."""

    kind: int = CLOCK_QPC
    perf_freq: int | None = None
    cpu_mhz: int | None = None

    def hertz(self) -> int | None:
        if self.kind == CLOCK_SYSTEM:
            return 10_000_000
        if self.kind == CLOCK_CYCLE:
            return self.cpu_mhz * 1_000_000 if self.cpu_mhz else None
        return self.perf_freq or None


class _Converter:
    def __init__(self, where: str, provider: str | None) -> None:
        self.where = where
        self.provider = _guid(provider) if provider else None
        self.first: int | None = None
        #: "system" (SystemTime, 100 ns) or "raw" (RawTime, the session clock)
        self.mode: str | None = None
        self.clock = _Clock()
        self.t = 0.0
        self.stats = ConversionStats()

    def error(self, line: int, key: str | None, expected: str, found: str) -> TraceFormatError:
        return TraceFormatError(self.where, line=line, key=key, expected=expected, found=found)

    def _header(self, raw: _RawEvent) -> None:
        """The EventTrace header event: the clock, and whether events were lost."""
        values = {name: text.strip() for name, text in raw.data if name}
        for key in ("EventsLost", "BuffersLost"):
            text = values.get(key, "0")
            if _is_int(text) and _int(text) > 0:
                raise self.error(raw.line, f"EventTrace.{key}",
                                 "a complete capture (no lost events or buffers)",
                                 f"{key} = {_int(text)}: ETW dropped events, the trace "
                                 "would be judged as if whole (use more or larger buffers)")
        for key, attr in (("PerfFreq", "perf_freq"), ("CPUSpeed", "cpu_mhz"),
                          ("ReservedFlags", "kind")):
            found = values.get(key)
            if found is not None and _is_int(found):
                setattr(self.clock, attr, _int(found))

    def _stamp(self, raw: _RawEvent) -> float:
        """Seconds since the first event, from RawTime (with the header's clock) or SystemTime."""
        if self.mode is None:
            hertz = self.clock.hertz()
            self.mode = "raw" if raw.raw_time is not None and hertz else "system"
            if raw.system_time is None and self.mode == "system":
                if raw.raw_time is None:
                    raise self.error(raw.line, "TimeCreated",
                                     "a SystemTime or RawTime attribute", "none")
                raise self.error(raw.line, "RawTime",
                                 "the session clock (PerfFreq) from the EventTrace header "
                                 "event, which tracerpt writes first", "no header event")
        if self.mode == "raw":
            if raw.raw_time is None or not _is_int(raw.raw_time):
                raise self.error(raw.line, "RawTime", "an integer RawTime (tracerpt -rts)",
                                 describe(raw.raw_time) if raw.raw_time else "none")
            stamp, hertz = _int(raw.raw_time), self.clock.hertz() or 1
        else:
            if raw.system_time is None:
                raise self.error(raw.line, "TimeCreated", "a SystemTime attribute", "none")
            try:
                stamp = _ticks(raw.system_time)
            except _BadValue as exc:
                raise self.error(raw.line, "SystemTime", exc.expected,
                                 describe(raw.system_time)) from None
            hertz = 10_000_000
        if self.first is None:
            self.first = stamp
        return (stamp - self.first) / hertz

    def event(self, raw: _RawEvent) -> tuple[str, dict[str, Any]] | None:
        if _guid(raw.provider) == EVENT_TRACE_GUID:
            self._header(raw)
            self.stats.skipped += 1
            return None
        if self.provider is not None and _guid(raw.provider) != self.provider:
            self.stats.skipped += 1
            return None
        name = self._name(raw)
        if raw.binary and self.provider is not None:
            raise self.error(
                raw.line, f"{name or 'event ' + (raw.event_id or '?').strip()}.BinaryEventData",
                "decoded fields (tracerpt renders a TraceLogging event it can read as "
                "EventData)", "undecoded BinaryEventData: the event's metadata did not "
                "reach tracerpt; decode the .etl with 'callout-harness etw decode' instead")
        if name is None:
            if self.provider is None:
                self.stats.skipped += 1
                return None
            raise self.error(raw.line, "Task", "a TraceLogging event name in RenderingInfo/Task",
                             "none")
        if self.provider is None and name not in SCHEMA:
            self.stats.skipped += 1
            return None
        # Per-CPU buffers can hand tracerpt a timestamp a tick behind its
        # predecessor; file order is the event order, so t holds still then.
        self.t = max(self.t, self._stamp(raw))
        return name, self._fields(name, raw)

    @staticmethod
    def _name(raw: _RawEvent) -> str | None:
        if raw.rendered_task and raw.rendered_task.strip():
            return raw.rendered_task.strip()
        task = (raw.system_task or "").strip()
        return task if task and not task.isdigit() else None

    def _fields(self, kind: str, raw: _RawEvent) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name, text in raw.data:
            if not name or name in ("seq", "t", "ev"):
                continue
            if text.strip().startswith("win:Error"):
                raise self.error(raw.line, f"{kind}.{name}", "a rendered value",
                                 f"tracerpt's {text.strip()}: it could not render the field")
            if text == "" and not (kind == "complete_classify" and name == "action"):
                continue  # a field the driver left empty is a field left out
            try:
                fields[name] = _converter(kind, name)(text)
            except _BadValue as exc:
                raise self.error(raw.line, f"{kind}.{name}", exc.expected,
                                 describe(text)) from None
        return fields


class _Reader:
    """expat callbacks that collect each depth-2 ``<Event>`` as a :class:`_RawEvent`.

    Line numbers come from the parser itself, so they are exact however the
    input is chunked; the input is fed in large blocks.
    """

    #: element path below <Event> -> what its text is
    TEXT_PATHS: dict[tuple[str, ...], str] = {
        ("System", "Task"): "system_task",
        ("System", "EventID"): "event_id",
        ("RenderingInfo", "Task"): "rendered_task",
        ("EventData", "Data"): "data",
    }

    def __init__(self, parser: Any, converter: _Converter) -> None:
        self.parser = parser
        self.converter = converter
        self.path: list[str] = []
        self.event: _RawEvent | None = None
        self.text: list[str] | None = None
        self.data_name: str | None = None
        self.ready: list[tuple[float, str, dict[str, Any]]] = []
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.chars

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        local = tag.rpartition("}")[2]
        self.path.append(local)
        depth = len(self.path)
        if depth == 1:
            if local != "Events":
                raise self.converter.error(self.parser.CurrentLineNumber, None,
                                           "an <Events> root (tracerpt -of XML)", f"<{local}>")
            return
        if depth == 2:
            if local == "Event":
                self.event = _RawEvent(self.parser.CurrentLineNumber)
            return
        if self.event is not None and depth == 3 and local == "BinaryEventData":
            self.event.binary = True
            return
        if self.event is None or depth != 4:
            return
        where = (self.path[2], local)
        if where == ("System", "Provider"):
            self.event.provider = attrs.get("Guid")
        elif where == ("System", "TimeCreated"):
            self.event.system_time = attrs.get("SystemTime")
            self.event.raw_time = attrs.get("RawTime")
        elif where in self.TEXT_PATHS:
            self.text = []
            self.data_name = attrs.get("Name")

    def chars(self, text: str) -> None:
        if self.text is not None:
            self.text.append(text)

    def end(self, tag: str) -> None:
        depth = len(self.path)
        event = self.event
        if event is not None and depth == 4 and self.text is not None:
            target = self.TEXT_PATHS.get((self.path[2], self.path[3]))
            value = "".join(self.text)
            if target == "data":
                event.data.append((self.data_name, value))
            elif target == "system_task":
                event.system_task = value
            elif target == "event_id":
                event.event_id = value
            elif target == "rendered_task":
                event.rendered_task = value
            self.text = None
        elif event is not None and depth == 2:
            converted = self.converter.event(event)
            if converted is not None:
                self.converter.stats.events += 1
                self.ready.append((self.converter.t, *converted))
            self.event = None
        self.path.pop()


def iter_tracerpt(
    source: str | Path | IO[bytes], *, provider: str | None,
    stats: ConversionStats | None = None, block_bytes: int = 1 << 20,
) -> Iterator[tuple[float, str, dict[str, Any]]]:
    """``(t, kind, fields)`` for each event of the provider in a tracerpt XML file.

    ``provider`` (a GUID) keeps that provider's events; None keeps every event
    whose name is a trace-format kind. Malformed XML or a value that does not
    convert raises :class:`TraceFormatError` naming the file and line.
    """
    where = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "-")
    with contextlib.ExitStack() as stack:
        if isinstance(source, (str, Path)):
            try:
                stream: IO[bytes] = stack.enter_context(Path(source).open("rb"))
            except OSError as exc:
                raise TraceFormatError(
                    str(source), message=f"cannot open ({exc.strerror or exc})"
                ) from None
        else:
            stream = source
        converter = _Converter(str(where), provider)
        try:
            yield from _parse(stream, converter, block_bytes)
        finally:
            if stats is not None:
                stats.events, stats.skipped = converter.stats.events, converter.stats.skipped


def _parse(
    stream: IO[bytes], converter: _Converter, block_bytes: int,
) -> Iterator[tuple[float, str, dict[str, Any]]]:
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    reader = _Reader(parser, converter)
    while True:
        block = stream.read(block_bytes)
        try:
            parser.Parse(block, not block)
        except expat.ExpatError as exc:
            message = expat.errors.messages[exc.code]
            raise converter.error(exc.lineno, None, "well-formed tracerpt XML",
                                  f"{message} at column {exc.offset + 1}") from None
        yield from reader.ready
        reader.ready.clear()
        if not block:
            break


def convert_tracerpt(
    source: str | Path | IO[bytes], out: str | Path, *, provider: str | None,
    **meta: Any,
) -> ConversionStats:
    """Convert tracerpt XML at ``source`` into a trace-format file at ``out``.

    ``meta`` goes into the header line (``target``, ``driver``, ``scenario``...).
    Nothing is left at ``out`` when the input is bad.
    """
    out = Path(out)
    stats = ConversionStats()
    partial = out.with_name(out.name + ".partial")
    now = [0.0]
    try:
        with partial.open("wb") as stream:
            writer = TraceWriter(stream, clock=lambda: now[0])
            writer.header(source="etw", **meta)
            for t, kind, fields in iter_tracerpt(source, provider=provider, stats=stats):
                now[0] = t
                writer.emit(kind, **fields)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return stats


def converted_events(source: str | Path | IO[bytes], *, provider: str | None) -> list[Event]:
    """The converted events in memory, numbered as :func:`convert_tracerpt` numbers them."""
    now = [0.0]
    writer = TraceWriter(None, clock=lambda: now[0], keep=True)
    for t, kind, fields in iter_tracerpt(source, provider=provider):
        now[0] = t
        writer.emit(kind, **fields)
    return writer.events
