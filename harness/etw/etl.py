"""Read an ETW ``.etl`` log file: the logfile header and every event record.

An ``.etl`` file is a sequence of buffers of the session's buffer size. Each
buffer starts with a 0x48-byte WMI_BUFFER_HEADER (``BufferSize`` at 0x00,
the filled size at 0x30, ``BufferFlag`` at 0x34, the processor at 0x28), then
8-byte aligned records up to the filled size. The byte at offset 2 of a record
is its header type and offset 3 has the 0x80 marker bit:

SYSTEM32/64 (1, 2)       0x20 bytes: size at 4, hook id at 6, thread, process,
                         time stamp at 0x10 (the first record of the file is
                         the logfile header event, hook 0, its payload the
                         TRACE_LOGFILE_HEADER)
COMPACT32/64 (3, 4)      the same without the CPU times, 0x18 bytes
PERFINFO32/64 (16, 17)   size at 4, time stamp at 8, 0x10 bytes
EVENT_HEADER32/64 (18, 19)  the EVENT_HEADER, 0x50 bytes: size at 0, flags,
                         thread, process, time stamp at 0x10, provider GUID,
                         EVENT_DESCRIPTOR, CPU time, activity id; with
                         EVENT_HEADER_FLAG_EXTENDED_INFO a chain of extended
                         data items follows (``UINT16 size, UINT16 type,
                         UINT16 linkage, UINT16 data size``, data, 8-aligned;
                         linkage bit 0: another item follows), then user data
other types              size at 0 (FULL/INSTANCE/MESSAGE headers), skipped

Each processor fills its own buffers, so records are time-ordered per
processor only: :meth:`EtlFile.events` merges the processors' streams by time
stamp. Time stamps are on the session clock that the header's
``ReservedFlags`` names (1 QPC with ``PerfFreq``, 2 system time in 100 ns,
3 CPU cycles at ``CpuSpeedInMHz``). A header reporting ``EventsLost`` or
``BuffersLost``, or a buffer flagged as having lost events, makes the file
incomplete: :func:`open_etl` refuses it, since a trace missing events would
be judged as if whole. Compressed buffers are refused too (start the session
without compression).
"""

from __future__ import annotations

import contextlib
import heapq
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from harness.errors import TraceFormatError

BUFFER_HEADER_SIZE = 0x48
EVENT_HEADER_SIZE = 0x50
#: Buffer flags (WMI_BUFFER_HEADER.BufferFlag).
FLAG_EVENTS_LOST, FLAG_BUFFER_LOST, FLAG_PROC_INDEX, FLAG_COMPRESSED = 0x2, 0x4, 0x20, 0x40
#: Record header types (byte 2 of a record).
SYSTEM32, SYSTEM64, COMPACT32, COMPACT64 = 1, 2, 3, 4
PERFINFO32, PERFINFO64, EVENT_HEADER32, EVENT_HEADER64 = 16, 17, 18, 19
_SIZE_AT_4 = frozenset({SYSTEM32, SYSTEM64, COMPACT32, COMPACT64, PERFINFO32, PERFINFO64})
#: EVENT_HEADER flags.
HEADER_FLAG_EXTENDED_INFO = 0x0001
HEADER_FLAG_32_BIT = 0x0020
#: Extended data item types that TraceLogging uses.
EXT_EVENT_SCHEMA_TL, EXT_PROV_TRAITS = 0x0B, 0x0C
CLOCK_QPC, CLOCK_SYSTEM, CLOCK_CYCLE = 1, 2, 3
#: Bounds on what a file may claim.
MAX_BUFFER_SIZE = 64 << 20
MAX_EXTENDED_ITEMS = 64


