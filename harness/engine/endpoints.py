"""Endpoints, flows and packets of the engine model, and the handle table.

These are the stack's mutable records (an endpoint changes state over its
life); the values a callout sees are the frozen :class:`ClassifyIn` tuples
built from them. Every endpoint gets a handle from :class:`HandleTable`,
which reuses a handle only after the endpoint that had it was released
(EP005): real handles are pool addresses and do come back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

from harness.engine.clock import Future, Timer

Family = Literal["V4", "V6"]
Proto = Literal["tcp", "udp"]
Kind = Literal["conn", "listener", "udp"]

# endpoint states, in life order
OPEN = "open"            # bound, not yet closing
CLOSING = "closing"      # closure indicated, not complete (maybe pended)
CLOSED = "closed"        # closure complete: no classify may name it but RESOURCE_RELEASE
RELEASED = "released"    # handle back in the table


class HandleTable:
    """Endpoint handles: unique among live endpoints, reused only after release."""

    __slots__ = ("_free", "_live", "_next")

    def __init__(self, first: int = 0x1000) -> None:
        self._next = first
        self._free: deque[int] = deque()
        self._live: set[int] = set()

    def allocate(self) -> int:
        """A handle for a new endpoint."""
        # hold a few freed handles back, so reuse happens but not instantly
        handle = self._free.popleft() if len(self._free) > 4 else self._take_new()
        self._live.add(handle)
        return handle

    def _take_new(self) -> int:
        handle = self._next
        self._next += 8  # handles look like aligned pool addresses
        return handle

    def release(self, handle: int) -> None:
        if handle in self._live:
            self._live.discard(handle)
            self._free.append(handle)

    def live(self) -> frozenset[int]:
        return frozenset(self._live)


class Flow:
    """One 5-tuple of an endpoint: a TCP connection, or one UDP remote peer."""

    __slots__ = (
        "auth_layer", "contexts", "dir", "ep", "id", "in_seq", "out_seq", "pending_sends",
        "remote", "state",
    )

    def __init__(self, flow_id: int, ep: Endpoint, remote: str, direction: str) -> None:
        self.id = flow_id
        self.ep = ep
        self.remote = remote
        self.dir = direction  # who initiated: "out" (connect) or "in" (accept)
        self.state = "new"  # new -> authorizing -> authorized -> established -> ended
        self.auth_layer: str | None = None  # the layer that authorized it
        self.contexts: dict[tuple[str, str], object] = {}  # (layer, callout) -> ctx
        self.pending_sends: list[int] = []  # sizes the app will retransmit (FwpsPendOperation0)
        self.out_seq = 0
        self.in_seq = 0

    @property
    def authorized(self) -> bool:
        return self.state in ("authorized", "established")


class Endpoint:
    """A socket's engine-side identity: the TRANSPORT_ENDPOINT_HANDLE."""

    __slots__ = (
        "assigned", "auth_layers", "close_future", "family", "flows", "handle", "kind",
        "listener", "local", "on_accept", "on_data", "parent", "proto", "reauth_due",
        "seen_at_auth", "state", "timers",
    )

    def __init__(
        self, handle: int, kind: Kind, family: Family, local: str, *,
        parent: int | None = None, assigned: bool = True,
    ) -> None:
        self.handle = handle
        self.kind = kind
        self.proto: Proto = "udp" if kind == "udp" else "tcp"
        self.family = family
        self.local = local
        self.parent = parent
        self.assigned = assigned  # indicated at ALE_RESOURCE_ASSIGNMENT
        self.state = OPEN
        self.flows: dict[str, Flow] = {}
        # A TCP endpoint is a connection once seen at AUTH_CONNECT/RECV_ACCEPT
        # and then owes exactly one closure (EP002); a listener once listening.
        self.seen_at_auth = False
        self.listener = False
        # RA001: the ALE auth layers it was classified at, and those where a
        # policy change since then still owes it a reauthorization
        self.auth_layers: set[str] = set()
        self.reauth_due: set[str] = set()
        self.close_future: Future | None = None
        self.timers: list[Timer] = []
        self.on_accept: Callable[[Endpoint], None] | None = None
        self.on_data: Callable[[str, int], None] | None = None

    @property
    def live(self) -> bool:
        """Not yet closed: packets may still be classified for it."""
        return self.state in (OPEN, CLOSING)

    @property
    def flow(self) -> Flow | None:
        """A TCP connection's only flow."""
        for flow in self.flows.values():
            return flow
        return None

    @property
    def needs_closure(self) -> bool:
        """Whether the engine indicates ALE_ENDPOINT_CLOSURE for it (ALE endpoint lifetime)."""
        return self.proto != "tcp" or self.seen_at_auth or self.listener

    def __repr__(self) -> str:
        return f"<Endpoint {self.handle:#x} {self.kind} {self.local} {self.state}>"


class Packet:
    """An NBL (or stream data) as the engine tracks it: who it belongs to, where it goes."""

    __slots__ = ("dir", "ep", "flow", "freed", "id", "kind", "origin", "remote", "seq", "size")

    def __init__(
        self, packet_id: int, kind: str, ep: Endpoint | None, remote: str, direction: str,
        size: int, *, flow: Flow | None = None, seq: int = 0, origin: int | None = None,
    ) -> None:
        self.id = packet_id
        self.kind = kind  # syn | data (transport) | stream | dgram
        self.ep = ep
        self.remote = remote
        self.dir = direction
        self.size = size
        self.flow = flow
        self.seq = seq  # position in its flow's stream, for ordered delivery
        self.origin = origin  # the packet it was cloned from
        self.freed = False

    def clone(self, packet_id: int) -> Packet:
        return Packet(
            packet_id, self.kind, self.ep, self.remote, self.dir, self.size,
            flow=self.flow, seq=self.seq, origin=self.id,
        )


def address(family: str, host: int, port: int) -> str:
    """A trace address: ``10.0.0.H:P`` or ``[fd00::H]:P``."""
    if family == "V4":
        return f"10.0.{host >> 8 & 0xFF}.{host & 0xFF}:{port}"
    return f"[fd00::{host:x}]:{port}"


