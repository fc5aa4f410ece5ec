"""Write ``.etl`` files the way an ETW file session lays them out, for the reader's tests.

The layout is the documented one (WMI_BUFFER_HEADER, the logfile header
record with its TRACE_LOGFILE_HEADER, EVENT_HEADER records with extended data
items for TraceLogging's provider traits and event metadata): one header
buffer, then per-processor buffers filled in time order, flushed in an
interleaved file order as a real session flushes them. The real capture in
``tests/etw/data`` checks the same reader against Windows' own output.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BUFFER_HEADER = 0x48
FILETIME_2026 = 134_170_000_000_000_000  # about 2026-03-04


@dataclass
class Event:
    stamp: int
    provider: str
    meta: bytes | None
    data: bytes
    traits: bytes | None = None
    cpu: int = 0
    pid: int = 1234
    tid: int = 5678
    event_id: int = 0
    level: int = 5
    keyword: int = 1


@dataclass
class Capture:
    events: list[Event] = field(default_factory=list)
    buffer_size: int = 4096
    perf_freq: int = 10_000_000
    clock: int = 1
    cpu_mhz: int = 2995
    events_lost: int = 0
    buffers_lost: int = 0
    buffer_flags: int = 0x20  # PROC_INDEX
    start_stamp: int = 1_000_000
    start_time: int = FILETIME_2026
    os_build: int = 22631
    processors: int = 2

    def write(self, path: Path) -> Path:
        buffers = [self._header_buffer()]
        per_cpu: dict[int, list[bytes]] = {}
        for ev in sorted(self.events, key=lambda e: e.stamp):
            per_cpu.setdefault(ev.cpu, []).append(_event_record(ev))
        filled: list[list[bytes]] = []
        for cpu in sorted(per_cpu):
            bufs = _pack(per_cpu[cpu], self.buffer_size, cpu, self.buffer_flags)
            filled.append(bufs)
        # flush order: round robin over the processors, as buffers fill
        while any(filled):
            for bufs in filled:
                if bufs:
                    buffers.append(bufs.pop(0))
        path.write_bytes(b"".join(buffers))
        return path

    def _header_buffer(self) -> bytes:
        names = "callout-harness\0".encode("utf-16-le") + "C:\\h\\t.etl\0".encode("utf-16-le")
        body = bytearray(280)
        struct.pack_into("<IIII q III I", body, 0, self.buffer_size, 0x0501000A,
                         self.os_build, self.processors, self.start_time + 50_000_000, 156250,
                         0, 9, 3)
        struct.pack_into("<IIII", body, 40, 1, 8, self.events_lost, self.cpu_mhz)
        struct.pack_into("<qqq II", body, 248, self.start_time - 10**10, self.perf_freq,
                         self.start_time, self.clock, self.buffers_lost)
        payload = bytes(body) + names
        size = 0x20 + len(payload)
        record = struct.pack("<HBBHHIIqII", 2, 2, 0xC0, size, 0, 1, 2, self.start_stamp, 0, 0)
        return _buffer([record + payload], self.buffer_size, 0, 0x1)


def _event_record(ev: Event) -> bytes:
    items: list[tuple[int, bytes]] = []
    if ev.traits is not None:
        items.append((0x0C, ev.traits))
    if ev.meta is not None:
        items.append((0x0B, ev.meta))
    ext = b""
    for i, (kind, data) in enumerate(items):
        size = 8 + len(data)
        padded = (size + 7) & ~7
        more = 1 if i + 1 < len(items) else 0
        ext += struct.pack("<HHHH", padded, kind, more, len(data)) + data + \
            b"\0" * (padded - size)
    flags = 0x40 | (0x01 if items else 0)  # 64-bit header, extended info
    size = 0x50 + len(ext) + len(ev.data)
    header = struct.pack("<HBBHHIIq", size, 0x13, 0xC0, flags, 0, ev.tid, ev.pid, ev.stamp)
    header += uuid.UUID(ev.provider.strip("{}")).bytes_le
    header += struct.pack("<HBBBBHQ", ev.event_id, 0, 11, ev.level, 0, 0, ev.keyword)
    header += struct.pack("<Q", 0) + b"\0" * 16
    return header + ext + ev.data


def _buffer(records: list[bytes], size: int, cpu: int, flags: int) -> bytes:
    body = b""
    for rec in records:
        body += rec + b"\0" * (((len(rec) + 7) & ~7) - len(rec))
    filled = BUFFER_HEADER + len(body)
    assert filled <= size, "record larger than the buffer"
    head = bytearray(BUFFER_HEADER)
    struct.pack_into("<III", head, 0, size, filled, filled)
    struct.pack_into("<HH", head, 0x28, cpu, 1)
    struct.pack_into("<IHH", head, 0x30, filled, flags, 0)
    return bytes(head) + body + b"\xff" * (size - filled)


def _pack(records: list[bytes], size: int, cpu: int, flags: int) -> list[bytes]:
    out: list[bytes] = []
    current: list[bytes] = []
    used = BUFFER_HEADER
    for rec in records:
        need = (len(rec) + 7) & ~7
        if used + need > size and current:
            out.append(_buffer(current, size, cpu, flags))
            current, used = [], BUFFER_HEADER
        current.append(rec)
        used += need
    if current:
        out.append(_buffer(current, size, cpu, flags))
    return out
