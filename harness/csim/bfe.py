"""The Fwpm calls a C driver makes (FwpmEngineOpen0 ... FwpmFilterDeleteById0), on the model's BFE.

The host runtime hands every management call to the ``bfe`` callback of the
host table with a ``CSIM_BFE_ARGS`` record; :class:`DriverBfe` turns it into a
call on a kernel-mode :class:`~harness.engine.bfe.Session` of the engine
(``CalloutApi.open_kernel_session``), which writes the policy-client events
(``session_open`` with ``kernel: true``, ``txn_begin``, ``object_add``, ...)
and answers with the model's statuses (FWP_E_ALREADY_EXISTS for a duplicate
key, FWP_E_CALLOUT_NOT_FOUND for a filter naming an unknown callout, ...).

Keys: a GUID becomes ``{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}``, except a
callout key the driver's ``[[callouts]]`` lists, which becomes the run-time
callout key the engine delivers classifications to (``probe.ALE_AUTH_CONNECT_V4``),
and FWPM_SUBLAYER_UNIVERSAL, which is the built-in sublayer. Conditions: the
fields the model matches on (protocol, local/remote port and address,
direction) with EQUAL, NOT_EQUAL, RANGE, PREFIX and the port comparisons; any
other condition is refused with STATUS_NOT_SUPPORTED, never silently dropped.
Filter weights are taken as given (an FWP_UINT8 weight must be 0-15); the
model orders filters by that number.
"""

from __future__ import annotations

import ctypes as C
import ipaddress
from collections.abc import Callable
from typing import Any, cast

from harness.csim import ffi
from harness.csim.layers import PROTOCOLS
from harness.engine.bfe import Session
from harness.engine.callout_api import CalloutApi
from harness.engine.objects import (
    BfeObject,
    CalloutObject,
    Condition,
    ConditionField,
    Filter,
    FilterAction,
    FilterFlag,
    Lifetime,
    MatchType,
    Provider,
    Sublayer,
)
from harness.errors import TargetError

OK = "STATUS_SUCCESS"
NOT_SUPPORTED = "STATUS_NOT_SUPPORTED"
INVALID_PARAMETER = "STATUS_INVALID_PARAMETER"
#: At most this many sessions and conditions per filter from one driver.
MAX_SESSIONS = 64
MAX_CONDITIONS = 256
MAX_REFUSALS = 8

FWPM_SESSION_FLAG_DYNAMIC = 0x1
FWPM_TXN_READ_ONLY = 0x1
FWPM_PROVIDER_FLAG_PERSISTENT = 0x1
FWPM_SUBLAYER_FLAG_PERSISTENT = 0x1
FWPM_CALLOUT_FLAG_PERSISTENT = 0x10000
FWPM_FILTER_FLAG_PERSISTENT = 0x1
FWPM_FILTER_FLAG_BOOTTIME = 0x2
FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT = 0x4
FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT = 0x8
FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED = 0x10
FWPM_FILTER_FLAG_DISABLED = 0x20
FWPM_FILTER_FLAG_INDEXED = 0x40
#: Filter flags the model knows what to do with (INDEXED is a lookup hint only).
FILTER_FLAGS_KNOWN = (FWPM_FILTER_FLAG_PERSISTENT | FWPM_FILTER_FLAG_BOOTTIME
                      | FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT | FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT
                      | FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED | FWPM_FILTER_FLAG_INDEXED)

FILTER_ACTIONS = {0x1001: "BLOCK", 0x1002: "PERMIT", 0x5003: "CALLOUT_TERMINATING",
                  0x6004: "CALLOUT_INSPECTION", 0x4005: "CALLOUT_UNKNOWN"}
CALLOUT_ACTIONS = frozenset({"CALLOUT_TERMINATING", "CALLOUT_INSPECTION", "CALLOUT_UNKNOWN"})

# FWP_DATA_TYPE
FWP_EMPTY, FWP_UINT8, FWP_UINT16, FWP_UINT32, FWP_UINT64 = 0, 1, 2, 3, 4
FWP_BYTE_ARRAY16_TYPE = 11
FWP_V4_ADDR_MASK, FWP_V6_ADDR_MASK, FWP_RANGE_TYPE = 0x100, 0x101, 0x102
# FWP_MATCH_TYPE
(MATCH_EQUAL, MATCH_GREATER, MATCH_LESS, MATCH_GREATER_OR_EQUAL, MATCH_LESS_OR_EQUAL,
 MATCH_RANGE) = range(6)
