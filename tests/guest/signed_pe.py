"""Give a test PE the shape of an embedded signature (a WIN_CERTIFICATE in the security
directory), as signtool leaves it. Only presence is checked on the host; the bytes
are a placeholder, not a valid Authenticode signature."""

from __future__ import annotations

import struct
from pathlib import Path

WIN_CERT_REVISION_2_0 = 0x0200
WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002


def add_signature_placeholder(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data += bytes(-len(data) % 8)
    blob = b"0\x82placeholder-pkcs7"
    cert = struct.pack("<IHH", 8 + len(blob), WIN_CERT_REVISION_2_0,
                       WIN_CERT_TYPE_PKCS_SIGNED_DATA) + blob
    cert += bytes(-len(cert) % 8)
    offset = len(data)
    data += cert
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    magic = struct.unpack_from("<H", data, pe + 24)[0]
    entry = pe + 24 + (112 if magic == 0x20B else 96) + 8 * 4
    struct.pack_into("<II", data, entry, offset, len(cert))
    path.write_bytes(bytes(data))
    return path
