"""The ctypes view of ``csim_host.h``: the host table, the classify record, the loader.

Layouts here and in the C header change together (``CSIM_ABI_VERSION``).
"""

from __future__ import annotations

import ctypes as C
from pathlib import Path

from harness.errors import UsageError

ABI_VERSION = 2

u8, u16, u32, u64, i32 = C.c_uint8, C.c_uint16, C.c_uint32, C.c_uint64, C.c_int32
P64 = C.POINTER(C.c_uint64)

HAS_ENDPOINT, HAS_PARENT, HAS_FLOW, HAS_COMPLETION, HAS_PACKET, HAS_ALE_REQUIRED = (
    0x1, 0x2, 0x4, 0x8, 0x10, 0x20)
INJECT_KINDS = {1: "transport_send", 2: "transport_recv", 3: "network_send",
                4: "network_recv", 5: "forward", 6: "stream"}
BFE_OPS = {1: "open", 2: "close", 3: "begin", 4: "commit", 5: "abort", 6: "add", 7: "delete"}
TLG_TYPES = {0: "meta", 1: "u32", 2: "u64", 3: "i32", 4: "i64", 5: "hex32", 6: "hex64",
             7: "bool", 8: "str", 9: "wstr", 10: "guid", 11: "ptr"}


class GUID(C.Structure):
    _fields_ = [("Data1", u32), ("Data2", u16), ("Data3", u16), ("Data4", u8 * 8)]

    def text(self) -> str:
        d4 = bytes(self.Data4)
        return (f"{self.Data1:08X}-{self.Data2:04X}-{self.Data3:04X}-"
                f"{d4[:2].hex().upper()}-{d4[2:].hex().upper()}")


class ADDR(C.Structure):
    _fields_ = [("family", u8), ("reserved", u8), ("port", u16), ("bytes", u8 * 16)]


class CLASSIFY(C.Structure):
    _fields_ = [
        ("id", u64), ("endpoint", u64), ("parent", u64), ("flow", u64), ("packet", u64),
        ("flowContext", u64), ("filterId", u64), ("filterContext", u64),
        ("present", u32), ("calloutId", u32), ("conditionFlags", u32), ("injection", u32),
        ("rights", u32), ("packetSize", u32), ("layerId", u16), ("protocol", u8),
        ("direction", u8), ("reserved", u32), ("local", ADDR), ("remote", ADDR),
    ]


class RESULT(C.Structure):
    _fields_ = [("actionType", u32), ("flags", u32), ("rights", u32), ("reserved", u32)]


class TLG_VALUE(C.Union):
    _fields_ = [("u", u64), ("i", C.c_int64), ("s", C.c_char_p), ("w", C.c_void_p), ("g", GUID)]


class TLG_FIELD(C.Structure):
    _fields_ = [("type", u32), ("name", C.c_char_p), ("v", TLG_VALUE)]


class BFE_ARGS(C.Structure):
    _fields_ = [
        ("objectType", C.c_char_p), ("key", C.POINTER(GUID)), ("layer", C.c_char_p),
        ("sublayer", C.POINTER(GUID)), ("callout", C.POINTER(GUID)),
        ("provider", C.POINTER(GUID)), ("id", u64), ("action", u32), ("weight", u32),
        ("flags", u32), ("txnWaitMs", u32), ("weightType", u32), ("weightValue", u64),
        ("numConditions", u32), ("conditions", C.c_void_p), ("providerContext", C.POINTER(GUID)),
    ]


PEND_OPERATION = C.CFUNCTYPE(i32, u64, P64)
COMPLETE_OPERATION = C.CFUNCTYPE(None, u64, u64)
ACQUIRE = C.CFUNCTYPE(i32, u64, P64)
RELEASE = C.CFUNCTYPE(None, u64)
PEND_CLASSIFY = C.CFUNCTYPE(i32, u64)
COMPLETE_CLASSIFY = C.CFUNCTYPE(None, u64, u32)
CLONE = C.CFUNCTYPE(i32, u64, P64)
PACKET = C.CFUNCTYPE(None, u64)
INJECT = C.CFUNCTYPE(i32, u32, u64, u64, u64, u64)
FLOW_ASSOCIATE = C.CFUNCTYPE(i32, u64, u32, u32, u64)
FLOW_REMOVE = C.CFUNCTYPE(i32, u64, u32, u32)
REGISTER = C.CFUNCTYPE(i32, u32, C.POINTER(GUID))
UNREGISTER = C.CFUNCTYPE(i32, u32)
CALL_LATER = C.CFUNCTYPE(None, u64, u64)
TRACE = C.CFUNCTYPE(None, C.c_char_p, C.c_char_p, C.POINTER(TLG_FIELD), u32)
FATAL = C.CFUNCTYPE(None, C.c_char_p)
NOW = C.CFUNCTYPE(u64)
BFE = C.CFUNCTYPE(i32, u32, u64, C.POINTER(BFE_ARGS), P64)


class HOST(C.Structure):
    _fields_ = [
        ("version", u32), ("reserved", u32),
        ("pend_operation", PEND_OPERATION), ("complete_operation", COMPLETE_OPERATION),
        ("acquire_classify_handle", ACQUIRE), ("release_classify_handle", RELEASE),
        ("pend_classify", PEND_CLASSIFY), ("complete_classify", COMPLETE_CLASSIFY),
        ("clone", CLONE), ("free_clone", PACKET), ("reference", PACKET),
        ("dereference", PACKET), ("inject", INJECT), ("flow_associate", FLOW_ASSOCIATE),
        ("flow_remove", FLOW_REMOVE), ("callout_register", REGISTER),
        ("callout_unregister", UNREGISTER), ("call_later", CALL_LATER), ("trace", TRACE),
        ("fatal", FATAL), ("now100ns", NOW), ("bfe", BFE),
    ]


def load_library(path: Path) -> C.CDLL:
    """dlopen the built driver and declare its entry points."""
    try:
        lib = C.CDLL(str(path), mode=C.RTLD_LOCAL)
    except OSError as exc:
        raise UsageError(f"cannot load the built driver {path}: {exc}") from exc
    sig = {
        "csim_abi_version": (u32, []),
        "csim_init": (i32, [C.POINTER(HOST)]),
        "csim_driver_entry": (i32, []),
        "csim_device_control": (i32, [u32, C.c_void_p, u32]),
        "csim_driver_unload": (None, []),
        "csim_classify": (i32, [C.POINTER(CLASSIFY), C.POINTER(RESULT)]),
        "csim_notify": (i32, [u32, u32, u64, u64, u16]),
        "csim_flow_delete": (None, [u16, u32, u64]),
        "csim_fire": (None, [u64]),
        "csim_inject_complete": (None, [u64, i32]),
        "csim_pool_report": (u32, [C.c_char_p, u32]),
        "csim_packet_of": (u64, [C.c_void_p]),
        "csim_tlg_select": (None, [i32]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    if lib.csim_abi_version() != ABI_VERSION:
        raise UsageError(f"{path}: built for another host runtime ABI; rebuild it")
    return lib
