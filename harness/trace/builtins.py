"""The objects BFE defines itself, by the names traces use for them (shared by
the contract checker and the engine model).

Layers are management/run-time layer names without the ``FWPM_LAYER_`` /
``FWPS_LAYER_`` prefix (``ALE_AUTH_CONNECT_V4``), as trace-format.md spells
them; sublayers, callouts and providers keep their ``FWPM_`` names
(``FWPM_SUBLAYER_UNIVERSAL``). The lists follow the Windows SDK headers
(fwpmu.h / fwpmk.h) and the docs pages "Filtering sublayer identifiers",
"Built-in callout identifiers" and "Built-in provider identifiers".

A built-in object cannot be added or deleted (OB003) and always exists, so a
reference to it is never missing (OB006) and never shorter-lived (OB001).
A key missing from these lists is treated as an ordinary object's key, so a
list that is too short can only make OB003 miss a violation or OB006 see a
missing reference where Windows has a built-in one; the lists are therefore
kept complete rather than minimal.
"""

from __future__ import annotations

from typing import Final

_DUAL: Final = (
    "INBOUND_IPPACKET", "OUTBOUND_IPPACKET", "IPFORWARD", "INBOUND_TRANSPORT",
    "OUTBOUND_TRANSPORT", "STREAM", "DATAGRAM_DATA", "INBOUND_ICMP_ERROR",
    "OUTBOUND_ICMP_ERROR", "ALE_RESOURCE_ASSIGNMENT", "ALE_AUTH_LISTEN",
    "ALE_AUTH_RECV_ACCEPT", "ALE_AUTH_CONNECT", "ALE_FLOW_ESTABLISHED",
)
"""Layers that exist as _V4, _V4_DISCARD, _V6 and _V6_DISCARD."""

_V4_V6: Final = (
    "INGRESS_VSWITCH_TRANSPORT", "EGRESS_VSWITCH_TRANSPORT", "IPSEC_KM_DEMUX", "IPSEC",
    "IKEEXT", "NAME_RESOLUTION_CACHE", "ALE_RESOURCE_RELEASE", "ALE_ENDPOINT_CLOSURE",
    "ALE_CONNECT_REDIRECT", "ALE_BIND_REDIRECT", "STREAM_PACKET",
    "OUTBOUND_NETWORK_CONNECTION_POLICY",
)
"""Layers that exist as _V4 and _V6 only."""

_SINGLE: Final = (
    "INBOUND_MAC_FRAME_ETHERNET", "OUTBOUND_MAC_FRAME_ETHERNET",
    "INBOUND_MAC_FRAME_NATIVE", "OUTBOUND_MAC_FRAME_NATIVE",
    "INGRESS_VSWITCH_ETHERNET", "EGRESS_VSWITCH_ETHERNET",
    "INBOUND_TRANSPORT_FAST", "OUTBOUND_TRANSPORT_FAST",
    "INBOUND_MAC_FRAME_NATIVE_FAST", "OUTBOUND_MAC_FRAME_NATIVE_FAST",
    "RPC_UM", "RPC_EPMAP", "RPC_EP_ADD", "RPC_PROXY_CONN", "RPC_PROXY_IF",
    "KM_AUTHORIZATION", "INBOUND_RESERVED2",
)

#: Every built-in filtering layer, without prefix.
LAYERS: Final[frozenset[str]] = frozenset(
    [f"{b}_{v}{d}" for b in _DUAL for v in ("V4", "V6") for d in ("", "_DISCARD")]
    + [f"{b}_{v}" for b in _V4_V6 for v in ("V4", "V6")]
    + list(_SINGLE)
)

#: Built-in sublayers (fwpmu.h; FWPM_SUBLAYER_EDGE_TRAVERSAL is TEREDO's newer name).
SUBLAYERS: Final[frozenset[str]] = frozenset({
    "FWPM_SUBLAYER_RPC_AUDIT", "FWPM_SUBLAYER_IPSEC_TUNNEL", "FWPM_SUBLAYER_UNIVERSAL",
    "FWPM_SUBLAYER_LIPS", "FWPM_SUBLAYER_SECURE_SOCKET", "FWPM_SUBLAYER_TCP_CHIMNEY_OFFLOAD",
    "FWPM_SUBLAYER_INSPECTION", "FWPM_SUBLAYER_TEREDO", "FWPM_SUBLAYER_EDGE_TRAVERSAL",
    "FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL", "FWPM_SUBLAYER_IPSEC_DOSP",
    "FWPM_SUBLAYER_TCP_TEMPLATES", "FWPM_SUBLAYER_IPSEC_SECURITY_REALM",
})

