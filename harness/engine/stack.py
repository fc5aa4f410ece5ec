"""The TCP/IP stack of the engine model: sockets, the layers they cross, and when.

One host ("10.0.0.1" / "fd00::1") with applications on it; remote peers are
virtual and only ever answer. What each socket operation indicates, in order:

- bind: ALE_RESOURCE_ASSIGNMENT (a new endpoint handle).
- TCP connect: ALE_CONNECT_REDIRECT, ALE_AUTH_CONNECT (pendable; completing
  the pend triggers a reauthorization there), the SYN at OUTBOUND_TRANSPORT,
  then ALE_FLOW_ESTABLISHED. Data: STREAM, then the transport layer.
- TCP listen: ALE_AUTH_LISTEN. A peer's SYN: INBOUND_TRANSPORT with
  ``ale_required``, then ALE_AUTH_RECV_ACCEPT for a new endpoint whose
  ``parent`` is the listener. A pended RECV_ACCEPT is not reauthorized; the
  clone the callout reinjects is classified again (``injection`` self).
- UDP: ALE_AUTH_CONNECT per new remote sent to, ALE_AUTH_RECV_ACCEPT per new
  remote heard from. Datagrams sent while the remote was pended are flushed
  and the application retransmits them after the completion (the FwpsPendOperation0 page).
- close: flowDeleteFn for each flow context, ALE_ENDPOINT_CLOSURE (once per
  endpoint; for TCP only connections and listeners), maybe pended with
  pend_classify, then ALE_RESOURCE_RELEASE when the endpoint was assigned.
- a committed policy change at AUTH_CONNECT/RECV_ACCEPT: every endpoint
  classified there is reauthorized there (``reauth`` true) before its next
  packet, in either direction (RA001); see ``ale`` for the details.

Everything is callbacks on the scheduler; apps get :class:`Future` results.
The network-side engine faults are implemented here, in ``ale`` and in the kernel.
"""

from __future__ import annotations

from harness.engine.ale import AleCore
from harness.engine.clock import Future, Scheduler
from harness.engine.endpoints import OPEN, Endpoint, Flow, Packet
from harness.engine.filters import FilterEngine
from harness.engine.kernel import Kernel, Reinjector

CONNECT_TIMEOUT_S = 20.0   # an app gives up on a connect (or a pended accept) after this
UDP_AUTH_TIMEOUT_S = 20.0  # a peer's datagrams wait this long for a pended RECV_ACCEPT


