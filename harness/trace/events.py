"""The event model of trace format version 1.

Events are plain dicts (one per JSON line) so that reading a million of them
stays cheap; this module says which kinds exist, which fields each kind has
and what JSON type each field takes. The reader checks the types of the
fields it knows and ignores the rest, as the format requires.
"""

from __future__ import annotations

from typing import Any, Final

Event = dict[str, Any]

FORMAT_VERSION: Final = 1

#: The last event of a trace whose header says ``"ends": true``:
#: ``{"seq": N, "t": T, "ev": "trace_end", "events": K}``, K the events before it.
END_KIND: Final = "trace_end"

# JSON types as Python type sets; bool is its own type, so ``type(v) in INT``
# rejects true/false where a number is expected.
INT: Final = frozenset({int})
NUMBER: Final = frozenset({int, float})
STR: Final = frozenset({str})
BOOL: Final = frozenset({bool})
HANDLE: Final = frozenset({int, str})
STATUS: Final = frozenset({int, str})
ACTION_OR_NULL: Final[frozenset[type]] = frozenset({str, type(None)})

TYPE_NAMES: Final = {
    INT: "an integer",
    NUMBER: "a number",
    STR: "a string",
    BOOL: "true or false",
    HANDLE: "an integer or string handle",
    ACTION_OR_NULL: "an action name or null",
}

#: kind -> {field: allowed JSON types}; framing fields (seq, t, ev) apart.
SCHEMA: Final[dict[str, dict[str, frozenset[type]]]] = {
    # engine indications
    "classify": {
        "id": HANDLE, "layer": STR, "callout": HANDLE, "endpoint": HANDLE,
        "parent": HANDLE, "flow": HANDLE, "proto": STR, "dir": STR, "local": STR,
        "remote": STR, "reauth": BOOL, "can_pend": BOOL, "ale_required": BOOL,
        "injection": STR, "rights": BOOL, "packet": HANDLE,
    },
    "classify_done": {"id": HANDLE, "action": STR, "absorb": BOOL, "rights": BOOL},
    "flow_delete": {"flow": HANDLE, "callout": HANDLE, "ctx": HANDLE},
    "notify": {"callout": HANDLE, "type": STR, "filter": HANDLE, "status": STATUS},
    # callout API calls
    "pend_operation": {"id": HANDLE, "ctx": HANDLE, "status": STATUS},
    "complete_operation": {"ctx": HANDLE, "packet": HANDLE},
    "acquire_classify_handle": {"id": HANDLE, "handle": HANDLE, "status": STATUS},
    "release_classify_handle": {"handle": HANDLE},
    "pend_classify": {"id": HANDLE, "handle": HANDLE, "status": STATUS},
    "complete_classify": {"handle": HANDLE, "action": ACTION_OR_NULL},
    "clone": {"packet": HANDLE, "of": HANDLE, "status": STATUS},
    "free_clone": {"packet": HANDLE},
    "reference": {"packet": HANDLE},
    "dereference": {"packet": HANDLE},
    "inject": {
        "packet": HANDLE, "kind": STR, "flow": HANDLE, "endpoint": HANDLE, "status": STATUS,
    },
    "inject_complete": {"packet": HANDLE, "status": STATUS},
    "flow_associate": {
        "flow": HANDLE, "layer": STR, "callout": HANDLE, "ctx": HANDLE, "status": STATUS,
    },
    "flow_remove": {"flow": HANDLE, "layer": STR, "callout": HANDLE, "status": STATUS},
    "callout_register": {"callout": HANDLE, "status": STATUS},
    "callout_unregister": {"callout": HANDLE, "status": STATUS},
    "alloc": {"obj": HANDLE, "endpoint": HANDLE, "tag": STR},
    "free": {"obj": HANDLE, "endpoint": HANDLE, "tag": STR},
    "decision": {"ctx": HANDLE, "action": STR},
    "queue": {"packet": HANDLE, "endpoint": HANDLE},
    # policy client calls
    "session_open": {
        "session": HANDLE, "dynamic": BOOL, "txn_wait_ms": NUMBER, "kernel": BOOL,
        "status": STATUS,
    },
    "session_close": {"session": HANDLE},
    "txn_begin": {"session": HANDLE, "read_only": BOOL, "waited_ms": NUMBER, "status": STATUS},
    "txn_commit": {"session": HANDLE, "status": STATUS},
    "txn_abort": {"session": HANDLE, "status": STATUS},
    "txn_forced_abort": {"session": HANDLE},
    "object_add": {
        "session": HANDLE, "type": STR, "key": HANDLE, "lifetime": STR, "provider": HANDLE,
        "layer": HANDLE, "sublayer": HANDLE, "callout": HANDLE, "context": HANDLE,
        "action": STR, "weight": NUMBER, "status": STATUS,
    },
    "object_delete": {"session": HANDLE, "type": STR, "key": HANDLE, "status": STATUS},
    "policy_change": {"layer": STR},
    # framing: the end-of-trace marker
    END_KIND: {"events": INT},
}

KINDS: Final = frozenset(SCHEMA)

ACTIONS: Final = ("PERMIT", "BLOCK", "CONTINUE", "NONE")
PROTOCOLS: Final = ("tcp", "udp", "icmp", "raw")
INJECTIONS: Final = ("none", "self", "other", "prev_self")
INJECT_KINDS: Final = (
    "transport_send", "transport_recv", "network_send", "network_recv", "forward", "stream",
)
OBJECT_TYPES: Final = ("provider", "provider_context", "sublayer", "callout", "filter")
LIFETIMES: Final = ("dynamic", "static", "persistent", "boottime", "builtin")

INFINITE_WAIT_MS: Final = 4294967295
DEFAULT_WAIT_MS: Final = 15000
USER_TXN_LOCK_LIMIT_S: Final = 3600.0


def layer_family(layer: str) -> str:
    """The layer name without its ``_V4``/``_V6`` suffix (``_DISCARD`` is kept)."""
    if layer.endswith(("_V4", "_V6")):
        return layer[:-3]
    if layer.endswith(("_V4_DISCARD", "_V6_DISCARD")):
        return layer[:-11] + "_DISCARD"
    return layer


def wait_timeout_ms(txn_wait_ms: float | None) -> float:
    """A session's effective lock wait: 0 or absent is 15 s; INFINITE is infinity."""
    if not txn_wait_ms:
        return float(DEFAULT_WAIT_MS)
    if txn_wait_ms >= INFINITE_WAIT_MS:
        return float("inf")
    return float(txn_wait_ms)