MATCH_NOT_EQUAL, MATCH_PREFIX = 10, 11

UNIVERSAL_SUBLAYER = "{EEBECC03-CED4-4380-819A-2734397B2B74}"
CONDITION_FIELDS = {
    "{3971EF2B-623E-4F9A-8CB1-6E79B806B9A7}": "protocol",
    "{0C1BA1AF-5765-453F-AF22-A8F791AC775B}": "local_port",
    "{C35A604D-D22B-4E1A-91B4-68F674EE674B}": "remote_port",
    "{D9EE00DE-C1EF-4617-BFE3-FFD8F5A08957}": "local_address",
    "{B235AE9A-1D64-49B8-A44C-5FF3D9095045}": "remote_address",
    "{8784C146-CA97-44D6-9FD1-19FB1840CBF7}": "direction",
}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}


class _ValueUnion(C.Union):
    _fields_ = [("uint8", C.c_uint8), ("uint16", C.c_uint16), ("uint32", C.c_uint32),
                ("pointer", C.c_void_p)]


class FWP_VALUE(C.Structure):
    """FWP_VALUE0 and FWP_CONDITION_VALUE0: a type and an 8-byte union."""

    _fields_ = [("type", C.c_uint32), ("v", _ValueUnion)]


class FWPM_FILTER_CONDITION(C.Structure):
    _fields_ = [("fieldKey", ffi.GUID), ("matchType", C.c_uint32), ("value", FWP_VALUE)]


class Unsupported(Exception):
    """A request the model cannot express: the call answers STATUS_NOT_SUPPORTED."""


def guid_key(guid: Any) -> str:
    """The model's key for a GUID pointer's target."""
    return "{" + guid.contents.text() + "}"