class Stack(AleCore, Reinjector):
    """Sockets on one host; see the module docstring."""

    def __init__(
        self, sched: Scheduler, kernel: Kernel, filters: FilterEngine, faults: frozenset[str]
    ) -> None:
        super().__init__(sched, kernel, filters, faults)
        kernel.reinjector = self

    # -- TCP -------------------------------------------------------------------

    def tcp_connect(self, family: str, remote: str, local_port: int | None = None) -> Future:
        """connect(): resolves with the endpoint once established, or None."""
        fut = Future()
        ep = self._endpoint("conn", family, local_port)
        self._futures[id(ep)] = fut

        def assigned(ok: bool) -> None:
            if not ok:
                self._fail(ep)
                return
            flow = self._flow(ep, remote, "out")
            ep.seen_at_auth = True
            layer = f"ALE_AUTH_CONNECT_{family}"
            redirect = self._classify(f"ALE_CONNECT_REDIRECT_{family}", ep, "out", remote=remote)

            def authorize() -> None:
                if not ep.live:
                    return
                ind = self._classify(layer, ep, "out", remote=remote, can_pend=True)
                self._after_pend(ind, flow, lambda ok: connected(flow, ok), reauthorize=True)

            self._after_classify_pend(redirect, authorize)

        def connected(flow: Flow, ok: bool) -> None:
            if not ep.live:
                return
            if not ok:
                flow.state = "blocked"
                self._fail(ep)
                return
            self._authorize(flow, f"ALE_AUTH_CONNECT_{family}")
            syn = self.kernel.new_packet("syn", ep, remote, "out", 0, flow)
            self._out_transport(syn, "none")

        ep.timers.append(self.sched.call_later(CONNECT_TIMEOUT_S, lambda: self._give_up(ep)))
        self._assign(ep, assigned)
        return fut

    def _give_up(self, ep: Endpoint) -> None:
        flow = ep.flow
        if ep.state == OPEN and (flow is None or flow.state != "established"):
            self._fail(ep)

    def _tcp_established(self, flow: Flow) -> None:
        ep = flow.ep
        if not ep.live or flow.state == "established":
            return
        if not self._establish(flow):
            self._fail(ep)
            return
        for timer in ep.timers:
            timer.cancel()
        ep.timers.clear()
        self._resolve(ep, ep)
        if flow.dir == "in":
            listener = self._listener_of(ep)
            if listener is not None and listener.on_accept is not None:
                listener.on_accept(ep)

    def _listener_of(self, ep: Endpoint) -> Endpoint | None:
        for other in self.endpoints.values():
            if other.listener and other.handle == ep.parent and other.live:
                return other
        return None

    def tcp_listen(self, family: str, port: int) -> Future:
        """listen(): resolves with the listening endpoint, or None when not authorized."""
        fut = Future()
        ep = self._endpoint("listener", family, port)
        self._futures[id(ep)] = fut

        def assigned(ok: bool) -> None:
            if not ok:
                self._fail(ep)
                return
            ep.listener = True
            ind = self._classify(f"ALE_AUTH_LISTEN_{family}", ep, "in", can_pend=True)
            self._after_pend(ind, None, listening, reauthorize=True)

        def listening(ok: bool) -> None:
            if not ok:
                self._fail(ep)
            else:
                self._resolve(ep, ep)

        self._assign(ep, assigned)
        return fut

    def peer_connect(self, listener: Endpoint, remote: str) -> Future:
        """A remote peer connects to ``listener``: resolves with the accepted endpoint or None."""
        fut = Future()
        if not listener.live or listener.state != OPEN:
            fut.resolve(None)
            return fut
        syn = self.kernel.new_packet("syn", listener, remote, "in", 0)
        self._futures[id(syn)] = fut  # moved to the child endpoint at RECV_ACCEPT
        self._in_transport(syn, "none")
        return fut

    # -- UDP -------------------------------------------------------------------

    def udp_open(self, family: str, local_port: int | None = None) -> Future:
        """socket()+bind() for UDP: resolves with the endpoint, or None."""
        fut = Future()
        ep = self._endpoint("udp", family, local_port)
        self._futures[id(ep)] = fut
        self._assign(ep, lambda ok: self._resolve(ep, ep) if ok else self._fail(ep))
        return fut

    def send(self, ep: Endpoint, size: int, remote: str | None = None) -> bool:
        """The app sends ``size`` bytes (to ``remote`` for UDP). False when it cannot."""
        if ep.state != OPEN:
            return False
        if ep.proto == "udp":
            if remote is None:
                raise ValueError("a UDP send needs a remote")
            self._udp_send(ep, remote, size)
            return True
        flow = ep.flow
        if flow is None or flow.state != "established":
            return False
        flow.out_seq += 1
        seg = self.kernel.new_packet("stream", ep, flow.remote, "out", size, flow, flow.out_seq)
        self._stream(seg, "none")
        return True

    def peer_send(self, ep: Endpoint, size: int, remote: str | None = None) -> bool:
        """A remote peer sends ``size`` bytes to ``ep`` (from ``remote`` for UDP)."""
        if ep.state != OPEN:
            return False
        if ep.proto == "udp":
            if remote is None:
                raise ValueError("a UDP peer send needs a remote")
            flow = ep.flows.get(remote)
            if flow is not None and flow.state == "authorizing":
                return False  # the peer waits for the pended authorization
            pkt = self.kernel.new_packet("dgram", ep, remote, "in", size, flow)
            self._in_transport(pkt, "none")
            return True
        flow = ep.flow
        if flow is None or flow.state != "established":
            return False
        pkt = self.kernel.new_packet("data", ep, flow.remote, "in", size, flow)
        self._in_transport(pkt, "none")
        return True

    def _udp_send(self, ep: Endpoint, remote: str, size: int) -> None:
        flow = ep.flows.get(remote)
        if flow is None:
            flow = self._flow(ep, remote, "out")
        if flow.authorized:
            pkt = self.kernel.new_packet("dgram", ep, remote, "out", size, flow)
            self._out_transport(pkt, "none")
            return
        flow.pending_sends.append(size)
        if flow.state == "authorizing":
            return
        pkt = self.kernel.new_packet("dgram", ep, remote, "out", size, flow)
        layer = f"ALE_AUTH_CONNECT_{ep.family}"
        ind = self._classify(layer, ep, "out", remote=remote, packet=pkt, can_pend=True)
        was_pended = ind.pended

        def done(ok: bool) -> None:
            sizes, flow.pending_sends = flow.pending_sends, []
            if not ok or not ep.live or flow.state == "ended":
                flow.state = "new"
                self.kernel.retire(pkt)
                return
            self._authorize(flow, layer)
            if not self._establish(flow):
                self._deauthorize(flow)
                return
            if was_pended:
                # the pended datagram was flushed: the app retransmits (the FwpsPendOperation0 page)
                self.kernel.retire(pkt)
                for n in sizes:
                    self._out_transport(
                        self.kernel.new_packet("dgram", ep, remote, "out", n, flow), "none"
                    )
            elif not ind.absorbed:
                self._out_transport(pkt, "none")

        self._after_pend(ind, flow, done, reauthorize=True)

    # -- the packet path -------------------------------------------------------

    def _out_transport(self, pkt: Packet, injection: str) -> None:
        ep = pkt.ep
        if ep is None or not ep.live:
            return
        flow = pkt.flow
        ind = self._classify(
            f"OUTBOUND_TRANSPORT_{ep.family}", ep, "out", flow=flow, remote=pkt.remote,
            packet=pkt, injection=injection,
            show_flow=flow is not None and flow.state == "established",
        )
        if ind.absorbed:
            return  # the callout holds it; its reinjected clone comes back here
        self.kernel.retire(pkt)
        if ind.action != "PERMIT":
            if pkt.kind == "syn":
                self._fail(ep)
            return
        if pkt.kind == "syn":
            if flow is not None:
                self._tcp_established(flow)
        else:
            self.delivered_out += pkt.size

    def _in_transport(self, pkt: Packet, injection: str) -> None:
        ep = pkt.ep
        flow = pkt.flow
        if pkt.kind == "syn":
            ale_required = True
        elif pkt.kind == "dgram":
            flow = ep.flows.get(pkt.remote) if ep is not None else None
            pkt.flow = flow
            ale_required = flow is None or not flow.authorized
        else:
            ale_required = False
        if ep is None or not ep.live:
            return
        family = ep.family
        ind = self._classify(
            f"INBOUND_TRANSPORT_{family}", ep, "in", flow=flow, remote=pkt.remote, packet=pkt,
            ale_required=ale_required, injection=injection, show_endpoint=not ale_required,
            show_flow=flow is not None and flow.state == "established",
        )
        if ind.absorbed:
            return
        if ind.action != "PERMIT":
            self.kernel.retire(pkt)
            self._resolve_syn(pkt, None)
            return
        if ale_required:
            if pkt.kind == "syn":
                self._tcp_recv_accept(pkt, injection)
            else:
                self._udp_recv_accept(pkt, injection)
            return
        self.kernel.retire(pkt)
        if pkt.kind == "data" and flow is not None:
            flow.in_seq += 1
            seg = self.kernel.new_packet("stream", ep, pkt.remote, "in", pkt.size, flow,
                                         flow.in_seq)
            self._stream(seg, "none")
        else:
            self.delivered_in += pkt.size
            if ep.on_data is not None:
                ep.on_data(pkt.remote, pkt.size)

    def _stream(self, seg: Packet, injection: str) -> None:
        ep = seg.ep
        flow = seg.flow
        if ep is None or flow is None or not ep.live:
            return
        ind = self._classify(
            f"STREAM_{ep.family}", ep, seg.dir, flow=flow, packet=seg, injection=injection,
            show_endpoint=False, show_flow=True,
        )
        if ind.absorbed:
            return  # out of band: the callout injects the data later, in order
        self.kernel.retire(seg)
        if ind.action != "PERMIT":
            self._fail(ep)
            return
        self._stream_through(seg)

    def _stream_through(self, seg: Packet) -> None:
        ep = seg.ep
        if ep is None:
            return
        if seg.dir == "out":
            data = self.kernel.new_packet("data", ep, seg.remote, "out", seg.size, seg.flow)
            self._out_transport(data, "none")
        else:
            self.delivered_in += seg.size
            if ep.on_data is not None:
                ep.on_data(seg.remote, seg.size)

    def _tcp_recv_accept(self, pkt: Packet, injection: str) -> None:
        owner = pkt.ep
        if owner is None:
            return
        if owner.listener:
            # first time: the connection gets its endpoint, the listener is its parent
            if owner.state != OPEN:
                self._resolve_syn(pkt, None)
                return
            child = self._endpoint("conn", owner.family, None, parent=owner)
            child.local = owner.local
            child.seen_at_auth = True
            fut = self._futures.pop(id(pkt), None)
            if fut is not None:
                self._futures[id(child)] = fut
            flow = self._flow(child, pkt.remote, "in")
            pkt.ep, pkt.flow = child, flow
            child.timers.append(
                self.sched.call_later(CONNECT_TIMEOUT_S, lambda: self._give_up(child))
            )
        else:
            child = owner
            if pkt.flow is None or not child.live or pkt.flow.state == "established":
                return
            flow = pkt.flow
        layer = f"ALE_AUTH_RECV_ACCEPT_{child.family}"
        ind = self._classify(
            layer, child, "in", remote=pkt.remote, packet=pkt, can_pend=True,
            injection=injection,
        )
        if ind.pended or ind.absorbed:
            # the callout's reinjected clone comes back through INBOUND_TRANSPORT
            self._after_pend(ind, flow, lambda ok: None, reauthorize=False)
            return
        self.kernel.retire(pkt)
        if ind.action != "PERMIT":
            self._fail(child)
            return
        self._authorize(flow, layer)
        self._tcp_established(flow)

    def _resolve_syn(self, pkt: Packet, value: Endpoint | None) -> None:
        fut = self._futures.pop(id(pkt), None)
        if fut is not None and not fut.done:
            fut.resolve(value)

    def _udp_recv_accept(self, pkt: Packet, injection: str) -> None:
        ep = pkt.ep
        if ep is None or ep.state != OPEN:
            return
        flow = ep.flows.get(pkt.remote)
        if flow is None:
            flow = self._flow(ep, pkt.remote, "in")
        elif flow.authorized:
            self.delivered_in += pkt.size
            return
        elif flow.state == "authorizing" and injection == "none":
            return
        pkt.flow = flow
        layer = f"ALE_AUTH_RECV_ACCEPT_{ep.family}"
        ind = self._classify(
            layer, ep, "in", remote=pkt.remote, packet=pkt, can_pend=True, injection=injection,
        )
        if ind.pended or ind.absorbed:
            if ind.pended:
                flow.state = "authorizing"
                ep.timers.append(self.sched.call_later(
                    UDP_AUTH_TIMEOUT_S, lambda: self._udp_auth_timeout(flow)))
            self._after_pend(ind, flow, lambda ok: None, reauthorize=False)
            return
        self.kernel.retire(pkt)
        if ind.action != "PERMIT":
            flow.state = "new"
            return
        self._authorize(flow, layer)
        if not self._establish(flow):
            self._deauthorize(flow)
            return
        self.delivered_in += pkt.size
        if ep.on_data is not None:
            ep.on_data(pkt.remote, pkt.size)

    def _udp_auth_timeout(self, flow: Flow) -> None:
        if flow.state == "authorizing":
            flow.state = "new"

    def reinject(self, kind: str, packet: Packet) -> None:
        """A callout's successful injection arrives (called by the kernel)."""
        if kind == "transport_send":
            self._out_transport(packet, "self")
        elif kind == "transport_recv":
            self._in_transport(packet, "self")
        elif kind == "stream" and packet.ep is not None and packet.ep.live:
            self._stream_through(packet)
