"""BFE management objects as values, shared by BFE and the filter engine.

BFE (``harness.engine.bfe``) stores these; the filter engine reads the
committed filters of a layer to arbitrate a classification. They are frozen:
a change to policy is a new object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ObjectType = Literal["provider", "provider_context", "sublayer", "callout", "filter"]
Lifetime = Literal["dynamic", "static", "persistent", "boottime", "builtin"]
FilterAction = Literal[
    "PERMIT", "BLOCK", "CALLOUT_TERMINATING", "CALLOUT_INSPECTION", "CALLOUT_UNKNOWN"
]
FilterFlag = Literal["PERMIT_IF_CALLOUT_UNREGISTERED", "CLEAR_ACTION_RIGHT"]
ConditionField = Literal[
    "protocol", "local_port", "remote_port", "local_address", "remote_address", "direction"
]
MatchType = Literal["eq", "ne", "range", "prefix"]


@dataclass(frozen=True)
class Condition:
    """One filter condition: ``field`` compared with ``value`` by ``match``.

    ``range`` takes a (low, high) tuple of ints; ``prefix`` takes "addr/len".
    Conditions on different fields are ANDed; on the same field, ORed (as in
    FWPM_FILTER_CONDITION0 arrays).
    """

    field: ConditionField
    value: object
    match: MatchType = "eq"


@dataclass(frozen=True)
class BfeObject:
    """What every management object has: its type, key, lifetime and owner."""

    # Fixed by each subclass and not a constructor argument: a default on an
    # inherited leading field would otherwise forbid the required ``key``.
    type: ObjectType = field(init=False, default="provider")
    key: str
    lifetime: Lifetime = "static"
    session: int | None = None
    provider: str | None = None


@dataclass(frozen=True)
class Provider(BfeObject):
    type: ObjectType = field(init=False, default="provider")
    service_name: str | None = None


@dataclass(frozen=True)
class ProviderContext(BfeObject):
    type: ObjectType = field(init=False, default="provider_context")
    data: str = ""


@dataclass(frozen=True)
class Sublayer(BfeObject):
    type: ObjectType = field(init=False, default="sublayer")
    weight: int = 0


@dataclass(frozen=True)
class CalloutObject(BfeObject):
    """An FWPM callout: the management-side object naming a run-time callout key."""

    type: ObjectType = field(init=False, default="callout")
    layer: str = ""
    context: str | None = None


@dataclass(frozen=True)
class Filter(BfeObject):
    type: ObjectType = field(init=False, default="filter")
    layer: str = ""
    sublayer: str = "FWPM_SUBLAYER_UNIVERSAL"
    weight: int = 0
    action: FilterAction = "PERMIT"
    callout: str | None = None
    context: str | None = None
    conditions: tuple[Condition, ...] = ()
    flags: frozenset[FilterFlag] = field(default_factory=frozenset)
    filter_id: int = 0


#: The run-time layers the model knows (FWPS_LAYER_ names without the prefix).
ALE_LAYERS = (
    "ALE_RESOURCE_ASSIGNMENT", "ALE_RESOURCE_RELEASE", "ALE_AUTH_LISTEN",
    "ALE_AUTH_RECV_ACCEPT", "ALE_AUTH_CONNECT", "ALE_FLOW_ESTABLISHED",
    "ALE_ENDPOINT_CLOSURE", "ALE_CONNECT_REDIRECT", "ALE_BIND_REDIRECT",
)
PACKET_LAYERS = (
    "INBOUND_TRANSPORT", "OUTBOUND_TRANSPORT", "STREAM", "DATAGRAM_DATA",
    "INBOUND_IPPACKET", "OUTBOUND_IPPACKET",
)
LAYERS: tuple[str, ...] = tuple(
    f"{base}_{v}" for base in ALE_LAYERS + PACKET_LAYERS for v in ("V4", "V6")
)

#: Built-in sublayers (key, weight); FWPM_SUBLAYER_UNIVERSAL is where filters
#: without a sublayer go.
BUILTIN_SUBLAYERS: tuple[tuple[str, int], ...] = (
    ("FWPM_SUBLAYER_UNIVERSAL", 0x8000),
    ("FWPM_SUBLAYER_RPC_AUDIT", 0x7000),
    ("FWPM_SUBLAYER_IPSEC_TUNNEL", 0x6000),
    ("FWPM_SUBLAYER_LIPS", 0x5000),
    ("FWPM_SUBLAYER_SECURE_SOCKET", 0x4000),
    ("FWPM_SUBLAYER_TCP_CHIMNEY_OFFLOAD", 0x3000),
    ("FWPM_SUBLAYER_INSPECTION", 0x2000),
    ("FWPM_SUBLAYER_TEREDO", 0x1000),
)