class DriverBfe:
    """One driver's management calls; ``callout_keys`` maps a callout GUID's text
    (as ``[[callouts]]`` writes it) to its run-time callout key, and
    ``callout_id`` a run-time callout key to the id FwpsCalloutRegister gave it."""

    def __init__(
        self, api: Callable[[], CalloutApi], callout_keys: dict[str, str],
        callout_id: Callable[[str], int],
    ) -> None:
        self._api = api
        self._callout_keys = {f"{{{k.upper()}}}": v for k, v in callout_keys.items()}
        self._callout_id = callout_id
        self.sessions: dict[int, Session] = {}
        #: what the model could not express, newest last (for the DriverEntry failure)
        self.refused: list[str] = []

    def call(self, op: str, handle: int, args: Any, out: Any) -> str:
        """One CSIM_BFE_* operation; the status name it answers."""
        if op == "open":
            return self._open(args, out)
        session = self.sessions.get(handle)
        if session is None:
            return INVALID_PARAMETER
        if op == "close":
            del self.sessions[handle]
            session.close()
            return OK
        if op == "begin":
            return self._begin(session, args.contents.flags if args else 0)
        if op == "commit":
            return session.txn_commit()
        if op == "abort":
            return session.txn_abort()
        if op == "delete":
            return self._delete(session, args.contents)
        if op == "add":
            try:
                obj = self._object(args.contents)
            except Unsupported as exc:
                self._refuse(args.contents, str(exc))
                return NOT_SUPPORTED
            status = session.add(obj)
            if status == OK and out:
                out[0] = self._new_id(session, obj)
            return status
        return INVALID_PARAMETER

    def _refuse(self, a: Any, reason: str) -> None:
        kind = (a.objectType or b"").decode("ascii", "replace")
        key = guid_key(a.key) if a.key else "?"
        self.refused = [*self.refused[-(MAX_REFUSALS - 1):], f"{kind} {key}: {reason}"]

    def close_all(self) -> None:
        """DriverUnload without FwpmEngineClose0: the handles are closed for the driver."""
        for handle in sorted(self.sessions):
            self.sessions.pop(handle).close()

    # -- the calls ------------------------------------------------------------------------

    def _open(self, args: Any, out: Any) -> str:
        if len(self.sessions) >= MAX_SESSIONS:
            return "STATUS_INSUFFICIENT_RESOURCES"
        a = args.contents
        session = self._api().open_kernel_session(
            dynamic=bool(a.flags & FWPM_SESSION_FLAG_DYNAMIC), txn_wait_ms=int(a.txnWaitMs))
        self.sessions[session.handle] = session
        out[0] = session.handle
        return OK

    def _begin(self, session: Session, flags: int) -> str:
        begun = session.txn_begin(read_only=bool(flags & FWPM_TXN_READ_ONLY))
        if not begun.done:
            # DriverEntry runs synchronously on the model: it cannot sleep on the lock.
            raise TargetError(
                f"FwpmTransactionBegin0 on session {session.handle} would wait for the BFE "
                "lock, which another session holds; a driver's call cannot wait on the model")
        return str(begun.value)

    def _delete(self, session: Session, a: Any) -> str:
        if a.key:
            key = guid_key(a.key)
        else:
            found = session.filter_key(int(a.id))
            if found is None:
                return "FWP_E_FILTER_NOT_FOUND"
            key = found
        return session.delete("filter", key)

    def _new_id(self, session: Session, obj: BfeObject) -> int:
        if isinstance(obj, Filter):
            stored = session.find("filter", obj.key)
            return stored.filter_id if isinstance(stored, Filter) else 0
        if isinstance(obj, CalloutObject):
            return self._callout_id(obj.key)
        return 0

    # -- CSIM_BFE_ARGS -> the model's objects ---------------------------------------------

    def _callout_key(self, guid: Any) -> str:
        text = guid_key(guid)
        return self._callout_keys.get(text, text)

    def _object(self, a: Any) -> BfeObject:
        kind = (a.objectType or b"").decode("ascii", "replace")
        provider = guid_key(a.provider) if a.provider else None
        if kind == "provider":
            return Provider(key=guid_key(a.key), lifetime=_lifetime(
                a.flags & FWPM_PROVIDER_FLAG_PERSISTENT))
        if kind == "sublayer":
            return Sublayer(key=guid_key(a.key), provider=provider, weight=int(a.weight),
                            lifetime=_lifetime(a.flags & FWPM_SUBLAYER_FLAG_PERSISTENT))
        layer = (a.layer or b"").decode("ascii", "replace")
        if kind == "callout":
            return CalloutObject(key=self._callout_key(a.key), provider=provider, layer=layer,
                                 lifetime=_lifetime(a.flags & FWPM_CALLOUT_FLAG_PERSISTENT))
        if kind == "filter":
            return self._filter(a, layer, provider)
        raise Unsupported(f"object type {kind!r}")

    def _filter(self, a: Any, layer: str, provider: str | None) -> Filter:
        action = FILTER_ACTIONS.get(int(a.action))
        flags = int(a.flags)
        if action is None or flags & ~FILTER_FLAGS_KNOWN:
            raise Unsupported(
                f"action 0x{int(a.action):X} with flags 0x{flags:X} (the model knows actions "
                f"{sorted(FILTER_ACTIONS.values())} and flags 0x{FILTER_FLAGS_KNOWN:X})")
        if int(a.weightType) == FWP_UINT8 and a.weightValue > 15:
            raise Unsupported(f"FWP_UINT8 weight {int(a.weightValue)} (expected 0-15)")
        if int(a.weightType) not in (FWP_EMPTY, FWP_UINT8, FWP_UINT64):
            raise Unsupported(f"weight of FWP_DATA_TYPE {int(a.weightType)}")
        if int(a.numConditions) > MAX_CONDITIONS:
            raise Unsupported(f"more than {MAX_CONDITIONS} conditions")
        lifetime: Lifetime = "static"
        if flags & FWPM_FILTER_FLAG_BOOTTIME:
            lifetime = "boottime"
        elif flags & FWPM_FILTER_FLAG_PERSISTENT:
            lifetime = "persistent"
        sublayer = guid_key(a.sublayer) if a.sublayer else UNIVERSAL_SUBLAYER
        if sublayer == UNIVERSAL_SUBLAYER:
            sublayer = "FWPM_SUBLAYER_UNIVERSAL"
        rows = C.cast(a.conditions, C.POINTER(FWPM_FILTER_CONDITION))
        conditions = tuple(condition_of(rows[i]) for i in range(int(a.numConditions)))
        named: set[FilterFlag] = set()
        if flags & FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT:
            named.add("CLEAR_ACTION_RIGHT")
        if flags & FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED:
            named.add("PERMIT_IF_CALLOUT_UNREGISTERED")
        return Filter(
            key=guid_key(a.key), provider=provider, lifetime=lifetime, layer=layer,
            sublayer=sublayer, weight=int(a.weightValue), action=cast(FilterAction, action),
            callout=self._callout_key(a.callout) if action in CALLOUT_ACTIONS and a.callout
            else None,
            context=guid_key(a.providerContext) if a.providerContext else None,
            conditions=conditions, flags=frozenset(named),
        )


