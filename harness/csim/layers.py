"""Run-time layer ids (FWPS_BUILTIN_LAYERS in include/fwpsk.h) of the layers the model runs.

A test compiles a program against the header and checks this table against it.
"""

from __future__ import annotations

LAYER_IDS: dict[str, int] = {
    "INBOUND_TRANSPORT_V4": 12, "INBOUND_TRANSPORT_V6": 14,
    "OUTBOUND_TRANSPORT_V4": 16, "OUTBOUND_TRANSPORT_V6": 18,
    "STREAM_V4": 20, "STREAM_V6": 22,
    "ALE_RESOURCE_ASSIGNMENT_V4": 36, "ALE_RESOURCE_ASSIGNMENT_V6": 38,
    "ALE_AUTH_LISTEN_V4": 40, "ALE_AUTH_LISTEN_V6": 42,
    "ALE_AUTH_RECV_ACCEPT_V4": 44, "ALE_AUTH_RECV_ACCEPT_V6": 46,
    "ALE_AUTH_CONNECT_V4": 48, "ALE_AUTH_CONNECT_V6": 50,
    "ALE_FLOW_ESTABLISHED_V4": 52, "ALE_FLOW_ESTABLISHED_V6": 54,
    "ALE_RESOURCE_RELEASE_V4": 84, "ALE_RESOURCE_RELEASE_V6": 85,
    "ALE_ENDPOINT_CLOSURE_V4": 86, "ALE_ENDPOINT_CLOSURE_V6": 87,
}
LAYER_NAMES: dict[int, str] = {v: k for k, v in LAYER_IDS.items()}

FWP_ACTIONS: dict[int, str] = {0x1001: "BLOCK", 0x1002: "PERMIT", 0x2006: "CONTINUE",
                               0x7: "NONE", 0x8: "NONE"}
ACTION_VALUES: dict[str, int] = {"BLOCK": 0x1001, "PERMIT": 0x1002, "CONTINUE": 0x2006,
                                 "NONE": 0x7}
PROTOCOLS: dict[str, int] = {"tcp": 6, "udp": 17, "icmp": 1, "raw": 255}
INJECTION_STATES: dict[str, int] = {"none": 0, "self": 1, "other": 2, "prev_self": 3}
FWP_CONDITION_FLAG_IS_REAUTHORIZE = 0x4
FWP_CONDITION_FLAG_REQUIRES_ALE_CLASSIFY = 0x100
