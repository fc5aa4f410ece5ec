"""The reference callout: an inspect-like driver that does everything right.

Modelled on Windows-driver-samples network/trans/inspect (with the stream
editing of stmedit): it

- pends ALE_AUTH_CONNECT and ALE_AUTH_RECV_ACCEPT and decides after a delay
  (a user-mode answer arriving later), recording each ``decision``;
- answers the reauthorization that follows a connect completion from that
  recorded decision, and any other reauthorization synchronously;
- clones the packet at RECV_ACCEPT and, after completing, reinjects it
  (permit) or frees it (block); permits its own reinjected packets;
- keeps one context per endpoint (``alloc`` bound to the endpoint), frees it
  at the endpoint's closure;
- inspects UDP datagrams out of band at the transport layers (clone, absorb,
  ``queue``, reinject later) but never a packet that still needs ALE
  classification; pends the closure (pend_classify) to drain what it queued;
- edits chosen TCP streams out of band: while any absorbed data of a flow is
  un-injected, every segment is cloned and absorbed, and injected in order;
- associates a flow context at FLOW_ESTABLISHED for the STREAM layer and
  removes it itself on some flows (flowDeleteFn frees it on the others);
- leaves everything alone when it lacks the write right.

Every step is a small method so that a mutant (``harness.callouts.mutants``)
is a short override that reproduces one real bug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

from harness.callouts.settings import CalloutSettings
from harness.engine.callout_api import CalloutApi, ClassifyIn, ClassifyOut
from harness.engine.objects import Filter
from harness.scenario.model import CalloutConfig

FAMILIES = (
    "ALE_RESOURCE_ASSIGNMENT", "ALE_RESOURCE_RELEASE", "ALE_AUTH_LISTEN", "ALE_AUTH_CONNECT",
    "ALE_AUTH_RECV_ACCEPT", "ALE_FLOW_ESTABLISHED", "ALE_ENDPOINT_CLOSURE",
    "INBOUND_TRANSPORT", "OUTBOUND_TRANSPORT", "STREAM",
)
ALL_LAYERS = tuple(f"{f}_{v}" for f in FAMILIES for v in ("V4", "V6"))

Policy = Callable[[ClassifyIn], str]
#: The layer families whose authorization a scenario's ``pend`` list names.
PEND_POINT_OF = {"ALE_AUTH_CONNECT": "connect", "ALE_AUTH_RECV_ACCEPT": "recv_accept"}


@dataclass
class Pended:
    """One pended ALE operation, as the driver remembers it."""

    ctx: int
    layer: str
    endpoint: int
    remote: str | None
    mem: int
    clone: int | None = None       # RECV_ACCEPT: the packet to reinject or free
    referenced: int | None = None  # AUTH_CONNECT: the datagram held by reference
    action: str | None = None


@dataclass
class Held:
    """A clone the driver holds for later injection."""

    packet: int
    kind: str
    endpoint: int | None
    flow: int | None = None


@dataclass
class StreamState:
    endpoint: int | None
    waiting: list[Held] = field(default_factory=list)  # absorbed, not yet injected
    in_flight: int = 0                                 # injected, not yet completed
    scheduled: bool = False
    segments: int = 0


class ReferenceCallout:
    """See the module docstring. Knobs:

    ``policy`` maps a classify to PERMIT/BLOCK (default: block the remote ports
    in ``block_ports``); ``decide_delay_s`` is how long a pended decision
    takes; ``edit_ports`` are remote ports whose streams are edited out of
    band; ``inspect_udp`` turns datagram inspection on.

    A scenario's ``[callout]`` settings arrive through :meth:`configure`
    (``knobs``): which operations it pends (an operation it does not pend is
    answered inline), whether it keeps endpoint and flow contexts, and
    whether it tries to pend reauthorizations. The defaults are the full
    behaviour above. The gates sit at the call sites, so a mutant that
    overrides a step keeps its bug whatever the scenario asks.
    """

    knobs: CalloutConfig = CalloutConfig()

    def __init__(
        self, name: str = "reference", *, policy: Policy | None = None,
        block_ports: Iterable[int] = (), decide_delay_s: float = 0.05,
        transport_delay_s: float = 0.02, stream_delay_s: float = 0.01,
        edit_ports: Iterable[int] = (8080,), inspect_udp: bool = True,
        layers: tuple[str, ...] = ALL_LAYERS,
    ) -> None:
        self.name = name
        self.layers = layers
        self.block_ports = frozenset(block_ports)
        self.policy = policy or self.port_policy
        self.decide_delay_s = decide_delay_s
        self.transport_delay_s = transport_delay_s
        self.stream_delay_s = stream_delay_s
        self.edit_ports = frozenset(edit_ports)
        self.inspect_udp = inspect_udp
        self.api: CalloutApi = cast(CalloutApi, _Unattached())
        self.endpoint_ctx: dict[int, int] = {}
        self.pended: dict[int, Pended] = {}
        self.verdicts: dict[tuple[int, str | None], str] = {}
        self.queued: dict[int, list[Held]] = {}
        self.in_flight: dict[int, int] = {}
        self.closing: dict[int, int] = {}  # endpoint -> pended closure's classify handle
        self.streams: dict[int, StreamState] = {}
        self.flow_ctx: dict[int, int] = {}
        self._handlers: dict[str, Callable[[ClassifyIn, ClassifyOut], None]] = {
            "ALE_RESOURCE_ASSIGNMENT": self.on_assignment,
            "ALE_RESOURCE_RELEASE": self.on_release,
            "ALE_AUTH_LISTEN": self.on_listen,
            "ALE_AUTH_CONNECT": self.on_connect,
            "ALE_AUTH_RECV_ACCEPT": self.on_recv_accept,
            "ALE_FLOW_ESTABLISHED": self.on_flow_established,
            "ALE_ENDPOINT_CLOSURE": self.on_closure,
            "INBOUND_TRANSPORT": self.on_transport,
            "OUTBOUND_TRANSPORT": self.on_transport,
            "STREAM": self.on_stream,
        }

    # -- the Callout protocol ------------------------------------------------

    def attach(self, api: CalloutApi) -> None:
        self.api = api

    def configure(self, settings: CalloutSettings) -> None:
        """The scenario's settings, before it starts (the probe's configuration IOCTL)."""
        self.knobs = settings.knobs
        self.policy = lambda ci: settings.decide(ci.remote)
        self.decide_delay_s = settings.knobs.delay_ms / 1000.0
        self.edit_ports = settings.edit_ports

    def unloaded(self) -> None:
        """DriverUnload after every callout unregistered: free what is left."""
        for endpoint in list(self.endpoint_ctx):
            self.free_endpoint_context(endpoint)

    def notify(self, type: str, filter: Filter) -> str:
        return "STATUS_SUCCESS"

    def flow_delete(self, layer: str, callout: str, flow: int, ctx: object) -> None:
        if self.flow_ctx.get(flow) == ctx:
            del self.flow_ctx[flow]
        if isinstance(ctx, int):
            self.api.free(ctx)

    def classify(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.injection in ("self", "prev_self"):
            self.on_self_injected(ci, out)
            return
        if ci.reauth:
            if self.knobs.pend_on_reauth:
                self.try_pend_reauth(ci)
            self.answer_reauth(ci, out)
            return
        family = ci.layer[:-3]
        point = PEND_POINT_OF.get(family)
        if point is not None and point not in self.knobs.pend:
            self.answer_inline(ci, out)
            return
        handler = self._handlers.get(family)
        if handler is not None:
            handler(ci, out)

    def answer_inline(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        """An authorization the scenario does not pend: decided in classifyFn."""
        self.endpoint_context(ci.endpoint)
        if ci.rights:
            self.give(out, self.decide(ci), True)

    def try_pend_reauth(self, ci: ClassifyIn) -> None:
        """A driver that tries to pend every authorization (``pend_on_reauth``).

        On a reauthorization the engine refuses (STATUS_FWP_CANNOT_PEND), and a
        correct driver then answers synchronously, without absorbing. Should a
        broken engine let it pend, the operation is completed at once.
        """
        if not (ci.can_pend and ci.rights):
            return
        result = self.api.pend_operation(ci)
        if result.ok and result.handle is not None:
            ctx = result.handle
            self.api.call_later(0.0, lambda: self.api.complete_operation(ctx))

    # -- decisions -------------------------------------------------------------

    def port_policy(self, ci: ClassifyIn) -> str:
        port = int(ci.remote.rpartition(":")[2]) if ci.remote else 0
        return "BLOCK" if port in self.block_ports else "PERMIT"

    def decide(self, ci: ClassifyIn) -> str:
        return self.policy(ci)

    def give(self, out: ClassifyOut, action: str, rights: bool) -> None:
        """Write a final action, as far as the write right allows (PC013)."""
        if action == "BLOCK":
            out.block(clear_right=rights)  # without the right, a block is a veto
        elif rights:
            out.permit()

    def on_self_injected(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.rights:
            out.permit()

    def answer_reauth(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        """A reauthorization is answered synchronously: never pended or absorbed."""
        assert ci.endpoint is not None or ci.remote is not None
        action = self.verdicts.get((ci.endpoint or 0, ci.remote))
        if action is None:
            action = self.decide(ci)
        self.give(out, action, ci.rights)

    # -- endpoints -------------------------------------------------------------

    def endpoint_context(self, endpoint: int | None) -> None:
        if not self.knobs.endpoint_contexts:
            return
        if endpoint is not None and endpoint not in self.endpoint_ctx:
            self.endpoint_ctx[endpoint] = self.api.alloc("EPcx", endpoint)

    def free_endpoint_context(self, endpoint: int) -> None:
        mem = self.endpoint_ctx.pop(endpoint, None)
        if mem is not None:
            self.api.free(mem)

    def on_assignment(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        self.endpoint_context(ci.endpoint)

    def on_release(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.endpoint is not None:
            self.free_endpoint_context(ci.endpoint)  # an endpoint that had no closure

    def on_listen(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        self.endpoint_context(ci.endpoint)
        self.give(out, self.decide(ci), ci.rights)

    # -- ALE connect and recv-accept: pend, decide later, complete ----------------

    def on_connect(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        self.endpoint_context(ci.endpoint)
        if not ci.rights:
            return
        if not ci.can_pend:
            self.give(out, self.decide(ci), True)
            return
        self.pend(ci, out, clone=False)

    def on_recv_accept(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        self.endpoint_context(ci.endpoint)
        if not ci.rights:
            return
        if not ci.can_pend or ci.packet is None:
            self.give(out, self.decide(ci), True)
            return
        self.pend(ci, out, clone=True)

    def pend(self, ci: ClassifyIn, out: ClassifyOut, *, clone: bool) -> None:
        """Pend the operation; absorb only when the pend succeeded (PC002, PC005)."""
        copy = None
        if clone and ci.packet is not None:
            made = self.api.clone(ci.packet)
            if not made.ok:
                self.give(out, self.decide(ci), True)
                return
            copy = made.handle
        result = self.api.pend_operation(ci)
        if not result.ok or result.handle is None:
            if copy is not None:
                self.api.free_clone(copy)
            self.give(out, self.decide(ci), True)
            return
        record = Pended(
            result.handle, ci.layer, ci.endpoint or 0, ci.remote,
            self.api.alloc("PEND", ci.endpoint), clone=copy,
        )
        if not clone and ci.packet is not None:
            self.api.reference(ci.packet)  # held until the decision (sample inspect)
            record.referenced = ci.packet
        self.pended[record.ctx] = record
        out.block(absorb=True, clear_right=True)
        verdict = self.decide(ci)
        self.api.call_later(self.decide_delay_s, lambda: self.complete(record.ctx, verdict))

    def complete(self, ctx: int, action: str) -> None:
        """The user-mode answer arrived: record it, complete, then deal with the packet."""
        record = self.pended.pop(ctx, None)
        if record is None:
            return  # already completed at the endpoint's closure
        record.action = action
        self.verdicts[(record.endpoint, record.remote)] = action
        self.api.decision(ctx, action)
        if record.referenced is not None:
            self.api.dereference(record.referenced)
        self.api.free(record.mem)
        self.complete_operation(record)
        if record.clone is not None:
            self.finish_recv_accept(record, action)

    def complete_operation(self, record: Pended) -> None:
        self.api.complete_operation(record.ctx)

    def finish_recv_accept(self, record: Pended, action: str) -> None:
        """PC009: reinject the clone to allow, free it to deny."""
        clone = record.clone
        assert clone is not None
        if action == "PERMIT":
            self.inject("transport_recv", clone, record.endpoint, None)
        else:
            self.api.free_clone(clone)

    # -- injection --------------------------------------------------------------

    def inject(self, kind: str, packet: int, endpoint: int | None, flow: int | None) -> str:
        if endpoint is not None:
            self.in_flight[endpoint] = self.in_flight.get(endpoint, 0) + 1
        status = self.api.inject(
            kind, packet, endpoint=endpoint, flow=flow,
            on_complete=lambda p, s: self.injected(p, endpoint),
        )
        if status != "STATUS_SUCCESS":
            self.injection_failed(packet, endpoint)
        return status

    def injected(self, packet: int, endpoint: int | None) -> None:
        """The injection completed: only now may the clone be freed (PI001)."""
        self.api.free_clone(packet)
        self.settle(endpoint)

    def injection_failed(self, packet: int, endpoint: int | None) -> None:
        self.api.free_clone(packet)  # no completion will come (PI003)
        self.settle(endpoint)

    def settle(self, endpoint: int | None) -> None:
        if endpoint is None:
            return
        left = self.in_flight.get(endpoint, 0) - 1
        if left > 0:
            self.in_flight[endpoint] = left
        else:
            self.in_flight.pop(endpoint, None)
        self.maybe_finish_closure(endpoint)

    # -- transport: datagram inspection --------------------------------------------

    def wants_queue(self, ci: ClassifyIn) -> bool:
        if ci.ale_required or not self.inspect_udp or ci.proto != "udp":
            return False
        return ci.packet is not None and ci.endpoint is not None

    def on_transport(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if not ci.rights:
            return
        # Queuing datagrams is what makes a closure worth pending: without
        # "closure" among the pend points, the driver handles packets inline.
        if "closure" not in self.knobs.pend or not self.wants_queue(ci):
            out.permit()
            return
        assert ci.packet is not None and ci.endpoint is not None
        made = self.api.clone(ci.packet)
        if not made.ok or made.handle is None:
            out.permit()
            return
        kind = "transport_recv" if ci.dir == "in" else "transport_send"
        held = Held(made.handle, kind, ci.endpoint)
        self.queued.setdefault(ci.endpoint, []).append(held)
        self.api.queue(held.packet, ci.endpoint)
        out.block(absorb=True, clear_right=True)
        self.api.call_later(self.transport_delay_s, lambda: self.release_held(held))

    def release_held(self, held: Held) -> None:
        assert held.endpoint is not None
        queue = self.queued.get(held.endpoint)
        if not queue or held not in queue:
            return  # drained at closure already
        queue.remove(held)
        if not queue:
            del self.queued[held.endpoint]
        self.inject(held.kind, held.packet, held.endpoint, None)

    # -- streams: out-of-band editing -------------------------------------------------

    def edits(self, ci: ClassifyIn) -> bool:
        return bool(ci.remote) and int(str(ci.remote).rpartition(":")[2]) in self.edit_ports

    def on_flow_established(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.proto != "tcp" or ci.flow is None:
            return
        self.streams[ci.flow] = StreamState(ci.endpoint, segments=0)
        if self.edits(ci):
            self.streams[ci.flow].segments = -1  # marks an edited flow
        if self.knobs.flow_contexts:
            self.associate_flow(ci)

    def associate_flow(self, ci: ClassifyIn) -> None:
        assert ci.flow is not None
        ctx = self.api.alloc("FLcx", ci.endpoint)
        status = self.api.flow_associate(ci.flow, f"STREAM_{ci.version}", ctx)
        if status == "STATUS_SUCCESS":
            self.flow_ctx[ci.flow] = ctx
        else:
            self.api.free(ctx)  # FC002: not attached, so still ours

    def on_stream(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.flow is None or ci.packet is None:
            return
        state = self.streams.get(ci.flow)
        if state is None:
            state = self.streams[ci.flow] = StreamState(None)
        if not ci.rights:
            return
        if state.segments >= 0:
            state.segments += 1
            if state.segments == 3 and ci.flow % 2 == 0 and ci.flow in self.flow_ctx:
                self.api.flow_remove(ci.flow, ci.layer)  # done with it; flowDeleteFn frees it
        if self.out_of_band(state):
            self.absorb_segment(ci, out, state)
        else:
            out.permit()

    def out_of_band(self, state: StreamState) -> bool:
        """ST001: once out of band, stay so while absorbed data is un-injected."""
        return state.segments < 0 or bool(state.waiting) or state.in_flight > 0

    def absorb_segment(self, ci: ClassifyIn, out: ClassifyOut, state: StreamState) -> None:
        assert ci.packet is not None and ci.flow is not None
        made = self.api.clone(ci.packet)
        if not made.ok or made.handle is None:
            out.permit()
            return
        state.waiting.append(Held(made.handle, "stream", state.endpoint, ci.flow))
        out.block(absorb=True, clear_right=True)
        if not state.scheduled:
            state.scheduled = True
            flow = ci.flow
            self.api.call_later(self.stream_delay_s, lambda: self.drain_stream(flow))

    def drain_stream(self, flow: int) -> None:
        """Inject what was absorbed, in the order it was indicated (ST002)."""
        state = self.streams.get(flow)
        if state is None:
            return
        state.scheduled = False
        waiting, state.waiting = self.stream_order(state.waiting), []
        def done(packet: int, _status: str) -> None:
            self.stream_injected(packet, state)

        for held in waiting:
            state.in_flight += 1
            status = self.api.inject("stream", held.packet, flow=flow, on_complete=done)
            if status != "STATUS_SUCCESS":
                self.api.free_clone(held.packet)
                state.in_flight -= 1
        if state.endpoint is not None:
            self.maybe_finish_closure(state.endpoint)

    def stream_order(self, waiting: list[Held]) -> list[Held]:
        return waiting

    def stream_injected(self, packet: int, state: StreamState) -> None:
        self.api.free_clone(packet)
        state.in_flight -= 1
        if state.endpoint is not None:
            self.maybe_finish_closure(state.endpoint)

    # -- closure: drain, free, complete -------------------------------------------

    def on_closure(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        endpoint = ci.endpoint
        if endpoint is None:
            return
        self.complete_leftovers(endpoint)
        if not self.busy(endpoint):
            self.free_endpoint_context(endpoint)
            self.forget(endpoint)
            return
        got = self.api.acquire_classify_handle(ci)
        if not got.ok or got.handle is None:
            self.free_endpoint_context(endpoint)
            return
        if self.api.pend_classify(got.handle, ci) != "STATUS_SUCCESS":
            self.api.release_classify_handle(got.handle)
            self.free_endpoint_context(endpoint)
            return
        self.closing[endpoint] = got.handle
        self.drain(endpoint)

    def complete_leftovers(self, endpoint: int) -> None:
        """EP009: nothing stays pended on an endpoint that is closing."""
        for ctx in [c for c, p in self.pended.items() if p.endpoint == endpoint]:
            self.complete(ctx, "BLOCK")

    def streams_of(self, endpoint: int) -> list[tuple[int, StreamState]]:
        return [(f, s) for f, s in self.streams.items() if s.endpoint == endpoint]

    def busy(self, endpoint: int) -> bool:
        if self.queued.get(endpoint) or self.in_flight.get(endpoint):
            return True
        return any(s.waiting or s.in_flight for _, s in self.streams_of(endpoint))

    def drain(self, endpoint: int) -> None:
        """Reinject every queued packet now, before the endpoint goes (ALE endpoint lifetime)."""
        for held in self.queued.pop(endpoint, []):
            self.inject(held.kind, held.packet, held.endpoint, None)
        for flow, state in self.streams_of(endpoint):
            if state.waiting:
                self.drain_stream(flow)
        self.maybe_finish_closure(endpoint)

    def maybe_finish_closure(self, endpoint: int) -> None:
        handle = self.closing.get(endpoint)
        if handle is None or self.busy(endpoint):
            return
        del self.closing[endpoint]
        self.free_endpoint_context(endpoint)
        self.forget(endpoint)
        self.complete_closure(handle)

    def complete_closure(self, handle: int) -> None:
        self.api.complete_classify(handle, "PERMIT")
        self.api.release_classify_handle(handle)

    def forget(self, endpoint: int) -> None:
        for flow, _ in self.streams_of(endpoint):
            del self.streams[flow]
        for key in [k for k in self.verdicts if k[0] == endpoint]:
            del self.verdicts[key]

    # -- unload ------------------------------------------------------------------------

    def outstanding(self) -> int:
        """Pended operations, held clones and pended closures: zero before unload (FC004)."""
        held = sum(len(q) for q in self.queued.values())
        streams = sum(len(s.waiting) + s.in_flight for s in self.streams.values())
        return len(self.pended) + held + streams + len(self.closing) + sum(
            self.in_flight.values())


class _Unattached:
    """Stands in for the API until the engine attaches the callout."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("the callout was used before the engine attached it")
