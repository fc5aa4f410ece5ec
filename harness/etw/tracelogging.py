"""Decode TraceLogging events: self-describing ETW events (metadata + data bytes).

A TraceLogging event carries its own schema. EventWriteTransfer gets three
blobs, and an ``.etl`` file keeps the first two as extended data items of the
event (EVENT_HEADER_EXT_TYPE_PROV_TRAITS, EVENT_HEADER_EXT_TYPE_EVENT_SCHEMA_TL)
and the third as its user data:

provider traits   ``UINT16 size``, the provider name (NUL-terminated UTF-8),
                  then traits, each ``UINT16 size, UINT8 type, bytes`` (type 1:
                  the provider group GUID)
event metadata    ``UINT16 size``, the event tag (1-4 bytes, 7 bits each, high
                  bit = another byte follows), the event name (NUL-terminated
                  UTF-8), then one entry per field: name (NUL-terminated),
                  ``UINT8 InType`` (low 5 bits the type; 0x20 constant count,
                  0x40 variable count, 0x60 custom; 0x80 an OutType follows),
                  ``UINT8 OutType`` (low 7 bits; 0x80 a field tag follows, 1-4
                  bytes as the event tag), ``UINT16 count`` for a constant
                  count, ``UINT16 size`` + schema bytes for a custom field
event data        the values in field order; a variable-count array starts with
                  a ``UINT16`` element count; strings are NUL-terminated or
                  ``UINT16`` byte-counted; a STRUCT (InType 24) has no data of
                  its own: its OutType is the number of fields that follow in it

Values are decoded by InType and shaped by OutType where the pair is
documented (HEX, BOOLEAN, STRING, PORT, IPV4/IPV6, NTSTATUS/HRESULT/WIN32ERROR,
UTF8/XML/JSON, SOCKETADDRESS): integers stay JSON integers, hexadecimal kinds
(HEXINT32, HEXINT64, pointers, OutType HEX, status codes) become ``"0x..."``
strings, GUIDs ``"{...}"`` upper case, times ISO 8601 UTC, SIDs ``S-1-...``,
binary lower-case hex. Every length is checked against what is left; a short
or inconsistent blob raises :class:`TraceLoggingError` naming the field.
"""

from __future__ import annotations

import datetime
import ipaddress
import struct
import uuid
from dataclasses import dataclass
from typing import Any

# InType values (the low 5 bits of the metadata byte).
IN_NULL, IN_UNICODESTRING, IN_ANSISTRING = 0, 1, 2
IN_INT8, IN_UINT8, IN_INT16, IN_UINT16, IN_INT32, IN_UINT32, IN_INT64, IN_UINT64 = range(3, 11)
IN_FLOAT, IN_DOUBLE, IN_BOOL32, IN_BINARY, IN_GUID, IN_POINTER = range(11, 17)
IN_FILETIME, IN_SYSTEMTIME, IN_SID, IN_HEXINT32, IN_HEXINT64 = range(17, 22)
IN_COUNTEDSTRING, IN_COUNTEDANSISTRING, IN_STRUCT, IN_COUNTEDBINARY = range(22, 26)
IN_TYPE_MASK, IN_CCOUNT, IN_VCOUNT, IN_CUSTOM, IN_CHAIN = 0x1F, 0x20, 0x40, 0x60, 0x80

# OutType values (the low 7 bits).
OUT_NULL, OUT_NOPRINT, OUT_STRING, OUT_BOOLEAN, OUT_HEX, OUT_PID, OUT_TID, OUT_PORT = range(8)
OUT_IPV4, OUT_IPV6, OUT_SOCKETADDRESS, OUT_XML, OUT_JSON = range(8, 13)
OUT_WIN32ERROR, OUT_NTSTATUS, OUT_HRESULT, OUT_FILETIME, OUT_SIGNED, OUT_UNSIGNED = range(13, 19)
OUT_DATETIME_CULTURE_INSENSITIVE, OUT_UTF8, OUT_PKCS7, OUT_CODE_POINTER, OUT_DATETIME_UTC = (
    33, 35, 36, 37, 38)
OUT_TYPE_MASK, OUT_CHAIN = 0x7F, 0x80

IN_TYPE_NAMES: dict[int, str] = {
    1: "UNICODESTRING", 2: "ANSISTRING", 3: "INT8", 4: "UINT8", 5: "INT16", 6: "UINT16",
    7: "INT32", 8: "UINT32", 9: "INT64", 10: "UINT64", 11: "FLOAT", 12: "DOUBLE",
    13: "BOOL32", 14: "BINARY", 15: "GUID", 16: "POINTER", 17: "FILETIME", 18: "SYSTEMTIME",
    19: "SID", 20: "HEXINT32", 21: "HEXINT64", 22: "COUNTEDSTRING", 23: "COUNTEDANSISTRING",
    24: "STRUCT", 25: "COUNTEDBINARY",
}