_CALLOUTS_V4_V6: Final = (
    "IPSEC_INBOUND_TRANSPORT", "IPSEC_INBOUND_TUNNEL", "IPSEC_OUTBOUND_TRANSPORT",
    "IPSEC_OUTBOUND_TUNNEL", "IPSEC_FORWARD_INBOUND_TUNNEL", "IPSEC_FORWARD_OUTBOUND_TUNNEL",
    "IPSEC_INBOUND_INITIATE_SECURE", "IPSEC_ALE_CONNECT", "IPSEC_DOSP_FORWARD",
    "TCP_CHIMNEY_CONNECT_LAYER", "TCP_CHIMNEY_ACCEPT_LAYER",
    "SET_OPTIONS_AUTH_CONNECT_LAYER", "SET_OPTIONS_AUTH_RECV_ACCEPT_LAYER",
    "RESERVED_AUTH_CONNECT_LAYER", "TEREDO_ALE_RESOURCE_ASSIGNMENT",
    "EDGE_TRAVERSAL_ALE_RESOURCE_ASSIGNMENT", "TEREDO_ALE_LISTEN", "EDGE_TRAVERSAL_ALE_LISTEN",
    "TCP_TEMPLATES_CONNECT_LAYER", "TCP_TEMPLATES_ACCEPT_LAYER",
    "POLICY_SILENT_MODE_AUTH_CONNECT_LAYER", "POLICY_SILENT_MODE_AUTH_RECV_ACCEPT_LAYER",
)

#: Built-in callouts ("Built-in callout identifiers").
CALLOUTS: Final[frozenset[str]] = frozenset(
    [f"FWPM_CALLOUT_{b}_{v}" for b in _CALLOUTS_V4_V6 for v in ("V4", "V6")]
    + [
        "FWPM_CALLOUT_WFP_TRANSPORT_LAYER_V4_SILENT_DROP",
        "FWPM_CALLOUT_WFP_TRANSPORT_LAYER_V6_SILENT_DROP",
        "FWPM_CALLOUT_HTTP_TEMPLATE_SSL_HANDSHAKE",
    ]
)

#: Built-in providers ("Built-in provider identifiers").
PROVIDERS: Final[frozenset[str]] = frozenset({
    "FWPM_PROVIDER_IKEEXT", "FWPM_PROVIDER_IPSEC_DOS_CONFIG",
    "FWPM_PROVIDER_TCP_CHIMNEY_OFFLOAD", "FWPM_PROVIDER_TCP_TEMPLATES",
})

#: Built-in keys by object type; types absent here (provider_context, filter)
#: have no built-in instances a client could name.
BY_TYPE: Final[dict[str, frozenset[str]]] = {
    "sublayer": SUBLAYERS,
    "callout": CALLOUTS,
    "provider": PROVIDERS,
}

#: Every built-in (type, key), for one set lookup per reference.
BUILTIN_KEYS: Final[frozenset[tuple[str, object]]] = frozenset(
    (otype, key) for otype, keys in BY_TYPE.items() for key in keys
)

_LAYER_PREFIXES: Final = ("FWPM_LAYER_", "FWPS_LAYER_")


def layer_name(layer: str) -> str:
    """A layer name as traces spell it: without an FWPM_LAYER_/FWPS_LAYER_ prefix."""
    for prefix in _LAYER_PREFIXES:
        if layer.startswith(prefix):
            return layer[len(prefix):]
    return layer


def is_layer(layer: str) -> bool:
    """True when ``layer`` (with or without prefix) names a built-in layer."""
    return layer in LAYERS or layer_name(layer) in LAYERS


def is_builtin(obj_type: str, key: object) -> bool:
    """True when ``key`` is a built-in object of ``obj_type``."""
    keys = BY_TYPE.get(obj_type)
    return keys is not None and key in keys
