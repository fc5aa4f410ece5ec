"""The strict, streaming trace reader.

It reads one line at a time (a trace can hold millions of events), checks the
framing (``seq`` strictly increasing, ``t`` finite and never decreasing, ``ev``
a string) and the JSON type of every field it knows, turns statuses into
canonical names, and raises :class:`~harness.errors.TraceFormatError` naming
the file, the line, the field, what was expected and what was found. It never
guesses: a line it cannot read exactly is an error, not a skipped line.

Bounds: a line holds at most :data:`MAX_LINE_BYTES` bytes (read in pieces, so a
100 MB line costs no more memory than the limit) and its values nest at most
:data:`MAX_DEPTH` deep. A header that promises an end (``"ends": true``) makes
a trace without its final ``trace_end`` event (or with a wrong count) bad
input: the file was cut short.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from harness.errors import TraceFormatError, describe
from harness.limits import nesting_depth
from harness.trace.events import END_KIND, FORMAT_VERSION, SCHEMA, TYPE_NAMES, Event
from harness.trace.status import canonical

_loads: Callable[[bytes], Any]
try:
    import orjson

    _loads = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover - orjson is a declared dependency
    import json

    _loads = json.loads
    _JSON_ERRORS = (ValueError,)

_NUMBER_TYPES = (int, float)

#: The longest trace line the reader accepts, in bytes.
MAX_LINE_BYTES = 1 << 20
#: How deep objects and arrays may nest within one trace line.
MAX_DEPTH = 64
_ECHO = 80
_SCHEMA_ITEMS = {kind: fields for kind, fields in SCHEMA.items()}


class TraceReader:
    """Iterate over the events of one trace file, validating as it goes.

    ``header`` holds the header object once the first line has been read (or
    None when the trace has none); ``events`` counts the events yielded so far.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.header: dict[str, Any] | None = None
        self.events = 0

    def _error(self, line: int | None, key: str | None = None, **kw: Any) -> TraceFormatError:
        return TraceFormatError(self.path, line=line, key=key, **kw)

    def _open(self) -> IO[bytes]:
        if self.path == "-":
            return sys.stdin.buffer
        p = Path(self.path)
        try:
            if p.is_dir():
                raise self._error(None, expected="a trace file", found="a directory")
            return p.open("rb")
        except FileNotFoundError:
            raise self._error(None, message="no such file") from None
        except PermissionError:
            raise self._error(None, message="permission denied") from None
        except OSError as exc:
            raise self._error(None, message=f"cannot open ({exc.strerror or exc})") from None

    def __iter__(self) -> Iterator[Event]:
        stream = self._open()
        try:
            yield from self._read(stream)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    def _read(self, stream: IO[bytes]) -> Iterator[Event]:
        loads = _loads
        schema_of = _SCHEMA_ITEMS.get
        last_seq: int | None = None
        last_t: float | None = None
        seen_any = False
        lineno = 0
        ends = False
        ended_at: int | None = None
        readline = stream.readline
        limit = MAX_LINE_BYTES + 1
        try:
            while True:
                raw = readline(limit)
                if not raw:
                    break
                lineno += 1
                if len(raw) == limit and not raw.endswith(b"\n"):
                    _drain(stream)
                    raise self._error(
                        lineno, expected=f"a line of at most {MAX_LINE_BYTES} bytes",
                        found="a longer line",
                    )
                if raw.isspace() or not raw:
                    continue
                if ended_at is not None:
                    raise self._error(
                        lineno, message=f"an event after the trace_end of line {ended_at}"
                    )
                try:
                    obj = loads(raw)
                except _JSON_ERRORS:
                    raise self._bad_json(raw, lineno) from None
                if (len(raw) > 2 * MAX_DEPTH and raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
                        and nesting_depth(obj, MAX_DEPTH) > MAX_DEPTH):
                    raise self._error(
                        lineno, expected=f"values nested at most {MAX_DEPTH} deep",
                        found="deeper nesting",
                    )
                if type(obj) is not dict:
                    raise self._error(
                        lineno, expected="a JSON object", found=_json_kind(obj)
                    )
                ev = obj.get("ev")
                if ev == "trace" and not seen_any:
                    seen_any = True
                    self._check_header(obj, lineno)
                    self.header = obj
                    ends = obj.get("ends") is True
                    if "seq" in obj:
                        last_seq = obj["seq"]
                    if "t" in obj:
                        last_t = obj["t"]
                    continue
                seen_any = True
                # framing
                seq = obj.get("seq")
                if type(seq) is not int:
                    raise self._missing_or_bad(obj, "seq", "an integer", lineno)
                t: Any = obj.get("t")
                if type(t) not in _NUMBER_TYPES or not math.isfinite(t):
                    raise self._missing_or_bad(obj, "t", "a finite number", lineno)
                if type(ev) is not str:
                    raise self._missing_or_bad(obj, "ev", "an event kind (string)", lineno)
                if last_seq is not None and seq <= last_seq:
                    raise self._error(
                        lineno, "seq",
                        expected=f"a seq greater than {last_seq}", found=str(seq),
                    )
                if last_t is not None and t < last_t:
                    raise self._error(
                        lineno, "t", expected=f"t not below {last_t}", found=repr(t)
                    )
                last_seq = seq
                last_t = t
                if ev == "trace":
                    raise self._error(
                        lineno, "ev", message="a trace header may only be the first line"
                    )
                if ev == END_KIND:
                    count = obj.get("events")
                    if ends and (type(count) is not int or count != self.events):
                        raise self._error(
                            lineno, "events",
                            expected=f"the number of events before trace_end ({self.events})",
                            found=describe(count) if "events" in obj else "nothing",
                        )
                    if ends:
                        ended_at = lineno
                        continue
                fields = schema_of(ev)
                if fields is not None:
                    for key, value in obj.items():
                        allowed = fields.get(key)
                        if allowed is not None and type(value) not in allowed:
                            raise self._error(
                                lineno, key,
                                expected=f"{TYPE_NAMES.get(allowed, 'a status')} in {ev!r}",
                                found=describe(value),
                            )
                    status = obj.get("status")
                    if status is not None:
                        name = canonical(status)
                        if name is None:
                            raise self._error(
                                lineno, "status",
                                expected="a known status name or a 32-bit value (int or '0x...')",
                                found=describe(status),
                            )
                        obj["status"] = name
                self.events += 1
                yield obj
        except OSError as exc:
            raise self._error(lineno + 1, message=f"read error ({exc.strerror or exc})") from None
        if not seen_any:
            raise self._error(None, expected="at least one JSON line", found="an empty trace")
        if ends and ended_at is None:
            raise self._error(
                lineno, message=f"cut short after line {lineno}: the header promises a "
                "trace_end event and none came (an interrupted run?)",
            )

    def _check_header(self, obj: dict[str, Any], lineno: int) -> None:
        fmt = obj.get("format")
        if type(fmt) is not int:
            raise self._missing_or_bad(obj, "format", "format version 1", lineno)
        if fmt != FORMAT_VERSION:
            raise self._error(
                lineno, "format", expected=f"format version {FORMAT_VERSION}", found=str(fmt)
            )
        if "ends" in obj and type(obj["ends"]) is not bool:
            raise self._error(lineno, "ends", expected="true or false",
                              found=describe(obj["ends"]))
        if "seq" in obj and type(obj["seq"]) is not int:
            raise self._error(lineno, "seq", expected="an integer", found=describe(obj["seq"]))
        t: Any = obj.get("t")
        if "t" in obj and (type(t) not in _NUMBER_TYPES or not math.isfinite(t)):
            raise self._error(lineno, "t", expected="a finite number", found=describe(t))

    def _missing_or_bad(
        self, obj: dict[str, Any], key: str, expected: str, lineno: int
    ) -> TraceFormatError:
        if key not in obj:
            return self._error(lineno, key, expected=expected, found="nothing (field missing)")
        return self._error(lineno, key, expected=expected, found=describe(obj[key]))

    def _bad_json(self, raw: bytes, lineno: int) -> TraceFormatError:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._error(
                lineno, expected="UTF-8 text",
                found=f"byte 0x{raw[exc.start]:02X} at column {exc.start + 1}",
            )
        import json

        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return self._error(
                lineno, expected="one JSON object per line",
                found=f"{exc.msg.lower()} at column {exc.colno}",
            )
        except RecursionError:
            return self._error(
                lineno, expected=f"values nested at most {MAX_DEPTH} deep",
                found="deeper nesting",
            )
        except ValueError:
            pass
        return self._error(
            lineno, expected="JSON within the format's limits (64-bit integers, no NaN)",
            found="a value outside them",
        )


def _drain(stream: IO[bytes]) -> None:
    """Skip the rest of an overlong line in bounded pieces (it is never held whole)."""
    while True:
        more = stream.readline(MAX_LINE_BYTES)
        if not more or more.endswith(b"\n"):
            return


def _json_kind(obj: object) -> str:
    if isinstance(obj, list):
        return "a JSON array"
    return describe(obj)


def read_trace(path: str | Path) -> Iterator[Event]:
    """Yield the validated events of the trace at ``path`` (header excluded)."""
    return iter(TraceReader(path))