@dataclass(frozen=True)
class LogfileHeader:
    """The TRACE_LOGFILE_HEADER of the file's first record."""

    buffer_size: int
    version: int
    os_build: int
    processors: int
    end_time: int  # FILETIME
    buffers_written: int
    pointer_size: int
    events_lost: int
    cpu_mhz: int
    boot_time: int
    perf_freq: int
    start_time: int  # FILETIME
    clock: int  # ReservedFlags
    buffers_lost: int
    logger_name: str
    log_file_name: str
    start_stamp: int  # the header record's own time stamp, on the session clock

    @property
    def hertz(self) -> int:
        """Ticks per second of the session clock."""
        if self.clock == CLOCK_SYSTEM:
            return 10_000_000
        if self.clock == CLOCK_CYCLE:
            return self.cpu_mhz * 1_000_000
        return self.perf_freq


@dataclass(frozen=True)
class EtlEvent:
    """One EVENT_HEADER record."""

    stamp: int
    provider: str  # "{GUID}" upper case
    pid: int
    tid: int
    cpu: int
    event_id: int
    version: int
    channel: int
    level: int
    opcode: int
    task: int
    keyword: int
    flags: int
    extended: tuple[tuple[int, bytes], ...]
    user_data: bytes
    where: str  # "buffer N offset 0x..", for errors

    def extended_item(self, kind: int) -> bytes | None:
        for ext_type, data in self.extended:
            if ext_type == kind:
                return data
        return None


@dataclass
class _Buffer:
    index: int
    offset: int
    size: int
    cpu: int


@dataclass
class EtlFile:
    """An open ``.etl`` file: its header and its buffers (events read lazily)."""

    path: str
    stream: BinaryIO
    header: LogfileHeader
    buffers: list[_Buffer] = field(default_factory=list)
    skipped: int = 0  # records that are not EVENT_HEADER events

    def error(self, where: str, expected: str, found: str) -> TraceFormatError:
        return TraceFormatError(self.path, key=where, expected=expected, found=found)

    def _read_buffer(self, buf: _Buffer) -> bytes:
        self.stream.seek(buf.offset)
        data = self.stream.read(buf.size)
        if len(data) != buf.size:
            raise self.error(f"buffer {buf.index}", f"{buf.size} bytes",
                             f"{len(data)} (the file is cut short)")
        return data

    def _records(self, buf: _Buffer) -> Iterator[EtlEvent]:
        data = self._read_buffer(buf)
        filled = min(_u32(data, 0x30), buf.size)
        pos = BUFFER_HEADER_SIZE
        while pos + 8 <= filled:
            if data[pos:pos + 4] == b"\xff\xff\xff\xff":
                break  # the unused rest of the buffer
            kind = data[pos + 2]
            size = _u16(data, pos + 4) if kind in _SIZE_AT_4 else _u16(data, pos)
            where = f"buffer {buf.index} offset 0x{pos:x}"
            if size < 8 or pos + size > filled:
                raise self.error(where, f"a record of 8..{filled - pos} bytes",
                                 f"header type {kind}, size {size}")
            if kind in (EVENT_HEADER32, EVENT_HEADER64):
                yield self._event(data[pos:pos + size], buf, where)
            else:
                self.skipped += 1
            pos += (size + 7) & ~7

    def _event(self, rec: bytes, buf: _Buffer, where: str) -> EtlEvent:
        if len(rec) < EVENT_HEADER_SIZE:
            raise self.error(where, f"an EVENT_HEADER of {EVENT_HEADER_SIZE} bytes",
                             f"{len(rec)}")
        (flags, tid, pid, stamp) = struct.unpack_from("<4xH2xIIq", rec, 0)
        provider = "{" + str(uuid.UUID(bytes_le=rec[0x18:0x28])).upper() + "}"
        event_id, version, channel, level, opcode, task, keyword = struct.unpack_from(
            "<HBBBBHQ", rec, 0x28)
        pos = EVENT_HEADER_SIZE
        items: list[tuple[int, bytes]] = []
        if flags & HEADER_FLAG_EXTENDED_INFO:
            while True:
                if len(items) >= MAX_EXTENDED_ITEMS or pos + 8 > len(rec):
                    raise self.error(where, "a chain of extended data items inside the event",
                                     f"an item at 0x{pos:x} of a {len(rec)}-byte event")
                size, ext_type, linkage, data_size = struct.unpack_from("<HHHH", rec, pos)
                if size < 8 or pos + size > len(rec) or data_size > size - 8:
                    raise self.error(where, "an extended data item that fits the event",
                                     f"size {size}, data size {data_size}")
                items.append((ext_type, rec[pos + 8:pos + 8 + data_size]))
                pos += (size + 7) & ~7
                if not linkage & 1:
                    break
        return EtlEvent(stamp, provider, pid, tid, buf.cpu, event_id, version, channel, level,
                        opcode, task, keyword, flags, tuple(items), rec[pos:], where)

    def events(self) -> Iterator[EtlEvent]:
        """Every EVENT_HEADER event, the processors' buffers merged by time stamp."""
        by_cpu: dict[int, list[_Buffer]] = {}
        for buf in self.buffers:
            by_cpu.setdefault(buf.cpu, []).append(buf)

        def stream(bufs: list[_Buffer]) -> Iterator[EtlEvent]:
            for buf in bufs:
                yield from self._records(buf)

        # ties keep file order: heapq.merge is stable across its inputs' order
        yield from heapq.merge(*(stream(b) for _, b in sorted(by_cpu.items())),
                               key=lambda e: e.stamp)

    def seconds(self, stamp: int, first: int) -> float:
        """Seconds between two time stamps on the session clock."""
        return (stamp - first) / (self.header.hertz or 1)

    def filetime(self, stamp: int) -> int:
        """A time stamp as a FILETIME (100 ns since 1601, UTC)."""
        if self.header.clock == CLOCK_SYSTEM:
            return stamp
        delta = stamp - self.header.start_stamp
        return self.header.start_time + delta * 10_000_000 // (self.header.hertz or 1)

    def close(self) -> None:
        self.stream.close()


