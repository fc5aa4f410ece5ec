"""The step vocabulary of scenario files, as data.

A step is a table in ``[[steps]]`` with ``do`` naming its kind. Each kind
lists its parameters: type, default, allowed values, and, for references,
which kinds of earlier step they may name. The loader validates against this
table; every target implements every kind, so a scenario never names a
target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CONNECTION_KINDS: Final = ("tcp_connect", "tcp_accept", "udp_send", "tcp_listen", "udp_receive")
ENDPOINT_KINDS: Final = ("tcp_connect", "tcp_accept", "udp_send", "tcp_listen")
BFE_STATUS_KINDS: Final = (
    "session_open", "txn_begin", "txn_commit", "txn_abort", "add_filter", "delete_filter",
    "object_add", "object_delete", "callout_unregister", "callout_register",
)
FILTER_ACTIONS: Final = (
    "permit", "block", "callout_terminating", "callout_inspection", "callout_unknown",
)
FILTER_LAYERS: Final = (
    "ALE_AUTH_CONNECT", "ALE_AUTH_RECV_ACCEPT", "ALE_AUTH_LISTEN", "ALE_RESOURCE_ASSIGNMENT",
    "ALE_RESOURCE_RELEASE", "ALE_ENDPOINT_CLOSURE", "ALE_FLOW_ESTABLISHED", "STREAM",
    "INBOUND_TRANSPORT", "OUTBOUND_TRANSPORT", "DATAGRAM_DATA",
)
OBJECT_TYPES: Final = ("provider", "provider_context", "sublayer", "callout", "filter")
LIFETIMES: Final = ("dynamic", "static", "persistent", "boottime")


@dataclass(frozen=True)
class Param:
    """One parameter of a step kind.

    ``type`` is str, int, float, bool, ref (the id of an earlier step of one
    of ``refs``), ints (a list of integers) or wait (milliseconds, or
    "default" / "infinite").
    """

    type: str
    default: object = None
    required: bool = False
    choices: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    minimum: float | None = None
    help: str = ""


_FAMILY = Param("str", "v4", choices=("v4", "v6"), help="IP version")
_SESSION = Param("ref", None, refs=("session_open",), help="BFE session (default: implicit)")


#: kind -> (one-line help, {param: Param}); ``id``, ``do``, ``delay_ms`` and
#: ``concurrent`` are common to every kind.
STEP_KINDS: Final[dict[str, tuple[str, dict[str, Param]]]] = {
    "tcp_listen": ("open a TCP listening socket", {
        "family": _FAMILY,
        "port": Param("int", 0, minimum=0, help="local port (0: any)"),
    }),
    "tcp_connect": ("connect out to a remote TCP peer and exchange data", {
        "family": _FAMILY,
        "remote_port": Param("int", 443, minimum=1),
        "segments": Param("int", 2, minimum=0, help="data segments sent after connecting"),
        "replies": Param("int", 1, minimum=0, help="segments the peer sends back"),
    }),
    "tcp_accept": ("a remote peer connects to a local listener", {
        "listener": Param("ref", required=True, refs=("tcp_listen",)),
        "segments": Param("int", 1, minimum=0, help="segments the peer sends"),
        "replies": Param("int", 1, minimum=0, help="segments sent back to the peer"),
    }),
    "udp_send": ("send datagrams from one UDP socket to several peers", {
        "family": _FAMILY,
        "peers": Param("int", 1, minimum=1),
        "packets": Param("int", 1, minimum=1, help="datagrams to each peer"),
        "replies": Param("int", 0, minimum=0, help="datagrams each peer sends back"),
    }),
    "udp_receive": ("new remote peers send datagrams to an open UDP socket", {
        "on": Param("ref", required=True, refs=("udp_send",)),
        "peers": Param("int", 1, minimum=1),
        "packets": Param("int", 1, minimum=1, help="datagrams from each peer"),
    }),
    "send": ("send more data on an open connection", {
        "on": Param("ref", required=True, refs=("tcp_connect", "tcp_accept", "udp_send")),
        "segments": Param("int", 1, minimum=1),
        "direction": Param("str", "out", choices=("out", "in")),
    }),
    "close": ("close a socket", {
        "of": Param("ref", required=True, refs=ENDPOINT_KINDS),
    }),
    "add_filter": ("add a filter (triggers reauthorization at its layer)", {
        "layer": Param("str", required=True, choices=FILTER_LAYERS),
        "family": _FAMILY,
        "action": Param("str", "block", choices=FILTER_ACTIONS),
        "weight": Param("int", 10, minimum=0),
        "remote_port": Param("int", None, minimum=0),
        "protocol": Param("str", None, choices=("tcp", "udp")),
        "hard": Param("bool", False, help="clear the write right (CLEAR_ACTION_RIGHT)"),
        "session": _SESSION,
    }),
    "delete_filter": ("delete a filter added earlier", {
        "filter": Param("ref", required=True, refs=("add_filter",)),
        "session": _SESSION,
    }),
    "session_open": ("open a BFE session", {
        "dynamic": Param("bool", False),
        "wait_ms": Param("wait", 0, help="txnWaitTimeoutInMSec: ms, 'default' or 'infinite'"),
        "kernel": Param("bool", False),
    }),
    "session_close": ("close a BFE session", {
        "session": Param("ref", required=True, refs=("session_open",)),
    }),
    "txn_begin": ("begin a transaction (may wait for the lock)", {
        "session": Param("ref", required=True, refs=("session_open",)),
        "read_only": Param("bool", False),
    }),
    "txn_commit": ("commit the session's transaction", {
        "session": Param("ref", required=True, refs=("session_open",)),
    }),
    "txn_abort": ("abort the session's transaction", {
        "session": Param("ref", required=True, refs=("session_open",)),
    }),
    "object_add": ("add a BFE object", {
        "session": _SESSION,
        "type": Param("str", required=True, choices=OBJECT_TYPES),
        "key": Param("str", required=True),
        "lifetime": Param("str", "static", choices=LIFETIMES),
        "provider": Param("str"),
        "layer": Param("str"),
        "sublayer": Param("str", "FWPM_SUBLAYER_UNIVERSAL", help="filters: their sublayer"),
        "callout": Param("str"),
        "context": Param("str"),
        "weight": Param("int", 0, minimum=0, help="filters and sublayers"),
    }),
    "object_delete": ("delete a BFE object", {
        "session": _SESSION,
        "type": Param("str", required=True, choices=OBJECT_TYPES),
        "key": Param("str", required=True),
    }),
    "callout_unregister": ("the driver unregisters its callouts", {}),
    "callout_register": ("the driver registers its callouts again", {}),
    "wait": ("let time pass", {
        "seconds": Param("float", required=True, minimum=0),
    }),
}

COMMON_KEYS: Final = ("do", "id", "delay_ms", "concurrent")