#: Bounds: TraceLogging allows 128 data descriptors; nesting beyond this is corrupt input.
MAX_FIELDS = 1024
MAX_STRUCT_DEPTH = 32
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


class TraceLoggingError(ValueError):
    """Raised when TraceLogging metadata or data bytes are malformed."""


@dataclass(frozen=True)
class FieldSchema:
    """One field of an event's metadata."""

    name: str
    in_type: int  # the base type, flags removed
    out_type: int = OUT_NULL
    tag: int = 0
    #: "one", "const" (``count`` elements), "var" (count in the data), "custom"
    arity: str = "one"
    count: int = 1
    custom_schema: bytes = b""
    #: a STRUCT's member fields
    members: tuple[FieldSchema, ...] = ()

    @property
    def type_name(self) -> str:
        return IN_TYPE_NAMES.get(self.in_type, f"InType {self.in_type}")


@dataclass(frozen=True)
class EventSchema:
    """An event's name, tag and field tree, from its metadata blob."""

    name: str
    tag: int
    fields: tuple[FieldSchema, ...]


@dataclass(frozen=True)
class ProviderTraits:
    name: str
    group: str | None = None


class _Cursor:
    def __init__(self, blob: bytes, what: str) -> None:
        self.blob = memoryview(blob)
        self.pos = 0
        self.what = what

    @property
    def left(self) -> int:
        return len(self.blob) - self.pos

    def take(self, size: int, where: str) -> bytes:
        if size < 0 or size > self.left:
            raise TraceLoggingError(
                f"{self.what}: {where}: expected {size} more bytes, found {self.left}")
        out = bytes(self.blob[self.pos:self.pos + size])
        self.pos += size
        return out

    def u8(self, where: str) -> int:
        return self.take(1, where)[0]

    def u16(self, where: str) -> int:
        return int.from_bytes(self.take(2, where), "little")

    def cstr(self, where: str, width: int = 1) -> bytes:
        """Bytes up to a NUL of ``width`` bytes (aligned), the NUL consumed."""
        data = self.blob[self.pos:]
        for i in range(0, len(data) - width + 1, width):
            if all(b == 0 for b in data[i:i + width]):
                self.pos += i + width
                return bytes(data[:i])
        raise TraceLoggingError(f"{self.what}: {where}: expected a NUL-terminated string, "
                                f"found {len(data)} bytes without a terminator")

    def tag(self, where: str) -> int:
        """A 28-bit tag in 1-4 bytes, most significant 7 bits first."""
        value, shift = 0, 21
        for _ in range(4):
            byte = self.u8(where)
            value |= (byte & 0x7F) << shift
            shift -= 7
            if not byte & 0x80:
                return value
        raise TraceLoggingError(f"{self.what}: {where}: a tag longer than 4 bytes")


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceLoggingError(f"{what}: expected UTF-8, found {raw[:32]!r} ({exc.reason})"
                                ) from None


def parse_provider_traits(blob: bytes) -> ProviderTraits:
    cur = _Cursor(blob, "provider traits")
    size = cur.u16("size")
    if size < 3 or size > len(blob):
        raise TraceLoggingError(f"provider traits: size: expected 3..{len(blob)}, found {size}")
    cur.blob = cur.blob[:size]
    name = _utf8(cur.cstr("provider name"), "provider traits: provider name")
    group = None
    while cur.left >= 3:
        trait_size = cur.u16("trait size")
        kind = cur.u8("trait type")
        body = cur.take(trait_size - 3, f"trait {kind}")
        if kind == 1 and len(body) == 16:
            group = "{" + str(uuid.UUID(bytes_le=body)).upper() + "}"
    return ProviderTraits(name, group)


def parse_event_metadata(blob: bytes) -> EventSchema:
    """The schema in an event metadata blob (starting with its UINT16 size)."""
    cur = _Cursor(blob, "event metadata")
    size = cur.u16("size")
    if size < 4 or size > len(blob):
        raise TraceLoggingError(f"event metadata: size: expected 4..{len(blob)}, found {size}")
    cur.blob = cur.blob[:size]
    tag = cur.tag("event tag")
    name = _utf8(cur.cstr("event name"), "event metadata: event name")
    cur.what = f"event {name!r} metadata"
    flat: list[tuple[FieldSchema, int]] = []  # (field, struct member count)
    while cur.left:
        if len(flat) >= MAX_FIELDS:
            raise TraceLoggingError(f"{cur.what}: more than {MAX_FIELDS} fields")
        flat.append(_field(cur))
    fields, _end = _nest(flat, 0, len(flat), name, 0)
    return EventSchema(name, tag, tuple(fields))


