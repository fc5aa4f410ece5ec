"""A scenario's callout settings as the probe's ``PROBE_CONFIG`` (drivers/probe/probe_ioctl.h).

The same bytes go to the driver on every target: on the engine model the host
runtime hands them to the driver's IRP_MJ_DEVICE_CONTROL dispatch, in a
Windows guest the step agent sends them with DeviceIoControl (its plan carries
the :func:`fields`, ``harness.agent.plan``). Only the standard library is
imported here, so the agent side can use this module without the engine.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.callouts.settings import CalloutSettings
    from harness.scenario.model import CalloutConfig

IOCTL_PROBE_CONFIGURE = (0x12 << 16) | (0x2 << 14) | (0x801 << 2) | 0  # 0x0012A004
VERSION = 1
MAX_BLOCKED = 64
MAX_EDIT_PORTS = 64
PEND_BITS = {"connect": 0x1, "recv_accept": 0x2, "closure": 0x4}
DECISIONS = {"permit": 0, "block": 1}
STREAM_MODES = {"inline": 0, "out_of_band": 1}
FLAG_ENDPOINT_CONTEXTS, FLAG_FLOW_CONTEXTS, FLAG_PEND_ON_REAUTH, FLAG_ADD_POLICY = (
    0x1, 0x2, 0x4, 0x8)
TRANSPORT_DELAY_US = 20_000
STREAM_DELAY_US = 10_000
_HEAD = struct.Struct("<11I")
_REMOTE = struct.Struct("<BBH16s")
SIZE = _HEAD.size + MAX_BLOCKED * _REMOTE.size + MAX_EDIT_PORTS * 2  # 1452


def parse_remote(text: str) -> tuple[int, bytes, int]:
    """(family, address bytes, port) of ``10.0.1.2:443`` or ``[fd00::1]:443``."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UsageError(f"remote {text!r} has no port")
    host = host.strip("[]")
    try:
        addr = ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError as exc:
        raise UsageError(f"remote {text!r} is not ADDRESS:PORT") from exc
    if not 0 <= port <= 0xFFFF:
        raise UsageError(f"remote {text!r}: port out of range")
    return (4 if addr.version == 4 else 6), addr.packed.ljust(16, b"\0"), port


def fields(
    knobs: CalloutConfig, *, blocked: Iterable[str] = (), edit_ports: Iterable[int] = (),
    add_policy: bool = False,
) -> dict[str, Any]:
    """The PROBE_CONFIG fields, by their names in probe_ioctl.h, for a scenario's ``[callout]``
    knobs: what the host runtime packs (:func:`pack`) and what the step agent's plan carries.

    ``blocked`` are the remotes (``ADDRESS:PORT``) the probe blocks, ``edit_ports`` the ports
    whose stream data it edits; both sorted and bounded as the header bounds them.
    """
    blocked_list = sorted(blocked)
    ports = sorted(edit_ports)
    if len(blocked_list) > MAX_BLOCKED:
        raise UsageError(f"the probe takes at most {MAX_BLOCKED} blocked remotes, "
                         f"the scenario blocks {len(blocked_list)}")
    if len(ports) > MAX_EDIT_PORTS:
        raise UsageError(f"the probe edits at most {MAX_EDIT_PORTS} ports, got {len(ports)}")
    pend = 0
    for point in knobs.pend:
        pend |= PEND_BITS[point]
    flags = (FLAG_ENDPOINT_CONTEXTS if knobs.endpoint_contexts else 0) | (
        FLAG_FLOW_CONTEXTS if knobs.flow_contexts else 0) | (
        FLAG_PEND_ON_REAUTH if knobs.pend_on_reauth else 0) | (
        FLAG_ADD_POLICY if add_policy else 0)
    delay_us = round(knobs.delay_ms * 1000)
    if not 0 <= delay_us <= 0xFFFFFFFF:
        raise UsageError(f"delay_ms {knobs.delay_ms} does not fit the probe's configuration")
    return {
        "pendMask": pend, "delayUs": delay_us, "decision": DECISIONS.get(knobs.decision, 0),
        "streamMode": STREAM_MODES.get(knobs.stream, 0), "flags": flags,
        "blocked": blocked_list, "editPorts": ports,
    }


def pack(settings: CalloutSettings, *, add_policy: bool = False) -> bytes:
    """The PROBE_CONFIG bytes for ``settings`` (bounded as the header bounds them)."""
    f = fields(settings.knobs, blocked=settings.blocked_remotes, edit_ports=settings.edit_ports,
               add_policy=add_policy)
    blocked, ports = f["blocked"], f["editPorts"]
    head = _HEAD.pack(
        SIZE, VERSION, f["pendMask"], f["delayUs"], f["decision"], f["streamMode"], f["flags"],
        TRANSPORT_DELAY_US, STREAM_DELAY_US, len(blocked), len(ports),
    )
    remotes = b"".join(_REMOTE.pack(fam, 0, p, a) for fam, a, p in map(parse_remote, blocked))
    remotes = remotes.ljust(MAX_BLOCKED * _REMOTE.size, b"\0")
    port_bytes = struct.pack(f"<{MAX_EDIT_PORTS}H", *(ports + [0] * (MAX_EDIT_PORTS - len(ports))))
    return head + remotes + port_bytes
