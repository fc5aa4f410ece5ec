"""Write traces in trace format version 1.

The writer owns ``seq``: every event gets the next number. ``t`` comes from a
clock callable (the engine model's virtual clock, or a converter's timestamps).
Output is byte-for-byte deterministic for the same sequence of calls.

A target promises that its trace is whole: ``header(ends=True, ...)`` writes
``"ends": true`` and :meth:`TraceWriter.end` (or leaving ``with writer:``
without an exception) writes the final ``trace_end`` event with the event
count. A trace whose writer never reached :meth:`~TraceWriter.end` (Ctrl-C, a
crash) keeps the promise without the marker, and the reader refuses it as
cut short. Leaving ``with writer:`` by an exception writes no marker on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from harness.trace.events import END_KIND, FORMAT_VERSION, Event

try:
    import orjson

    def _dumps(obj: dict[str, Any]) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is a declared dependency
    import json

    def _dumps(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class TraceWriter:
    """Append events to a binary stream, numbering them.

    ``clock`` returns the current trace time in seconds. Events are also kept
    in ``events`` when ``keep`` is true, for callers that check in-process.
    """

    def __init__(
        self,
        stream: IO[bytes] | None = None,
        clock: Callable[[], float] = lambda: 0.0,
        *,
        keep: bool = False,
        first_seq: int = 1,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._next_seq = first_seq
        self.keep = keep
        self.events: list[Event] = []
        self.count = 0
        self.promised_end = False
        self.ended = False

    def header(self, *, ends: bool = False, **meta: Any) -> None:
        """Write the header line: ``{"ev": "trace", "format": 1, **meta}``.

        ``ends=True`` adds ``"ends": true``: the trace promises its final
        ``trace_end`` event, so call :meth:`end` when the run finished.
        """
        obj: dict[str, Any] = {"ev": "trace", "format": FORMAT_VERSION}
        if ends:
            obj["ends"] = True
            self.promised_end = True
        obj.update(meta)
        if self._stream is not None:
            self._stream.write(_dumps(obj) + b"\n")

    def end(self) -> None:
        """Write the ``trace_end`` event (once; later calls do nothing) and flush.

        Call it only when the run is complete: its absence is what tells a
        reader that the trace was cut short.
        """
        if self.ended:
            return
        self.ended = True
        obj: Event = {"seq": self._next_seq, "t": self._clock(), "ev": END_KIND,
                      "events": self.count}
        self._next_seq += 1
        if self._stream is not None:
            self._stream.write(_dumps(obj) + b"\n")
            self._stream.flush()

    def close(self) -> None:
        """End the trace (see :meth:`end`) and close the stream."""
        self.end()
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Only a run that finished gets its end marker; an exception leaves the
        # trace visibly cut short.
        if kind is None:
            self.end()

    def emit(self, ev: str, /, **fields: Any) -> Event:
        """Write one event and return it (with its ``seq`` and ``t``)."""
        if self.ended:
            raise ValueError("trace already ended: no event may follow trace_end")
        obj: Event = {"seq": self._next_seq, "t": self._clock(), "ev": ev}
        obj.update(fields)
        self._next_seq += 1
        self.count += 1
        if self._stream is not None:
            self._stream.write(_dumps(obj) + b"\n")
        if self.keep:
            self.events.append(obj)
        return obj

    def flush(self) -> None:
        """Push the events written so far to the stream's file (no-op without a stream)."""
        if self._stream is not None and not self._stream.closed:
            self._stream.flush()

    @property
    def path(self) -> str | None:
        """The file the stream writes, when it is a named file (None in memory or on a pipe)."""
        name = getattr(self._stream, "name", None)
        return name if isinstance(name, str) and not name.startswith("<") else None

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1


def write_events(
    path: str | Path, events: list[Event], *, ends: bool = False, **meta: Any
) -> None:
    """Write already-numbered events (and a header when ``meta`` is given) to ``path``.

    ``ends=True`` writes the header's promise and the final ``trace_end`` event
    (after the last event's ``seq`` and ``t``).
    """
    with Path(path).open("wb") as out:
        if meta or ends:
            obj: dict[str, Any] = {"ev": "trace", "format": FORMAT_VERSION}
            if ends:
                obj["ends"] = True
            obj.update(meta)
            out.write(_dumps(obj) + b"\n")
        for event in events:
            out.write(_dumps(event) + b"\n")
        if ends:
            last = events[-1] if events else {"seq": 0, "t": 0.0}
            out.write(_dumps({"seq": int(last["seq"]) + 1, "t": last["t"], "ev": END_KIND,
                              "events": len(events)}) + b"\n")