def _field(cur: _Cursor) -> tuple[FieldSchema, int]:
    fname = _utf8(cur.cstr("field name"), f"{cur.what}: field name")
    where = f"field {fname!r}"
    in_byte = cur.u8(where + " InType")
    out_type, tag = OUT_NULL, 0
    if in_byte & IN_CHAIN:
        out_byte = cur.u8(where + " OutType")
        out_type = out_byte & OUT_TYPE_MASK
        if out_byte & OUT_CHAIN:
            tag = cur.tag(where + " tag")
    in_type = in_byte & IN_TYPE_MASK
    if in_type == IN_NULL or in_type not in IN_TYPE_NAMES:
        raise TraceLoggingError(f"{cur.what}: {where}: expected a documented InType (1-25), "
                                f"found {in_type}")
    flags = in_byte & IN_CUSTOM
    arity, count, schema = "one", 1, b""
    if flags == IN_CCOUNT:
        arity, count = "const", cur.u16(where + " constant count")
    elif flags == IN_VCOUNT:
        arity = "var"
    elif flags == IN_CUSTOM:
        arity = "custom"
        schema = cur.take(cur.u16(where + " custom schema size"), where + " custom schema")
    members = 0
    if in_type == IN_STRUCT:
        members = out_type
        out_type = OUT_NULL
        if members == 0:
            raise TraceLoggingError(f"{cur.what}: {where}: expected a STRUCT of 1-127 fields, "
                                    "found 0")
    return FieldSchema(fname, in_type, out_type, tag, arity, count, schema), members


def _nest(flat: list[tuple[FieldSchema, int]], start: int, end: int, event: str,
          depth: int) -> tuple[list[FieldSchema], int]:
    """Group STRUCT members under their struct; returns (fields, index after them)."""
    if depth > MAX_STRUCT_DEPTH:
        raise TraceLoggingError(f"event {event!r} metadata: structs nested deeper than "
                                f"{MAX_STRUCT_DEPTH}")
    out: list[FieldSchema] = []
    i = start
    while i < end:
        field, members = flat[i]
        i += 1
        if field.in_type == IN_STRUCT:
            inner: list[FieldSchema] = []
            for _ in range(members):
                if i >= len(flat):
                    raise TraceLoggingError(
                        f"event {event!r} metadata: struct {field.name!r}: expected {members} "
                        f"member fields, found {len(inner)}")
                sub, i = _nest(flat, i, i + 1, event, depth + 1)
                inner.extend(sub)
            field = FieldSchema(field.name, field.in_type, field.out_type, field.tag,
                                field.arity, field.count, field.custom_schema, tuple(inner))
        out.append(field)
    return out, i


# -- data ----------------------------------------------------------------------------------

_FIXED: dict[int, tuple[str, int]] = {
    IN_INT8: ("<b", 1), IN_UINT8: ("<B", 1), IN_INT16: ("<h", 2), IN_UINT16: ("<H", 2),
    IN_INT32: ("<i", 4), IN_UINT32: ("<I", 4), IN_INT64: ("<q", 8), IN_UINT64: ("<Q", 8),
    IN_FLOAT: ("<f", 4), IN_DOUBLE: ("<d", 8), IN_BOOL32: ("<i", 4),
    IN_HEXINT32: ("<I", 4), IN_HEXINT64: ("<Q", 8), IN_FILETIME: ("<Q", 8),
}
_STATUS_OUT = (OUT_NTSTATUS, OUT_HRESULT, OUT_WIN32ERROR)


def decode_data(schema: EventSchema, data: bytes, *, pointer_size: int = 8) -> dict[str, Any]:
    """The field values of one event's data bytes, in field order."""
    cur = _Cursor(data, f"event {schema.name!r} data")
    values = _decode_fields(schema.fields, cur, pointer_size)
    if cur.left:
        raise TraceLoggingError(f"{cur.what}: expected the data to end after the last field, "
                                f"found {cur.left} more bytes")
    return values


