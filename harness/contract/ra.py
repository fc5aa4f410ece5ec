"""Rule family RA: ALE reauthorization.

RA001 (engine) is judged with this convention, which the engine model follows:

- A flow *already authorized at layer L* (L one of ALE_AUTH_CONNECT_V4/V6,
  ALE_AUTH_RECV_ACCEPT_V4/V6) is an endpoint that had an initial
  (``reauth`` false) classify at L, whatever its verdict.
- Its *next packet* is the next classify at a packet layer (INBOUND_TRANSPORT,
  OUTBOUND_TRANSPORT, DATAGRAM_DATA, STREAM, INBOUND_IPPACKET,
  OUTBOUND_IPPACKET; V4 or V6, either direction) that names the endpoint in
  ``endpoint`` or, when it carries only ``flow``, names a flow seen together
  with that endpoint in an earlier classify (ALE_FLOW_ESTABLISHED carries
  both). STREAM_PACKET and the ``_DISCARD`` layers are not in the list.
- After a ``policy_change`` at L, each such endpoint whose closure has not
  completed owes a classify at L (the same V4/V6 layer) with ``reauth`` true
  for it, after the change and before its next packet. A next packet that
  finds the debt unpaid is a violation, reported with the latest unpaid
  ``policy_change`` at L and that packet's classify; the debt is then void,
  so one change is reported at most once per endpoint. An endpoint whose
  closure completes (the ``classify_done`` of its ALE_ENDPOINT_CLOSURE
  classify, or the ``complete_classify`` of a closure pended with
  ``pend_classify``) with no packet in between owes nothing. Its
  ALE_RESOURCE_RELEASE, which comes after the closure, ends it as well, for
  traces of callouts that are not registered at the closure layer.

Any non-reauthorization classify at L for the endpoint (the reclassification
of a reinjected clone after a RECV_ACCEPT completion, a new UDP peer) is an
authorization under the current policy and settles the endpoint's debt at L.
This is per endpoint, not per remote peer: a UDP socket that authorizes a new
peer after a change is not held to reauthorize its older peers (a missed
report, never a false one).

Debts are counted lazily: each layer has an epoch that a ``policy_change``
bumps, and each endpoint remembers the epoch at which it was last
(re)authorized at L, so a policy change costs O(1) however many endpoints
are open, and a packet compares one or two integers.

RA002 (driver) is judged at the ``classify_done`` of each classify with
``reauth`` true: no ``absorb``, and an action of PERMIT, BLOCK or CONTINUE.
A callout called without the right to write the action (``rights`` false on
entry) may by PC013 leave the action as it found it, so only its absorb is
judged. Pends in reauthorizations are PC004/PC007's concern.
"""

from __future__ import annotations

from harness.contract.base import Monitor, Sink, handle
from harness.trace.events import Event
from harness.trace.status import succeeded

_V = ("V4", "V6")
AUTH_LAYERS = frozenset(
    f"{family}_{v}" for family in ("ALE_AUTH_CONNECT", "ALE_AUTH_RECV_ACCEPT") for v in _V
)
PACKET_LAYERS = frozenset(
    f"{family}_{v}"
    for family in (
        "INBOUND_TRANSPORT", "OUTBOUND_TRANSPORT", "DATAGRAM_DATA", "STREAM",
        "INBOUND_IPPACKET", "OUTBOUND_IPPACKET",
    )
    for v in _V
)
CLOSURE_LAYERS = frozenset(f"ALE_ENDPOINT_CLOSURE_{v}" for v in _V)
RELEASE_LAYERS = frozenset(f"ALE_RESOURCE_RELEASE_{v}" for v in _V)
FINAL_ACTIONS = frozenset({"PERMIT", "BLOCK", "CONTINUE"})


class _Endpoint:
    """An endpoint authorized at an ALE auth layer, until its closure completes."""

    __slots__ = ("auth", "flows")

    def __init__(self) -> None:
        self.auth: dict[str, int] = {}  # layer -> epoch of its last (re)authorization
        self.flows: list[object] = []


