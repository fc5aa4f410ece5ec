"""The WFP identifiers the host puts into a step plan (the agent's C carries none).

Layer keys are the FWPM_LAYER_* GUIDs of fwpmu.h for the layers a scenario
can name (``harness.scenario.steps.FILTER_LAYERS`` in both IP versions), and
the FWP_ACTION_TYPE values of fwptypes.h. A layer name that is not here gets
a stable GUID of its own, so BFE answers FWP_E_LAYER_NOT_FOUND as it would
for any unknown layer.
"""

from __future__ import annotations

import uuid
from typing import Final

LAYERS: Final[dict[str, str]] = {
    "INBOUND_TRANSPORT_V4": "5926dfc8-e3cf-4426-a283-dc393f5d0f9d",
    "INBOUND_TRANSPORT_V6": "634a869f-fc23-4b90-b0c1-bf620a36ae6f",
    "OUTBOUND_TRANSPORT_V4": "09e61aea-d214-46e2-9b21-b26b0b2f28c8",
    "OUTBOUND_TRANSPORT_V6": "e1735bde-013f-4655-b351-a49e15762df0",
    "STREAM_V4": "3b89653c-c170-49e4-b1cd-e0eeeee19a3e",
    "STREAM_V6": "47c9137a-7ec4-46b3-b6e4-48e926b1eda4",
    "DATAGRAM_DATA_V4": "3d08bf4e-45f6-4930-a922-417098e20027",
    "DATAGRAM_DATA_V6": "fa45fe2f-3cba-4427-87fc-57b9a4b10d00",
    "ALE_RESOURCE_ASSIGNMENT_V4": "1247d66d-0b60-4a15-8d44-7155d0f53a0c",
    "ALE_RESOURCE_ASSIGNMENT_V6": "55a650e1-5f0a-4eca-a653-88f53b26aa8c",
    "ALE_AUTH_LISTEN_V4": "88bb5dad-76d7-4227-9c71-df0a3ed7be7e",
    "ALE_AUTH_LISTEN_V6": "7ac9de24-17dd-4814-b4bd-a9fbc95a321b",
    "ALE_AUTH_RECV_ACCEPT_V4": "e1cd9fe7-f4b5-4273-96c0-592e487b8650",
    "ALE_AUTH_RECV_ACCEPT_V6": "a3b42c97-9f04-4672-b87e-cee9c483257f",
    "ALE_AUTH_CONNECT_V4": "c38d57d1-05a7-4c33-904f-7fbceee60e82",
    "ALE_AUTH_CONNECT_V6": "4a72393b-319f-44bc-84c3-ba54dcb3b6b4",
    "ALE_FLOW_ESTABLISHED_V4": "af80470a-5596-4c13-9992-539e6fe57967",
    "ALE_FLOW_ESTABLISHED_V6": "7021d2b3-dfa4-406e-afeb-6afaf7e70efd",
    "ALE_RESOURCE_RELEASE_V4": "74365cce-ccb0-401a-bfc1-b89934ad7e15",
    "ALE_RESOURCE_RELEASE_V6": "f4e5ce80-edcc-4e13-8a2f-b91454bb057b",
    "ALE_ENDPOINT_CLOSURE_V4": "b4766427-e2a2-467a-bd7e-dbcd1bd85a09",
    "ALE_ENDPOINT_CLOSURE_V6": "bb536ccd-4755-4ba9-9ff7-f9edf8699c7b",
}

#: Built-in objects a scenario may name, by the names traces use.
BUILTIN_KEYS: Final[dict[str, str]] = {
    "FWPM_SUBLAYER_UNIVERSAL": "eebecc03-ced4-4380-819a-2734397b2b74",
}

#: FWP_ACTION_TYPE values: scenario action -> (trace name, value).
ACTIONS: Final[dict[str, tuple[str, int]]] = {
    "block": ("BLOCK", 0x1001),
    "permit": ("PERMIT", 0x1002),
    "callout_terminating": ("CALLOUT_TERMINATING", 0x5003),
    "callout_inspection": ("CALLOUT_INSPECTION", 0x6004),
    "callout_unknown": ("CALLOUT_UNKNOWN", 0x4005),
}

#: Objects the harness adds are keyed by a stable GUID made from their name.
KEY_NAMESPACE: Final = uuid.UUID("5b1f0c3e-2a4d-5e6f-8a9b-0c1d2e3f4a5b")


def braced(text: str) -> str:
    return "{" + text.strip("{}").upper() + "}"


def layer_guid(name: str) -> str:
    bare = name.removeprefix("FWPM_LAYER_").removeprefix("FWPS_LAYER_")
    if bare in LAYERS:
        return braced(LAYERS[bare])
    return braced(str(uuid.uuid5(KEY_NAMESPACE, "layer:" + bare)))


def object_guid(name: str) -> str:
    """The GUID of an object key: itself when it is a GUID, a built-in's, or a stable hash."""
    try:
        return braced(str(uuid.UUID(name.strip("{}"))))
    except ValueError:
        pass
    if name in BUILTIN_KEYS:
        return braced(BUILTIN_KEYS[name])
    return braced(str(uuid.uuid5(KEY_NAMESPACE, name)))
