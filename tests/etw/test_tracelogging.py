"""The TraceLogging decoder against Microsoft's own encoder (traceloggingdynamic).

Every ``EventBuilder.add_*`` method of the package (every in-type it can
write, scalar and array, with out-types and tags, and nested structs) is
decoded and compared with the value that went in. Constant-count arrays and
custom fields, which the package does not write, are checked against blobs
laid out by hand from the documented format.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from harness.etw.tracelogging import (
    IN_CCOUNT,
    IN_CHAIN,
    IN_CUSTOM,
    IN_UINT32,
    OUT_HEX,
    TraceLoggingError,
    decode_data,
    parse_event_metadata,
    parse_provider_traits,
)
from tests.etw import tlgdynamic

tld = tlgdynamic.load()
OutType = tld.OutType
G1 = uuid.UUID("9a1e5c10-2b3d-4f60-a172-8394a5b6c701")
G2 = uuid.UUID("6b2b7a63-6c1b-4e58-9c1b-3e1a0c6f5a01")
SID = bytes([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0])  # S-1-5-32-544
# 2026-03-04 17:11:12.621 as SYSTEMTIME (year, month, dow, day, h, m, s, ms)
SYSTIME = struct.pack("<8H", 2026, 3, 3, 4, 17, 11, 12, 621)
FILETIME = 134_171_178_726_210_169


def roundtrip(build: Any, name: bytes = b"ev", tag: int = 0) -> tuple[Any, dict[str, Any]]:
    eb = tld.EventBuilder()
    eb.reset(name, tag=tag)
    build(eb)
    meta, data = tlgdynamic.blobs(eb)
    schema = parse_event_metadata(meta)
    return schema, decode_data(schema, data)


# (method, value, expected decoded value)
SCALARS: list[tuple[str, Any, Any]] = [
    ("add_zstr16", "héllo wörld", "héllo wörld"),
    ("add_zstr8", "utf-8 ✓", "utf-8 ✓"),
    ("add_zstr8_bytes", b"caf\xe9", "café"),  # no out-type: cp1252
    ("add_int8", -5, -5), ("add_uint8", 127, 127),
    ("add_int16", -30000, -30000), ("add_uint16", 65000, 65000),
    ("add_int32", -(2**31), -(2**31)), ("add_uint32", 2**32 - 1, 2**32 - 1),
    ("add_int64", -(2**63), -(2**63)), ("add_uint64", 2**64 - 1, 2**64 - 1),
    ("add_intptr", -7, -7), ("add_uintptr", 2**40, 2**40),
    ("add_float32", 1.5, 1.5), ("add_float64", 2.0 / 3.0, 2.0 / 3.0),
    ("add_bool32", 1, True), ("add_bool32", 0, False),
    ("add_binary_bytes", b"\x00\x01\xfe", "0001fe"),
    ("add_guid", G1, "{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"),
    ("add_guid_bytes_le", G2.bytes_le, "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"),
    ("add_filetime_int64", FILETIME, "2026-03-04T17:11:12.6210169Z"),
    ("add_systemtime_bytes", SYSTIME, "2026-03-04T17:11:12.621"),
    ("add_sid_bytes", SID, "S-1-5-32-544"),
    ("add_hexint32", 0xC0220103, "0xc0220103"),
    ("add_hexint64", 0xFFFFA50C1A2B3C40, "0xffffa50c1a2b3c40"),
    ("add_hexintptr", 0xFFFFA50C1B000010, "0xffffa50c1b000010"),
    ("add_str16", "counted ✓", "counted ✓"),
    ("add_str16_bytes_utf16le", "ab".encode("utf-16-le"), "ab"),
    ("add_str8", "counted utf-8 ✓", "counted utf-8 ✓"),
    ("add_str8_bytes", b"plain", "plain"),
    ("add_cbinary_bytes", b"\xde\xad", "dead"),
    ("add_zstr16_bytes_utf16le", "x".encode("utf-16-le"), "x"),
]


@pytest.mark.parametrize(("method", "value", "expected"), SCALARS,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(SCALARS)])
def test_every_scalar_in_type(method: str, value: Any, expected: Any) -> None:
    schema, values = roundtrip(lambda eb: getattr(eb, method)(b"f", value))
    assert values == {"f": expected}
    assert schema.fields[0].arity == "one"


ARRAYS: list[tuple[str, list[Any], list[Any]]] = [
    ("add_zstr16_seq", ["a", "", "ccc"], ["a", "", "ccc"]),
    ("add_zstr8_seq", ["x", "yz"], ["x", "yz"]),
    ("add_zstr8_bytes_seq", [b"p", b"q"], ["p", "q"]),
    ("add_int8_seq", [-1, 2], [-1, 2]), ("add_uint8_seq", [1, 127], [1, 127]),
    ("add_int16_seq", [-2, 3], [-2, 3]), ("add_uint16_seq", [1, 2, 3], [1, 2, 3]),
    ("add_int32_seq", [-3], [-3]), ("add_uint32_seq", [], []),
    ("add_int64_seq", [-4, 5], [-4, 5]), ("add_uint64_seq", [2**63], [2**63]),
    ("add_intptr_seq", [-1], [-1]), ("add_uintptr_seq", [9], [9]),
    ("add_float32_seq", [0.5, -0.25], [0.5, -0.25]), ("add_float64_seq", [1e300], [1e300]),
    ("add_bool32_seq", [1, 0, 1], [True, False, True]),
    ("add_guid_seq", [G1, G2], ["{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}",
                                "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"]),
    ("add_guid_bytes_le_seq", [G1.bytes_le], ["{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"]),
    ("add_filetime_int64_seq", [FILETIME], ["2026-03-04T17:11:12.6210169Z"]),
    ("add_systemtime_bytes_seq", [SYSTIME], ["2026-03-04T17:11:12.621"]),
    ("add_sid_bytes_seq", [SID, SID], ["S-1-5-32-544", "S-1-5-32-544"]),
    ("add_hexint32_seq", [1, 0xFFFFFFFF], ["0x1", "0xffffffff"]),
    ("add_hexint64_seq", [0x10], ["0x10"]), ("add_hexintptr_seq", [0x20], ["0x20"]),
    ("add_str16_seq", ["a", "bc"], ["a", "bc"]),
    ("add_str16_bytes_utf16le_seq", ["z".encode("utf-16-le")], ["z"]),
    ("add_str8_seq", ["m", "n"], ["m", "n"]), ("add_str8_bytes_seq", [b"o"], ["o"]),
    ("add_cbinary_bytes_seq", [b"\x01", b""], ["01", ""]),
    ("add_zstr16_bytes_utf16le_seq", ["q".encode("utf-16-le")], ["q"]),
]


@pytest.mark.parametrize(("method", "values", "expected"), ARRAYS, ids=[a[0] for a in ARRAYS])
def test_every_variable_count_array(method: str, values: list[Any], expected: list[Any]
                                    ) -> None:
    schema, decoded = roundtrip(lambda eb: getattr(eb, method)(b"arr", values))
    assert decoded == {"arr": expected}
    assert schema.fields[0].arity == "var"


def test_every_add_method_of_the_encoder_is_covered() -> None:
    methods = {name for name in dir(tld.EventBuilder) if name.startswith("add_")}
    covered = {m for m, _, _ in SCALARS} | {m for m, _, _ in ARRAYS} | {"add_struct"}
    assert methods == covered


@pytest.mark.parametrize(("method", "value", "out", "expected"), [
    ("add_uint8", 1, OutType.BOOLEAN, True),
    ("add_uint8", 0x41, OutType.STRING, "A"),
    ("add_uint16", 0x263A, OutType.STRING, "\u263a"),
    ("add_uint8", 0x7B, OutType.HEX, "0x7b"),
    ("add_uint16", 0x5000, OutType.PORT, 80),  # network byte order: 0x0050
    ("add_uint32", 0x0F02000A, OutType.IPV4, "10.0.2.15"),
    ("add_uint32", 0xC0220103, OutType.NTSTATUS, "0xC0220103"),
    ("add_int32", -2144206830, OutType.HRESULT, "0x80320012"),
    ("add_uint32", 5, OutType.WIN32ERROR, "0x00000005"),
    ("add_uint32", 4242, OutType.PID, 4242),
    ("add_uint64", 0x7FF6_0000_1000, OutType.CODE_POINTER, "0x7ff600001000"),
    ("add_binary_bytes", bytes(15) + b"\x01", OutType.IPV6, "::1"),
    ("add_binary_bytes", b"\x02\x00\x1f\x90\x0a\x00\x02\x02" + bytes(8),
     OutType.SOCKETADDRESS, "10.0.2.2:8080"),
    ("add_zstr8", '{"a": 1}', OutType.JSON, '{"a": 1}'),
    ("add_int64", FILETIME, OutType.FILETIME, "2026-03-04T17:11:12.6210169Z"),
])
def test_out_types_shape_the_value(method: str, value: Any, out: int, expected: Any) -> None:
    schema, decoded = roundtrip(lambda eb: getattr(eb, method)(b"f", value, out))
    assert decoded == {"f": expected}
    assert schema.fields[0].out_type == out


def test_tags_of_events_and_fields() -> None:
    for tag in (0x0FE00000, 0x0FFFC000, 0x0ABCDEF1):
        schema, decoded = roundtrip(lambda eb, t=tag: eb.add_uint32(b"f", 7, 0, t), tag=tag)
        assert schema.tag == tag and schema.fields[0].tag == tag and decoded == {"f": 7}


def test_nested_structs() -> None:
    def build(eb: Any) -> None:
        eb.add_hexint64(b"id", 1)
        eb.add_struct(b"flow", 2)
        eb.add_str8(b"local", "10.0.2.15:49712")
        eb.add_struct(b"remote", 2)
        eb.add_uint32(b"addr", 0x0202000A, OutType.IPV4)
        eb.add_uint16(b"port", 0x901F, OutType.PORT)
        eb.add_bool32(b"reauth", 0)

    schema, decoded = roundtrip(build, b"classify")
    assert schema.name == "classify"
    assert decoded == {"id": "0x1", "flow": {"local": "10.0.2.15:49712",
                                             "remote": {"addr": "10.0.2.2", "port": 8080}},
                       "reauth": False}


def test_provider_traits_of_the_encoder_layout() -> None:
    assert parse_provider_traits(tlgdynamic.traits(b"CalloutProbe")).name == "CalloutProbe"
    group = struct.pack("<HB", 19, 1) + G1.bytes_le
    blob = struct.pack("<H", 2 + 6 + 19) + b"Agent\0" + group
    traits = parse_provider_traits(blob)
    assert (traits.name, traits.group) == ("Agent", "{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}")


def _meta(*fields: bytes, name: bytes = b"ev") -> bytes:
    body = b"\0" + name + b"\0" + b"".join(fields)
    return struct.pack("<H", 2 + len(body)) + body


def test_constant_count_array_and_custom_field_from_the_documented_layout() -> None:
    ccount = b"c\0" + bytes([IN_UINT32 | IN_CCOUNT | IN_CHAIN, OUT_HEX]) + struct.pack("<H", 3)
    custom = b"x\0" + bytes([IN_UINT32 | IN_CUSTOM]) + struct.pack("<H", 4) + b"SCHM"
    schema = parse_event_metadata(_meta(ccount, custom))
    assert schema.fields[0].arity == "const" and schema.fields[0].count == 3
    assert schema.fields[1].custom_schema == b"SCHM"
    data = struct.pack("<3I", 1, 2, 0xFFFFFFFF) + struct.pack("<H", 2) + b"\xbe\xef"
    assert decode_data(schema, data) == {"c": ["0x1", "0x2", "0xffffffff"], "x": "beef"}


@pytest.mark.parametrize(("meta", "data", "message"), [
    (_meta(b"f\0" + bytes([IN_UINT32])), b"\x01\x02", "field 'f' (UINT32): expected 4 more "
     "bytes, found 2"),
    (_meta(b"f\0" + bytes([31])), b"", "expected a documented InType (1-25), found 31"),
    (_meta(b"f\0" + bytes([24 | IN_CHAIN, 3])), b"", "struct 'f': expected 3 member fields, found 0"),
    (_meta(b"f\0" + bytes([IN_UINT32])), b"\0\0\0\0\0", "expected the data to end after the "
     "last field, found 1 more bytes"),
    (_meta(b"s\0" + bytes([1])), b"a\0b", "expected a NUL-terminated string"),
    (b"\x40\x00\0ev\0", b"", "event metadata: size: expected 4..6, found 64"),
    (_meta(b"f\0" + bytes([IN_UINT32 | 0x40])), b"\x05\x00\x01\x00\x00\x00",
     "field 'f' (UINT32)[1]: expected 4 more bytes, found 0"),
])
def test_malformed_blobs_name_the_field(meta: bytes, data: bytes, message: str) -> None:
    with pytest.raises(TraceLoggingError) as caught:
        decode_data(parse_event_metadata(meta), data)
    assert message in str(caught.value)
