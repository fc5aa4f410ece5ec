"""Decode every event of an ``.etl`` file: the container reader plus the TraceLogging decoder.

:func:`decode_etl` yields one :class:`DecodedEvent` per EVENT_HEADER event in
time-stamp order (all processors' buffers merged): provider GUID and name
(from the TraceLogging provider traits), event name and fields (from the
event's TraceLogging metadata), time stamp as ISO 8601 UTC and as seconds
since the first event (``t``, from the session clock: QPC ticks over the
header's ``PerfFreq``), process and thread id. An event without TraceLogging
metadata (a manifest-based provider's) has no name; its user data is kept as
hex. This is what ``callout-harness etw decode`` prints.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import TraceFormatError
from harness.etw.etl import EXT_EVENT_SCHEMA_TL, EXT_PROV_TRAITS, EtlEvent, EtlFile, etl_file
from harness.etw.tracelogging import (
    EventSchema,
    TraceLoggingError,
    decode_data,
    parse_event_metadata,
    parse_provider_traits,
)

_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class DecodedEvent:
    provider: str
    provider_name: str | None
    name: str | None
    timestamp: str
    t: float
    pid: int
    tid: int
    cpu: int
    event_id: int
    level: int
    opcode: int
    keyword: int
    fields: dict[str, Any] = field(default_factory=dict)
    user_data: str | None = None  # hex, when the event is not TraceLogging

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": self.provider, "provider_name": self.provider_name,
            "name": self.name, "timestamp": self.timestamp, "t": self.t, "pid": self.pid,
            "tid": self.tid, "cpu": self.cpu, "id": self.event_id, "level": self.level,
            "opcode": self.opcode, "keyword": f"0x{self.keyword:x}", "fields": self.fields,
        }
        if self.user_data is not None:
            out["user_data"] = self.user_data
        return out


def filetime_text(filetime: int) -> str:
    """A FILETIME as ``2026-03-04T17:11:12.6210169Z`` (100 ns, UTC)."""
    try:
        stamp = _EPOCH + datetime.timedelta(microseconds=filetime // 10)
    except OverflowError:
        return f"FILETIME 0x{filetime:x}"
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{filetime % 10_000_000:07d}Z"


class _Decoder:
    def __init__(self, etl: EtlFile) -> None:
        self.etl = etl
        self.first: int | None = None
        # metadata blobs repeat for every event of a kind: parse each once
        self._schemas: dict[bytes, EventSchema] = {}
        self._traits: dict[bytes, str] = {}

    def _schema(self, blob: bytes) -> EventSchema:
        schema = self._schemas.get(blob)
        if schema is None:
            schema = parse_event_metadata(blob)
            if len(self._schemas) < 4096:
                self._schemas[blob] = schema
        return schema

    def _provider_name(self, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        if blob not in self._traits:
            self._traits[blob] = parse_provider_traits(blob).name
        return self._traits[blob]

    def event(self, ev: EtlEvent) -> DecodedEvent:
        if self.first is None:
            self.first = ev.stamp
        name: str | None = None
        fields: dict[str, Any] = {}
        user_data: str | None = None
        meta = ev.extended_item(EXT_EVENT_SCHEMA_TL)
        try:
            provider_name = self._provider_name(ev.extended_item(EXT_PROV_TRAITS))
            if meta is not None:
                schema = self._schema(meta)
                name = schema.name
                fields = decode_data(schema, ev.user_data,
                                     pointer_size=8 if ev.flags & 0x40 else
                                     4 if ev.flags & 0x20 else self.etl.header.pointer_size)
            else:
                user_data = ev.user_data.hex()
        except TraceLoggingError as exc:
            raise TraceFormatError(self.etl.path, key=f"{ev.where} (provider {ev.provider})",
                                   message=str(exc)) from None
        return DecodedEvent(
            provider=ev.provider, provider_name=provider_name, name=name,
            timestamp=filetime_text(self.etl.filetime(ev.stamp)),
            t=self.etl.seconds(ev.stamp, self.first), pid=ev.pid, tid=ev.tid, cpu=ev.cpu,
            event_id=ev.event_id, level=ev.level, opcode=ev.opcode, keyword=ev.keyword,
            fields=fields, user_data=user_data,
        )


def decode_events(etl: EtlFile, *, providers: set[str] | None = None
                  ) -> Iterator[DecodedEvent]:
    """Decode the events of an open file; ``providers`` ("{GUID}" upper case) filters them.

    ``t`` counts from the first event that passes the filter.
    """
    decoder = _Decoder(etl)
    for ev in etl.events():
        if providers is None or ev.provider in providers:
            yield decoder.event(ev)


def decode_etl(path: str | Path, *, providers: set[str] | None = None
               ) -> list[DecodedEvent]:
    """Every event of the ``.etl`` at ``path``; see :func:`decode_events`."""
    with etl_file(path) as etl:
        return list(decode_events(etl, providers=providers))
