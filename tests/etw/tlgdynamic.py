"""Microsoft's ``traceloggingdynamic`` as an independent TraceLogging encoder, on any OS.

The package builds event metadata and data in pure Python (``EventBuilder``);
only its ``Provider`` class calls the Windows eventing DLL, which it binds
when the module is imported. Off Windows that import fails on
``ctypes.WinDLL``, so the module is loaded with a placeholder DLL whose
functions refuse to run: the encoder is untouched, nothing here writes to ETW.
"""

from __future__ import annotations

import ctypes
import importlib
import struct
import sys
from types import ModuleType
from typing import Any


class _NoEtwFunction:
    restype: Any = None
    argtypes: Any = None

    def __call__(self, *args: object) -> int:
        raise OSError("ETW is not available off Windows: only EventBuilder is used here")


class _NoEtwDll:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str) -> _NoEtwFunction:
        return _NoEtwFunction()


def load() -> ModuleType:
    """The imported ``traceloggingdynamic`` module (skipping nothing: it is a dev dependency)."""
    if "traceloggingdynamic" in sys.modules:
        return sys.modules["traceloggingdynamic"]
    if hasattr(ctypes, "WinDLL"):
        return importlib.import_module("traceloggingdynamic")
    setattr(ctypes, "WinDLL", _NoEtwDll)  # noqa: B010 (the name does not exist here)
    try:
        return importlib.import_module("traceloggingdynamic")
    finally:
        delattr(ctypes, "WinDLL")


def blobs(builder: Any) -> tuple[bytes, bytes]:
    """(metadata, data) of an EventBuilder, the metadata size filled in as write() does."""
    meta = bytearray(bytes(builder._meta)[: builder._meta_pos])
    struct.pack_into("<H", meta, 0, len(meta))
    return bytes(meta), bytes(builder._data)[: builder._data_pos]


def traits(name: bytes) -> bytes:
    """Provider traits as Provider() builds them: UINT16 size, the NUL-terminated name."""
    return struct.pack("<H", len(name) + 3) + name + b"\0"