def _lifetime(persistent: int) -> Lifetime:
    return "persistent" if persistent else "static"


def condition_of(row: FWPM_FILTER_CONDITION) -> Condition:
    name = CONDITION_FIELDS.get("{" + row.fieldKey.text() + "}")
    if name is None:
        raise Unsupported(f"condition field {{{row.fieldKey.text()}}} is not one the "
                           f"model matches on ({', '.join(sorted(CONDITION_FIELDS.values()))})")
    field = cast(ConditionField, name)
    match, value = int(row.matchType), row.value
    if field == "protocol":
        proto = PROTOCOL_NAMES.get(_integer(value, FWP_UINT8))
        return Condition("protocol", proto, _eq_ne(match))
    if field == "direction":
        direction = _integer(value, FWP_UINT32)
        return Condition("direction", "in" if direction == 1 else "out", _eq_ne(match))
    if field.endswith("port"):
        return _port(field, match, value)
    return _address(field, match, value)


def _eq_ne(match: int) -> MatchType:
    if match == MATCH_EQUAL:
        return "eq"
    if match == MATCH_NOT_EQUAL:
        return "ne"
    raise Unsupported(f"FWP_MATCH_TYPE {match} on this field")


def _integer(value: FWP_VALUE, expected: int) -> int:
    if value.type != expected:
        raise Unsupported(f"condition value of FWP_DATA_TYPE {int(value.type)} "
                           f"(expected {expected})")
    if expected == FWP_UINT8:
        return int(value.v.uint8)
    if expected == FWP_UINT16:
        return int(value.v.uint16)
    return int(value.v.uint32)


def _port(field: ConditionField, match: int, value: FWP_VALUE) -> Condition:
    if match == MATCH_RANGE:
        if value.type != FWP_RANGE_TYPE or not value.v.pointer:
            raise Unsupported("FWP_MATCH_RANGE without an FWP_RANGE_TYPE value")
        low, high = C.cast(value.v.pointer, C.POINTER(FWP_VALUE * 2)).contents
        return Condition(field, (_integer(low, FWP_UINT16), _integer(high, FWP_UINT16)), "range")
    port = _integer(value, FWP_UINT16)
    bounds = {MATCH_GREATER: (port + 1, 65535), MATCH_LESS: (0, port - 1),
              MATCH_GREATER_OR_EQUAL: (port, 65535), MATCH_LESS_OR_EQUAL: (0, port)}
    if match in bounds:
        return Condition(field, bounds[match], "range")
    return Condition(field, port, _eq_ne(match))


def _address(field: ConditionField, match: int, value: FWP_VALUE) -> Condition:
    if value.type == FWP_UINT32:
        host = str(ipaddress.IPv4Address(int(value.v.uint32)))
        return Condition(field, host, _eq_ne(match))
    if not value.v.pointer:
        raise Unsupported("an address condition with a null value")
    if value.type == FWP_BYTE_ARRAY16_TYPE:
        raw = C.string_at(value.v.pointer, 16)
        return Condition(field, str(ipaddress.IPv6Address(raw)), _eq_ne(match))
    if value.type == FWP_V4_ADDR_MASK and match in (MATCH_EQUAL, MATCH_PREFIX):
        addr, mask = C.cast(value.v.pointer, C.POINTER(C.c_uint32 * 2)).contents
        net = ipaddress.IPv4Network((int(addr) & int(mask), bin(int(mask)).count("1")))
        return Condition(field, str(net), "prefix")
    if value.type == FWP_V6_ADDR_MASK and match in (MATCH_EQUAL, MATCH_PREFIX):
        raw = C.string_at(value.v.pointer, 17)
        net6 = ipaddress.IPv6Network((raw[:16], min(raw[16], 128)), strict=False)
        return Condition(field, str(net6), "prefix")
    raise Unsupported(f"address condition of FWP_DATA_TYPE {int(value.type)} "
                           f"with FWP_MATCH_TYPE {match}")