class ReauthorizationMonitor(Monitor):
    """Reauthorization after policy changes (RA001) and its decision (RA002).

    One monitor for both rules, so that each classify costs one call.
    State: the open endpoints authorized at an auth layer, the flows seen
    with them, the closure classifies in progress and the pended closures,
    per auth layer an epoch and the seq of its latest policy_change; and the
    reauthorization classifies in progress (id -> classify event).
    """

    RULES = ("RA001", "RA002")

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self._endpoints: dict[object, _Endpoint] = {}
        self._flow_endpoint: dict[object, object] = {}
        self._epoch: dict[str, int] = dict.fromkeys(AUTH_LAYERS, 0)
        self._change: dict[str, int] = {}
        self._closing: dict[object, object] = {}  # closure classify id -> endpoint
        self._closure_pended: dict[object, object] = {}  # classify handle -> endpoint
        self._pended_ids: set[object] = set()
        self._reauths: dict[object, Event] = {}
        self._seen_reauth = False

    def on_policy_change(self, ev: Event) -> None:
        layer = ev.get("layer")
        if layer in AUTH_LAYERS:
            self.touch("RA001")
            self._epoch[layer] += 1
            self._change[layer] = ev["seq"]

    def on_classify(self, ev: Event) -> None:
        layer = ev.get("layer")
        endpoint = ev.get("endpoint")
        flow = ev.get("flow")
        reauth = ev.get("reauth") is True
        if reauth:
            cid = ev.get("id")
            if cid is not None:
                self._seen_reauth = True
                self._reauths[cid] = ev
        if layer in PACKET_LAYERS:
            if endpoint is None:
                endpoint = self._flow_endpoint.get(flow)
            record = self._endpoints.get(endpoint)
            if record is None:
                return
            if flow is not None and flow not in self._flow_endpoint:
                self._flow_endpoint[flow] = endpoint
                record.flows.append(flow)
            if self._change:
                self._packet(ev, layer, endpoint, record)
            return
        if endpoint is None:
            return
        if layer in AUTH_LAYERS:
            record = self._endpoints.get(endpoint)
            if reauth:
                if record is not None and layer in record.auth:
                    record.auth[layer] = self._epoch[layer]
                return
            if record is None:
                record = self._endpoints[endpoint] = _Endpoint()
            # any new authorization at L (a reinjected clone's reclassification,
            # a new UDP peer) is made under the current policy: no debt before it
            record.auth[layer] = self._epoch[layer]
        elif layer in CLOSURE_LAYERS and endpoint in self._endpoints:
            self._closing[ev.get("id")] = endpoint
        elif layer in RELEASE_LAYERS:
            self._closed(endpoint)  # released, so surely closed (and its handle free)
            return
        if flow is not None and flow not in self._flow_endpoint:
            record = self._endpoints.get(endpoint)
            if record is not None:
                self._flow_endpoint[flow] = endpoint
                record.flows.append(flow)

    def _packet(self, ev: Event, layer: str, endpoint: object, record: _Endpoint) -> None:
        """The next packet of ``endpoint``: every policy change since its last
        (re)authorization at an auth layer must have been answered there."""
        epoch = self._epoch
        for auth_layer, seen in record.auth.items():
            if epoch[auth_layer] > seen:
                self.report(
                    "RA001",
                    f"endpoint {handle(endpoint)}: packet at {layer} after a policy "
                    f"change at {auth_layer} with no reauthorization there before it",
                    self._change[auth_layer], ev["seq"],
                )
                record.auth[auth_layer] = epoch[auth_layer]

    def on_pend_classify(self, ev: Event) -> None:
        cid = ev.get("id")
        if cid in self._closing and ev.get("handle") is not None:
            status = ev.get("status")
            if status is not None and succeeded(status):
                self._closure_pended[ev["handle"]] = self._closing[cid]
                self._pended_ids.add(cid)

    def on_classify_done(self, ev: Event) -> None:
        if self._reauths:
            start = self._reauths.pop(ev.get("id"), None)
            if start is not None:
                self._decision(start, ev)
        if not self._closing:
            return
        cid = ev.get("id")
        endpoint = self._closing.pop(cid, None)
        if endpoint is None:
            return
        if cid in self._pended_ids:
            self._pended_ids.discard(cid)
        else:
            self._closed(endpoint)

    def on_complete_classify(self, ev: Event) -> None:
        if self._closure_pended:
            endpoint = self._closure_pended.pop(ev.get("handle"), None)
            if endpoint is not None:
                self._closed(endpoint)

    def _closed(self, endpoint: object) -> None:
        record = self._endpoints.pop(endpoint, None)
        if record is None:
            return
        for flow in record.flows:
            if self._flow_endpoint.get(flow) == endpoint:
                del self._flow_endpoint[flow]

    def _decision(self, start: Event, done: Event) -> None:
        """RA002: a reauthorization is answered synchronously with a final action."""
        faults = []
        if done.get("absorb") is True:
            faults.append("absorbed")
        action = done.get("action")
        if action is not None and action not in FINAL_ACTIONS and start.get("rights") is not False:
            faults.append(f"returned action {action}")
        if faults:
            endpoint = start.get("endpoint")
            whose = "" if endpoint is None else f" for endpoint {handle(endpoint)}"
            self.report(
                "RA002",
                f"reauthorization classify {handle(start.get('id'))} at {start.get('layer')}"
                f"{whose} {' and '.join(faults)} instead of a final PERMIT, BLOCK or CONTINUE",
                start["seq"], done["seq"],
            )

    def finish(self) -> None:
        if self._seen_reauth:
            self.touch("RA002")


MONITORS: tuple[type[Monitor], ...] = (ReauthorizationMonitor,)