def _decode_fields(fields: tuple[FieldSchema, ...], cur: _Cursor, pointer_size: int
                   ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        where = f"field {field.name!r} ({field.type_name})"
        if field.arity == "custom":
            out[field.name] = cur.take(cur.u16(where + " size"), where).hex()
            continue
        if field.arity == "one":
            out[field.name] = _one(field, cur, pointer_size, where)
            continue
        count = field.count if field.arity == "const" else cur.u16(where + " element count")
        out[field.name] = [_one(field, cur, pointer_size, f"{where}[{i}]") for i in range(count)]
    return out


def _one(field: FieldSchema, cur: _Cursor, pointer_size: int, where: str) -> Any:
    kind, out = field.in_type, field.out_type
    if kind == IN_STRUCT:
        return _decode_fields(field.members, cur, pointer_size)
    if kind == IN_POINTER:
        size = pointer_size
        return f"0x{int.from_bytes(cur.take(size, where), 'little'):x}"
    if kind in _FIXED:
        fmt, size = _FIXED[kind]
        (value,) = struct.unpack(fmt, cur.take(size, where))
        return _shape_number(kind, out, value, size)
    if kind == IN_UNICODESTRING:
        return _utf16(cur.cstr(where, 2), where, cur.what)
    if kind == IN_ANSISTRING:
        return _ansi(cur.cstr(where), out)
    if kind == IN_COUNTEDSTRING:
        return _utf16(cur.take(cur.u16(where + " size"), where), where, cur.what)
    if kind == IN_COUNTEDANSISTRING:
        return _ansi(cur.take(cur.u16(where + " size"), where), out)
    if kind in (IN_BINARY, IN_COUNTEDBINARY):
        return _binary(cur.take(cur.u16(where + " size"), where), out)
    if kind == IN_GUID:
        return "{" + str(uuid.UUID(bytes_le=cur.take(16, where))).upper() + "}"
    if kind == IN_SYSTEMTIME:
        return _systemtime(cur.take(16, where), where, cur.what)
    if kind == IN_SID:
        head = cur.take(8, where)
        return _sid(head + cur.take(4 * head[1], where))
    raise TraceLoggingError(f"{cur.what}: {where}: no decoder")  # pragma: no cover


def _shape_number(kind: int, out: int, value: Any, size: int) -> Any:
    if kind == IN_BOOL32:
        return value != 0
    if kind == IN_FILETIME:
        return _filetime(value)
    if kind in (IN_FLOAT, IN_DOUBLE):
        return value
    unsigned = value & ((1 << (8 * size)) - 1)
    if kind in (IN_HEXINT32, IN_HEXINT64) or out in (OUT_HEX, OUT_CODE_POINTER):
        return f"0x{unsigned:x}"
    if out in _STATUS_OUT:
        return f"0x{unsigned:08X}"
    if out == OUT_BOOLEAN:
        return value != 0
    if out == OUT_STRING and kind in (IN_INT8, IN_UINT8, IN_UINT16):
        return chr(unsigned)
    if out == OUT_PORT and kind == IN_UINT16:
        return int.from_bytes(unsigned.to_bytes(2, "little"), "big")
    if out == OUT_IPV4 and kind == IN_UINT32:
        return str(ipaddress.IPv4Address(unsigned.to_bytes(4, "little")))
    if out == OUT_FILETIME and kind in (IN_INT64, IN_UINT64):
        return _filetime(unsigned)
    return value


def _utf16(raw: bytes, where: str, what: str) -> str:
    try:
        return raw.decode("utf-16-le")
    except UnicodeDecodeError:
        raise TraceLoggingError(f"{what}: {where}: expected UTF-16LE, found {raw[:32]!r}"
                                ) from None


def _ansi(raw: bytes, out: int) -> str:
    if out in (OUT_UTF8, OUT_XML, OUT_JSON):
        return raw.decode("utf-8", errors="replace")
    return raw.decode("cp1252", errors="replace")


def _binary(raw: bytes, out: int) -> str:
    if out == OUT_IPV6 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    if out == OUT_SOCKETADDRESS:
        return _sockaddr(raw)
    return raw.hex()


def _sockaddr(raw: bytes) -> str:
    family = int.from_bytes(raw[:2], "little") if len(raw) >= 2 else 0
    if family == 2 and len(raw) >= 8:  # AF_INET: family, port (big-endian), address
        return f"{ipaddress.IPv4Address(raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == 23 and len(raw) >= 24:  # AF_INET6: family, port, flowinfo, address
        return f"[{ipaddress.IPv6Address(raw[8:24])}]:{int.from_bytes(raw[2:4], 'big')}"
    return raw.hex()


def _filetime(value: int) -> str:
    try:
        stamp = _FILETIME_EPOCH + datetime.timedelta(microseconds=value // 10)
    except OverflowError:
        return f"0x{value:x}"
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value % 10_000_000:07d}Z"


def _systemtime(raw: bytes, where: str, what: str) -> str:
    year, month, _dow, day, hour, minute, second, ms = struct.unpack("<8H", raw)
    try:
        stamp = datetime.datetime(year, month, day, hour, minute, second, ms * 1000)
    except ValueError:
        raise TraceLoggingError(f"{what}: {where}: expected a valid SYSTEMTIME, found "
                                f"{year}-{month}-{day} {hour}:{minute}:{second}") from None
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _sid(raw: bytes) -> str:
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i:12 + 4 * i], "little") for i in range(count)]
    return "S-" + "-".join(str(x) for x in (revision, authority, *subs))