def _u16(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos:pos + 2], "little")


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos:pos + 4], "little")


def _wstr(data: bytes, pos: int) -> tuple[str, int]:
    for end in range(pos, len(data) - 1, 2):
        if data[end] == 0 and data[end + 1] == 0:
            return data[pos:end].decode("utf-16-le", errors="replace"), end + 2
    return "", len(data)


def _logfile_header(path: str, first: bytes) -> LogfileHeader:
    def bad(expected: str, found: str) -> TraceFormatError:
        return TraceFormatError(path, key="logfile header", expected=expected, found=found)

    rec = BUFFER_HEADER_SIZE
    if len(first) < rec + 0x20 or first[rec + 2] not in (SYSTEM32, SYSTEM64) or \
            not first[rec + 3] & 0x80:
        raise bad("an .etl file (a logfile header record first)",
                  f"bytes {first[rec:rec + 4].hex() or 'none'}")
    size = _u16(first, rec + 4)
    stamp = struct.unpack_from("<q", first, rec + 0x10)[0]
    body = first[rec + 0x20:rec + size]
    if len(body) < 48:
        raise bad("a TRACE_LOGFILE_HEADER", f"{len(body)} bytes")
    pointer = _u32(body, 44)
    if pointer not in (4, 8):
        raise bad("PointerSize 4 or 8", str(pointer))
    tail = 56 + 2 * pointer  # after LoggerName and LogFileName pointers
    tz_end = tail + 172
    boot = (tz_end + 7) & ~7
    if len(body) < boot + 32:
        raise bad(f"a TRACE_LOGFILE_HEADER of {boot + 32} bytes", f"{len(body)}")
    boot_time, perf_freq, start_time = struct.unpack_from("<qqq", body, boot)
    clock, buffers_lost = struct.unpack_from("<II", body, boot + 24)
    logger, after = _wstr(body, boot + 32)
    log_file, _ = _wstr(body, after)
    return LogfileHeader(
        buffer_size=_u32(body, 0), version=_u32(body, 4), os_build=_u32(body, 8) & 0xFFFF,
        processors=_u32(body, 12), end_time=struct.unpack_from("<q", body, 16)[0],
        buffers_written=_u32(body, 36), pointer_size=pointer, events_lost=_u32(body, 48),
        cpu_mhz=_u32(body, 52), boot_time=boot_time, perf_freq=perf_freq,
        start_time=start_time, clock=clock, buffers_lost=buffers_lost, logger_name=logger,
        log_file_name=log_file, start_stamp=stamp,
    )


