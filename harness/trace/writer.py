"""Write traces in trace format version 1.

The writer owns ``seq``: every event gets the next number. ``t`` comes from a
clock callable (the engine model's virtual clock, or a converter's timestamps).
Output is byte-for-byte deterministic for the same sequence of calls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from harness.trace.events import FORMAT_VERSION, Event

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

    def header(self, **meta: Any) -> None:
        """Write the header line: ``{"ev": "trace", "format": 1, **meta}``."""
        obj: dict[str, Any] = {"ev": "trace", "format": FORMAT_VERSION}
        obj.update(meta)
        if self._stream is not None:
            self._stream.write(_dumps(obj) + b"\n")

    def emit(self, ev: str, /, **fields: Any) -> Event:
        """Write one event and return it (with its ``seq`` and ``t``)."""
        obj: Event = {"seq": self._next_seq, "t": self._clock(), "ev": ev}
        obj.update(fields)
        self._next_seq += 1
        self.count += 1
        if self._stream is not None:
            self._stream.write(_dumps(obj) + b"\n")
        if self.keep:
            self.events.append(obj)
        return obj

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1


def write_events(path: str | Path, events: list[Event], **meta: Any) -> None:
    """Write already-numbered events (and a header when ``meta`` is given) to ``path``."""
    with Path(path).open("wb") as out:
        if meta:
            obj: dict[str, Any] = {"ev": "trace", "format": FORMAT_VERSION}
            obj.update(meta)
            out.write(_dumps(obj) + b"\n")
        for event in events:
            out.write(_dumps(event) + b"\n")
