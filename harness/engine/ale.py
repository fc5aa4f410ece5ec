"""ALE endpoint lifecycle in the engine model: the part of the stack every socket shares.

:class:`AleCore` holds the stack's state (endpoints, flows, the handle table)
and the steps each socket operation is made of: the classify wrapper that
also pays reauthorization debts (RA001), continuing an authorization once
the operations pended on it are completed (reauthorizing at ALE_AUTH_CONNECT,
not at ALE_AUTH_RECV_ACCEPT), policy changes, and closing an endpoint:
flowDeleteFn for its flow contexts, ALE_ENDPOINT_CLOSURE (maybe pended with
pend_classify), then ALE_RESOURCE_RELEASE. :class:`harness.engine.stack.Stack`
builds the socket calls and the packet path on it. The endpoint-lifetime
engine faults are implemented here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.engine.clock import Future, Scheduler
from harness.engine.endpoints import (
    CLOSED,
    CLOSING,
    OPEN,
    RELEASED,
    Endpoint,
    Flow,
    HandleTable,
    address,
)
from harness.engine.filters import FilterEngine
from harness.engine.kernel import Indication, Kernel

LOCAL_HOST = 1
_EPHEMERAL = 49152
_AUTH_FAMILIES = frozenset({"ALE_AUTH_CONNECT", "ALE_AUTH_RECV_ACCEPT"})
_PACKET_FAMILIES = frozenset({"INBOUND_TRANSPORT", "OUTBOUND_TRANSPORT", "STREAM"})


class AleCore:
    """Endpoints and their ALE lifecycle on one host; see the module docstring."""

    def __init__(
        self, sched: Scheduler, kernel: Kernel, filters: FilterEngine, faults: frozenset[str]
    ) -> None:
        self.sched = sched
        self.kernel = kernel
        self.filters = filters
        self.faults = faults
        self.handles = HandleTable()
        self.endpoints: dict[int, Endpoint] = {}  # live (not yet released) by id()
        self._next_flow = 0
        self._next_port = _EPHEMERAL
        self._futures: dict[int, Future] = {}  # id(endpoint) -> connect/accept result
        self._made = 0
        self.delivered_out = 0  # bytes that reached a peer
        self.delivered_in = 0   # bytes that reached an app

    # -- building blocks ------------------------------------------------------

    def _endpoint(
        self, kind: str, family: str, port: int | None, *, parent: Endpoint | None = None
    ) -> Endpoint:
        self._made += 1
        handle = self.handles.allocate()
        if "reuse_live_endpoint_handle" in self.faults and self._made % 3 == 0:
            # the EP005 fault: take the handle of the newest endpoint still open
            for other in reversed(list(self.endpoints.values())):
                if other.state == OPEN and other.assigned:
                    self.handles.release(handle)
                    handle = other.handle
                    break
        if port is None:
            self._next_port += 1
            port = self._next_port
        ep = Endpoint(
            handle, kind, family, address(family, LOCAL_HOST, port),  # type: ignore[arg-type]
            parent=parent.handle if parent is not None else None, assigned=parent is None,
        )
        self.endpoints[id(ep)] = ep
        return ep

    def _flow(self, ep: Endpoint, remote: str, direction: str) -> Flow:
        self._next_flow += 1
        flow = Flow(self._next_flow, ep, remote, direction)
        ep.flows[remote] = flow
        self.kernel.flows[flow.id] = flow
        return flow

    def _classify(
        self, layer: str, ep: Endpoint | None, direction: str, **kw: Any
    ) -> Indication:
        if ep is not None:
            family = layer[:-3]
            if family in _AUTH_FAMILIES:
                if not kw.get("reauth"):
                    ep.auth_layers.add(layer)
            elif ep.reauth_due and family in _PACKET_FAMILIES and (
                kw.get("show_endpoint", True) or kw.get("show_flow")
            ) and not self._reauthorize(ep, direction, kw):
                dropped = Indication(layer, ep, direction)
                dropped.action = "BLOCK"
                dropped.returned = True
                return dropped
        return self.filters.classify(Indication(layer, ep, direction, **kw))

    def _reauthorize(self, ep: Endpoint, direction: str, kw: dict[str, Any]) -> bool:
        """RA001: the endpoint's next packet after a policy change at an ALE auth layer
        is first reauthorized there. False when that blocks it (the packet is dropped,
        a TCP connection reset, a UDP remote deauthorized)."""
        layers = sorted(ep.reauth_due)
        ep.reauth_due.clear()
        flow = kw.get("flow")
        remote = kw.get("remote") or (flow.remote if flow is not None else None)
        permitted = True
        for layer in layers:
            ind = self.filters.classify(Indication(
                layer, ep, direction, remote=remote, packet=kw.get("packet"), reauth=True,
                can_pend=True,
            ))
            permitted = permitted and ind.action == "PERMIT" and not ind.absorbed
        if not permitted:
            if ep.proto == "tcp":
                self.sched.call_soon(lambda: self._fail(ep), "reset")
            elif remote is not None and remote in ep.flows:
                self._deauthorize(ep.flows[remote])
        return permitted

    def _resolve(self, ep: Endpoint, value: Endpoint | None) -> None:
        fut = self._futures.pop(id(ep), None)
        if fut is not None and not fut.done:
            fut.resolve(value)

    def _after_pend(
        self, ind: Indication, flow: Flow | None, done: Callable[[bool], None], *,
        reauthorize: bool,
    ) -> None:
        """Continue an ALE authorization, once any operation pended on it is completed.

        Completing a pend is followed by a reauthorization at the same layer
        (except at RECV_ACCEPT, where the reinjected clone decides instead).
        """
        if not ind.pended:
            done(ind.action == "PERMIT" and not ind.absorbed)
            return
        if flow is not None:
            flow.state = "authorizing"
        ep = ind.ep

        def completed() -> None:
            if ep is None or not ep.live:
                return
            if not reauthorize:
                if "reauth_after_recv_accept_completion" in self.faults:
                    self._classify(ind.layer, ep, ind.dir, remote=ind.remote, reauth=True,
                                   can_pend=True)
                return
            if ind.layer.startswith("ALE_AUTH_CONNECT") and (
                "no_reauth_after_connect_completion" in self.faults
            ):
                self.sched.call_soon(lambda: done(True))
                return
            # the completion handle is there on a reauthorization too: a pend is
            # attempted and refused (STATUS_FWP_CANNOT_PEND, the FwpsPendOperation0 page)
            again = self._classify(ind.layer, ep, ind.dir, remote=ind.remote, reauth=True,
                                   can_pend=True)
            ok = again.action == "PERMIT" and not again.absorbed
            self.sched.call_soon(lambda: done(ok) if ep.live else None)

        if ind.open_ops == 0:
            completed()
        else:
            ind.on_ops_done = completed

    def _after_classify_pend(self, ind: Indication, cont: Callable[[], None]) -> None:
        """Run ``cont`` now, or when a classification pended on ``ind`` is completed."""
        if ind.open_classifies > 0:
            ind.on_classify_done = cont
        else:
            cont()

    def _assign(self, ep: Endpoint, done: Callable[[bool], None]) -> None:
        ind = self._classify(
            f"ALE_RESOURCE_ASSIGNMENT_{ep.family}", ep, "out", can_pend=True
        )
        self._after_pend(ind, None, done, reauthorize=True)

    def _authorize(self, flow: Flow, layer: str) -> None:
        flow.state = "authorized"
        flow.auth_layer = layer

    def _establish(self, flow: Flow) -> bool:
        ep = flow.ep
        ind = self._classify(
            f"ALE_FLOW_ESTABLISHED_{ep.family}", ep, flow.dir, flow=flow, remote=flow.remote,
            show_flow=True,
        )
        if ind.action != "PERMIT":
            return False
        flow.state = "established"
        return True

    def _fail(self, ep: Endpoint) -> None:
        self._resolve(ep, None)
        self.close(ep)

    def _deauthorize(self, flow: Flow) -> None:
        """A UDP remote lost its authorization: its flow ends, a new one starts next time."""
        ep = flow.ep
        if ep.flows.get(flow.remote) is flow:
            del ep.flows[flow.remote]
        self.kernel.flow_ended(flow)

    # -- policy changes ----------------------------------------------------------

    def policy_changed(self, layers: set[str]) -> None:
        """RA001: every endpoint classified at a changed ALE auth layer (whatever the
        verdict) owes a reauthorization there before its next packet.

        At AUTH_CONNECT that reauthorization waits for the next packet, as in
        Windows. At RECV_ACCEPT the model pays it at once: a RECV_ACCEPT pend
        completed after the change must not be followed by a reauthorization
        there (PC008), and a later packet could only be reauthorized after it.
        """
        if "no_reauth_after_policy_change" in self.faults:
            return
        for ep in list(self.endpoints.values()):
            if not ep.live or not ep.auth_layers:
                continue
            ep.reauth_due.update(ep.auth_layers & layers)
            eager = sorted(x for x in ep.reauth_due if x.startswith("ALE_AUTH_RECV_ACCEPT"))
            for layer in eager:
                ep.reauth_due.discard(layer)
                self._reauthorize_now(ep, layer)

    def _reauthorize_now(self, ep: Endpoint, layer: str) -> None:
        flows = [f for f in ep.flows.values() if f.auth_layer == layer] or list(ep.flows.values())
        remote = flows[0].remote if flows else None
        direction = flows[0].dir if flows else "in"
        again = self._classify(layer, ep, direction, remote=remote, reauth=True, can_pend=True)
        if again.action == "PERMIT" and not again.absorbed:
            return
        if ep.proto == "tcp":
            self.sched.call_soon(lambda: self._fail(ep), "reset")
        else:
            for flow in flows:
                self._deauthorize(flow)

    # -- closing -------------------------------------------------------------------

    def close(self, ep: Endpoint) -> Future:
        """closesocket(): resolves once the endpoint is closed and its resources released."""
        if ep.close_future is not None:
            return ep.close_future
        fut = ep.close_future = Future()
        ep.state = CLOSING
        for timer in ep.timers:
            timer.cancel()
        ep.timers.clear()
        self._resolve(ep, None)
        remotes = len(ep.flows)
        for flow in list(ep.flows.values()):
            self.kernel.flow_ended(flow)
        if not ep.needs_closure or self._closure_skipped(ep):
            self._closed(ep)
            return fut
        ind = self._classify(
            f"ALE_ENDPOINT_CLOSURE_{ep.family}", ep, "in" if ep.parent is not None else "out",
            remote=ep.flow.remote if ep.kind == "conn" and ep.flow is not None else None,
        )
        extra = 0
        if "second_udp_closure" in self.faults and ep.kind == "udp":
            extra = max(0, remotes - 1)  # the fault: one closure per remote peer
        self._after_classify_pend(ind, lambda: self._closed(ep, extra))
        return fut

    def _closure_skipped(self, ep: Endpoint) -> bool:
        if ep.kind == "conn":
            return "tcp_closure_missing" in self.faults
        if ep.kind == "listener":
            return "listener_closure_missing" in self.faults
        return False

    def _closed(self, ep: Endpoint, extra_closures: int = 0) -> None:
        ep.state = CLOSED
        for _ in range(extra_closures):
            self._classify(f"ALE_ENDPOINT_CLOSURE_{ep.family}", ep, "out")
        if "classify_after_closure" in self.faults and ep.kind == "conn":
            late = self.kernel.new_packet("data", ep, "", "in", 1)
            self._classify(f"INBOUND_TRANSPORT_{ep.family}", ep, "in", packet=late)
            self.kernel.retire(late)
        for flow in ep.flows.values():
            flow.state = "ended"
        if ep.assigned:
            if "no_resource_release" in self.faults:
                self._finish(ep)
                return
            self._classify(f"ALE_RESOURCE_RELEASE_{ep.family}", ep, "out")
        self.handles.release(ep.handle)
        self._finish(ep)

    def _finish(self, ep: Endpoint) -> None:
        ep.state = RELEASED
        self.endpoints.pop(id(ep), None)
        if ep.close_future is not None and not ep.close_future.done:
            ep.close_future.resolve(None)

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ep in self.endpoints.values():
            counts[ep.state] = counts.get(ep.state, 0) + 1
        counts.setdefault(CLOSED, 0)
        return counts