def open_etl(path: str | Path, *, allow_lost: bool = False) -> EtlFile:
    """Open ``path``, read its header and buffer table; refuse an incomplete capture."""
    where = str(path)
    try:
        stream = Path(path).open("rb")  # noqa: SIM115 (closed by EtlFile.close)
    except OSError as exc:
        raise TraceFormatError(where, message=f"cannot open ({exc.strerror or exc})") from None
    try:
        etl = _scan(where, stream, allow_lost)
    except BaseException:
        stream.close()
        raise
    return etl


def _scan(where: str, stream: BinaryIO, allow_lost: bool) -> EtlFile:
    first_head = stream.read(BUFFER_HEADER_SIZE)
    size = _u32(first_head, 0) if len(first_head) == BUFFER_HEADER_SIZE else 0
    if not BUFFER_HEADER_SIZE < size <= MAX_BUFFER_SIZE:
        raise TraceFormatError(where, key="buffer 0", expected="an .etl buffer header "
                               f"(BufferSize up to {MAX_BUFFER_SIZE})",
                               found=f"{len(first_head)} bytes, BufferSize {size}")
    stream.seek(0)
    header = _logfile_header(where, stream.read(size))
    if not allow_lost and (header.events_lost or header.buffers_lost):
        raise TraceFormatError(
            where, key="logfile header", expected="a complete capture (EventsLost and "
            "BuffersLost 0)", found=f"EventsLost {header.events_lost}, BuffersLost "
            f"{header.buffers_lost}: ETW dropped events; use more or larger buffers "
            "(logman -bs 1024 -nb 16 256)")
    if header.clock not in (CLOCK_QPC, CLOCK_SYSTEM, CLOCK_CYCLE) or header.hertz <= 0:
        raise TraceFormatError(where, key="logfile header", expected="a session clock "
                               "(ReservedFlags 1 QPC with PerfFreq, 2 system, 3 cycles)",
                               found=f"ReservedFlags {header.clock}, PerfFreq "
                               f"{header.perf_freq}")
    etl = EtlFile(where, stream, header)
    offset, index = 0, 0
    stream.seek(0, 2)
    total = stream.tell()
    while offset + BUFFER_HEADER_SIZE <= total:
        stream.seek(offset)
        head = stream.read(BUFFER_HEADER_SIZE)
        buf_size = _u32(head, 0)
        if not BUFFER_HEADER_SIZE < buf_size <= MAX_BUFFER_SIZE:
            raise TraceFormatError(where, key=f"buffer {index}", expected="a BufferSize of "
                                   f"{BUFFER_HEADER_SIZE + 1}..{MAX_BUFFER_SIZE}",
                                   found=str(buf_size))
        flags = _u16(head, 0x34)
        if flags & FLAG_COMPRESSED:
            raise TraceFormatError(where, key=f"buffer {index}", expected="an uncompressed "
                                   "buffer", found="a compressed one (start the session "
                                   "without -mode compress)")
        if not allow_lost and flags & (FLAG_EVENTS_LOST | FLAG_BUFFER_LOST):
            raise TraceFormatError(where, key=f"buffer {index}", expected="a buffer without "
                                   "lost events", found=f"BufferFlag 0x{flags:04x}: ETW "
                                   "dropped events in it")
        cpu = _u16(head, 0x28) if flags & FLAG_PROC_INDEX else head[0x28]
        etl.buffers.append(_Buffer(index, offset, buf_size, cpu))
        offset += buf_size
        index += 1
    return etl


@contextlib.contextmanager
def etl_file(path: str | Path, *, allow_lost: bool = False) -> Iterator[EtlFile]:
    etl = open_etl(path, allow_lost=allow_lost)
    try:
        yield etl
    finally:
        etl.close()
