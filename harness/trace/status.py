"""NTSTATUS and HRESULT values that appear in traces.

A trace may give a status by name or by value (an int, or a "0x..." string).
The reader turns every status into one canonical name, so that rules compare
names only. A kernel ``STATUS_FWP_X`` (0xC022xxxx) and the user-mode
``FWP_E_X`` (0x8032xxxx) with the same low word are the same error: both
canonicalise to the ``FWP_E_X`` name. Success is NT_SUCCESS / SUCCEEDED: the
top bit of the 32-bit value is clear.
"""

from __future__ import annotations

_FWP_E: dict[str, int] = {
    "FWP_E_CALLOUT_NOT_FOUND": 0x80320001,
    "FWP_E_CONDITION_NOT_FOUND": 0x80320002,
    "FWP_E_FILTER_NOT_FOUND": 0x80320003,
    "FWP_E_LAYER_NOT_FOUND": 0x80320004,
    "FWP_E_PROVIDER_NOT_FOUND": 0x80320005,
    "FWP_E_PROVIDER_CONTEXT_NOT_FOUND": 0x80320006,
    "FWP_E_SUBLAYER_NOT_FOUND": 0x80320007,
    "FWP_E_NOT_FOUND": 0x80320008,
    "FWP_E_ALREADY_EXISTS": 0x80320009,
    "FWP_E_IN_USE": 0x8032000A,
    "FWP_E_DYNAMIC_SESSION_IN_PROGRESS": 0x8032000B,
    "FWP_E_WRONG_SESSION": 0x8032000C,
    "FWP_E_NO_TXN_IN_PROGRESS": 0x8032000D,
    "FWP_E_TXN_IN_PROGRESS": 0x8032000E,
    "FWP_E_TXN_ABORTED": 0x8032000F,
    "FWP_E_SESSION_ABORTED": 0x80320010,
    "FWP_E_INCOMPATIBLE_TXN": 0x80320011,
    "FWP_E_TIMEOUT": 0x80320012,
    "FWP_E_NET_EVENTS_DISABLED": 0x80320013,
    "FWP_E_INCOMPATIBLE_LAYER": 0x80320014,
    "FWP_E_KM_CLIENTS_ONLY": 0x80320015,
    "FWP_E_LIFETIME_MISMATCH": 0x80320016,
    "FWP_E_BUILTIN_OBJECT": 0x80320017,
    "FWP_E_TOO_MANY_CALLOUTS": 0x80320018,
    "FWP_E_NOTIFICATION_DROPPED": 0x80320019,
    "FWP_E_TRAFFIC_MISMATCH": 0x8032001A,
    "FWP_E_INCOMPATIBLE_SA_STATE": 0x8032001B,
    "FWP_E_NULL_POINTER": 0x8032001C,
    "FWP_E_INVALID_ENUMERATOR": 0x8032001D,
    "FWP_E_INVALID_FLAGS": 0x8032001E,
    "FWP_E_INVALID_NET_MASK": 0x8032001F,
    "FWP_E_INVALID_RANGE": 0x80320020,
    "FWP_E_INVALID_INTERVAL": 0x80320021,
    "FWP_E_ZERO_LENGTH_ARRAY": 0x80320022,
    "FWP_E_NULL_DISPLAY_NAME": 0x80320023,
    "FWP_E_INVALID_ACTION_TYPE": 0x80320024,
    "FWP_E_INVALID_WEIGHT": 0x80320025,
    "FWP_E_MATCH_TYPE_MISMATCH": 0x80320026,
    "FWP_E_TYPE_MISMATCH": 0x80320027,
    "FWP_E_OUT_OF_BOUNDS": 0x80320028,
    "FWP_E_RESERVED": 0x80320029,
    "FWP_E_DUPLICATE_CONDITION": 0x8032002A,
    "FWP_E_DUPLICATE_KEYMOD": 0x8032002B,
    "FWP_E_ACTION_INCOMPATIBLE_WITH_LAYER": 0x8032002C,
    "FWP_E_ACTION_INCOMPATIBLE_WITH_SUBLAYER": 0x8032002D,
    "FWP_E_CONTEXT_INCOMPATIBLE_WITH_LAYER": 0x8032002E,
    "FWP_E_CONTEXT_INCOMPATIBLE_WITH_CALLOUT": 0x8032002F,
    "FWP_E_INCOMPATIBLE_AUTH_METHOD": 0x80320030,
    "FWP_E_INCOMPATIBLE_DH_GROUP": 0x80320031,
    "FWP_E_EM_NOT_SUPPORTED": 0x80320032,
    "FWP_E_NEVER_MATCH": 0x80320033,
    "FWP_E_PROVIDER_CONTEXT_MISMATCH": 0x80320034,
    "FWP_E_INVALID_PARAMETER": 0x80320035,
    "FWP_E_TOO_MANY_SUBLAYERS": 0x80320036,
    "FWP_E_CALLOUT_NOTIFICATION_FAILED": 0x80320037,
    "FWP_E_INVALID_AUTH_TRANSFORM": 0x80320038,
    "FWP_E_INVALID_CIPHER_TRANSFORM": 0x80320039,
}

