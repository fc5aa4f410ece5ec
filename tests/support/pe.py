"""Minimal PE32+ images built at test time, to exercise the manifest's .sys checks.

The real probe.sys comes from the WDK in the lab; these images carry just the
headers the harness reads (machine type, optional-header magic, subsystem)
and one tiny .text section, laid out as the PE/COFF specification says.
"""

from __future__ import annotations

import struct
from pathlib import Path

AMD64 = 0x8664
ARM64 = 0xAA64
I386 = 0x014C
SUBSYSTEM_NATIVE = 1
SUBSYSTEM_WINDOWS_GUI = 2

_FILE_ALIGNMENT = 0x200
_SECTION_ALIGNMENT = 0x1000


def build_pe(
    *, machine: int = AMD64, subsystem: int = SUBSYSTEM_NATIVE, magic: int = 0x20B,
) -> bytes:
    """The bytes of a PE32+ image with the given machine, subsystem and magic."""
    dos = bytearray(64)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 64)  # e_lfanew
    coff = struct.pack(
        "<HHIIIHH", machine, 1, 0x5F5E1000, 0, 0, 240,
        0x0002 | 0x0020,  # EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
    )
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        magic, 14, 0,
        _FILE_ALIGNMENT, 0, 0,            # code, initialized, uninitialized sizes
        _SECTION_ALIGNMENT, _SECTION_ALIGNMENT,  # entry point, base of code
        0x140000000,                      # image base
        _SECTION_ALIGNMENT, _FILE_ALIGNMENT,
        10, 0, 10, 0, 10, 0,              # OS, image, subsystem versions
        0,                                # Win32VersionValue
        2 * _SECTION_ALIGNMENT,           # SizeOfImage
        _FILE_ALIGNMENT,                  # SizeOfHeaders
        0,                                # CheckSum
        subsystem,
        0x0100 | 0x0040,                  # NX_COMPAT | DYNAMIC_BASE
        0x40000, 0x1000, 0x100000, 0x1000,
        0, 16,                            # LoaderFlags, NumberOfRvaAndSizes
    ) + bytes(16 * 8)
    section = struct.pack(
        "<8sIIIIIIHHI", b".text", 1, _SECTION_ALIGNMENT, _FILE_ALIGNMENT, _FILE_ALIGNMENT,
        0, 0, 0, 0, 0x60000020,  # CODE | EXECUTE | READ
    )
    headers = bytes(dos) + b"PE\0\0" + coff + optional + section
    headers += bytes(_FILE_ALIGNMENT - len(headers))
    body = b"\xc3" + bytes(_FILE_ALIGNMENT - 1)  # ret
    return headers + body


def write_pe(path: Path, **kwargs: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_pe(**kwargs))
    return path
