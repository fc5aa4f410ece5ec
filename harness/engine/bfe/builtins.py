"""The objects BFE defines itself: built-in layers, sublayers, callouts, providers.

They exist from the start, cannot be added or deleted (OB003), and may be
referred to by any object of any lifetime (OB001, OB006). The lists follow the
Windows SDK headers (fwpmu.h, fwpmk.h) and the "Filtering layer identifiers",
"Filtering sublayer identifiers", "Built-in callout identifiers" and
"Built-in provider identifiers" pages; they name the same objects as the
contract checker's ``harness.contract.builtins`` (a test keeps the two equal),
so that what this model calls built-in is what the checker judges as such.

BFE knows every Windows filtering layer, although the network side of the
model classifies only at ``harness.engine.objects.LAYERS``: a filter at
another layer is accepted and simply never matched.
"""

from __future__ import annotations

from typing import Final

from harness.engine.objects import BUILTIN_SUBLAYERS, BfeObject, CalloutObject, Provider, Sublayer

_DUAL: Final = (
    "INBOUND_IPPACKET", "OUTBOUND_IPPACKET", "IPFORWARD", "INBOUND_TRANSPORT",
    "OUTBOUND_TRANSPORT", "STREAM", "DATAGRAM_DATA", "INBOUND_ICMP_ERROR",
    "OUTBOUND_ICMP_ERROR", "ALE_RESOURCE_ASSIGNMENT", "ALE_AUTH_LISTEN",
    "ALE_AUTH_RECV_ACCEPT", "ALE_AUTH_CONNECT", "ALE_FLOW_ESTABLISHED",
)
_V4_V6: Final = (
    "INGRESS_VSWITCH_TRANSPORT", "EGRESS_VSWITCH_TRANSPORT", "IPSEC_KM_DEMUX", "IPSEC",
    "IKEEXT", "NAME_RESOLUTION_CACHE", "ALE_RESOURCE_RELEASE", "ALE_ENDPOINT_CLOSURE",
    "ALE_CONNECT_REDIRECT", "ALE_BIND_REDIRECT", "STREAM_PACKET",
    "OUTBOUND_NETWORK_CONNECTION_POLICY",
)
_SINGLE: Final = (
    "INBOUND_MAC_FRAME_ETHERNET", "OUTBOUND_MAC_FRAME_ETHERNET",
    "INBOUND_MAC_FRAME_NATIVE", "OUTBOUND_MAC_FRAME_NATIVE",
    "INGRESS_VSWITCH_ETHERNET", "EGRESS_VSWITCH_ETHERNET",
    "INBOUND_TRANSPORT_FAST", "OUTBOUND_TRANSPORT_FAST",
    "INBOUND_MAC_FRAME_NATIVE_FAST", "OUTBOUND_MAC_FRAME_NATIVE_FAST",
    "RPC_UM", "RPC_EPMAP", "RPC_EP_ADD", "RPC_PROXY_CONN", "RPC_PROXY_IF",
    "KM_AUTHORIZATION", "INBOUND_RESERVED2",
)

#: Every filtering layer, by its run-time name without prefix.
LAYERS: Final[frozenset[str]] = frozenset(
    [f"{b}_{v}{d}" for b in _DUAL for v in ("V4", "V6") for d in ("", "_DISCARD")]
    + [f"{b}_{v}" for b in _V4_V6 for v in ("V4", "V6")]
    + list(_SINGLE)
)

# Sublayers the SDK defines beyond the weighted ones of objects.py. Their
# weights are not documented; they rank below every documented one so that
# they never change how the model's own policy arbitrates.
_EXTRA_SUBLAYERS: Final = (
    ("FWPM_SUBLAYER_EDGE_TRAVERSAL", 0x0F00),
    ("FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL", 0x0E00),
    ("FWPM_SUBLAYER_IPSEC_DOSP", 0x0D00),
    ("FWPM_SUBLAYER_TCP_TEMPLATES", 0x0C00),
    ("FWPM_SUBLAYER_IPSEC_SECURITY_REALM", 0x0B00),
)
SUBLAYERS: Final[tuple[tuple[str, int], ...]] = BUILTIN_SUBLAYERS + _EXTRA_SUBLAYERS

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
CALLOUTS: Final[frozenset[str]] = frozenset(
    [f"FWPM_CALLOUT_{b}_{v}" for b in _CALLOUTS_V4_V6 for v in ("V4", "V6")]
    + [
        "FWPM_CALLOUT_WFP_TRANSPORT_LAYER_V4_SILENT_DROP",
        "FWPM_CALLOUT_WFP_TRANSPORT_LAYER_V6_SILENT_DROP",
        "FWPM_CALLOUT_HTTP_TEMPLATE_SSL_HANDSHAKE",
    ]
)

PROVIDERS: Final[frozenset[str]] = frozenset({
    "FWPM_PROVIDER_IKEEXT", "FWPM_PROVIDER_IPSEC_DOS_CONFIG",
    "FWPM_PROVIDER_TCP_CHIMNEY_OFFLOAD", "FWPM_PROVIDER_TCP_TEMPLATES",
})


def builtin_objects() -> list[BfeObject]:
    """Fresh built-in sublayer, callout and provider objects for a new BFE."""
    objs: list[BfeObject] = [Sublayer(key=k, lifetime="builtin", weight=w) for k, w in SUBLAYERS]
    objs += [CalloutObject(key=k, lifetime="builtin") for k in sorted(CALLOUTS)]
    objs += [Provider(key=k, lifetime="builtin") for k in sorted(PROVIDERS)]
    return objs