_OTHER: dict[str, int] = {
    "STATUS_SUCCESS": 0x00000000,
    "S_OK": 0x00000000,
    "S_FALSE": 0x00000001,
    "STATUS_PENDING": 0x00000103,
    "STATUS_REPARSE": 0x00000104,
    "STATUS_MORE_ENTRIES": 0x00000105,
    "STATUS_OBJECT_NAME_EXISTS": 0x40000000,
    "STATUS_DEVICE_BUSY": 0x80000011,
    "STATUS_NO_MORE_ENTRIES": 0x8000001A,
    "STATUS_UNSUCCESSFUL": 0xC0000001,
    "STATUS_NOT_IMPLEMENTED": 0xC0000002,
    "STATUS_INVALID_HANDLE": 0xC0000008,
    "STATUS_INVALID_PARAMETER": 0xC000000D,
    "STATUS_NO_MEMORY": 0xC0000017,
    "STATUS_ACCESS_DENIED": 0xC0000022,
    "STATUS_OBJECT_NAME_NOT_FOUND": 0xC0000034,
    "STATUS_OBJECT_NAME_COLLISION": 0xC0000035,
    "STATUS_INSUFFICIENT_RESOURCES": 0xC000009A,
    "STATUS_NOT_SUPPORTED": 0xC00000BB,
    "STATUS_CANCELLED": 0xC0000120,
    "STATUS_NOT_FOUND": 0xC0000225,
    "STATUS_CONNECTION_REFUSED": 0xC0000236,
    "STATUS_CONNECTION_ABORTED": 0xC0000241,
    "STATUS_FWP_TCPIP_NOT_READY": 0xC0220100,
    "STATUS_FWP_INJECT_HANDLE_CLOSING": 0xC0220101,
    "STATUS_FWP_INJECT_HANDLE_STALE": 0xC0220102,
    "STATUS_FWP_CANNOT_PEND": 0xC0220103,
    "STATUS_FWP_DROP_NOICMP": 0xC0220104,
    "E_FAIL": 0x80004005,
    "E_INVALIDARG": 0x80070057,
    "E_OUTOFMEMORY": 0x8007000E,
    "E_ACCESSDENIED": 0x80070005,
    "ERROR_SUCCESS": 0x00000000,
}

#: Canonical name -> 32-bit value.
CODES: dict[str, int] = {**_OTHER, **_FWP_E}

_BY_VALUE: dict[int, str] = {}
for _name, _value in CODES.items():
    _BY_VALUE.setdefault(_value, _name)
_BY_VALUE[0] = "STATUS_SUCCESS"

_ALIASES: dict[str, str] = {}
for _name in _FWP_E:
    _ALIASES["STATUS_FWP_" + _name[len("FWP_E_") :]] = _name

_KERNEL_FWP_BASE = 0xC0220000
_USER_FWP_BASE = 0x80320000


def _canonical_value(value: int) -> int:
    """Map a kernel STATUS_FWP_* value onto the user-mode FWP_E_* value."""
    if value & 0xFFFF0000 == _KERNEL_FWP_BASE:
        low = value & 0xFFFF
        user = _USER_FWP_BASE | low
        if user in _BY_VALUE:
            return user
    return value


def name_for_value(value: int) -> str:
    """The canonical name of a 32-bit status value (``0x...`` when unnamed)."""
    value = _canonical_value(value & 0xFFFFFFFF)
    return _BY_VALUE.get(value, f"0x{value:08X}")


def value_of(name: str) -> int:
    """The 32-bit value of a canonical status name."""
    if name in CODES:
        return CODES[name]
    if name.startswith("0x"):
        return int(name, 16)
    raise KeyError(name)


# Memo of every spelling seen -> canonical name; seeded with the names.
_CANON: dict[object, str] = {}
for _name in CODES:
    _CANON[_name] = name_for_value(CODES[_name])
for _alias, _target in _ALIASES.items():
    _CANON[_alias] = _target
_CANON["ERROR_SUCCESS"] = "STATUS_SUCCESS"

_SUCCESS: dict[str, bool] = {}


def canonical(raw: object) -> str | None:
    """The canonical name for a status given as a name, an int or a "0x..." string.

    Returns None when the value is not a status the harness can name or decode
    (an unknown symbolic name, a negative or too large number, a bool).
    """
    try:
        hit = _CANON.get(raw)
    except TypeError:
        return None
    if hit is not None:
        return hit
    name: str | None = None
    if type(raw) is int:
        if 0 <= raw <= 0xFFFFFFFF:
            name = name_for_value(raw)
        elif -0x80000000 <= raw < 0:
            name = name_for_value(raw & 0xFFFFFFFF)
    elif type(raw) is str and raw[:2] in ("0x", "0X"):
        try:
            number = int(raw, 16)
        except ValueError:
            return None
        if 0 <= number <= 0xFFFFFFFF:
            name = name_for_value(number)
    if name is not None and len(_CANON) < 100_000:
        _CANON[raw] = name
    return name


def succeeded(name: str | None) -> bool:
    """NT_SUCCESS / SUCCEEDED for a canonical name; a missing status is not success."""
    if name is None:
        return False
    hit = _SUCCESS.get(name)
    if hit is None:
        hit = (value_of(name) & 0x80000000) == 0
        _SUCCESS[name] = hit
    return hit
