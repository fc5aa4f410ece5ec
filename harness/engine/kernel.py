"""The kernel side of the callout API: fwpsk calls, with their trace events.

:class:`Kernel` owns what the engine tracks on behalf of callouts: the
registered callout keys, pended operations (completion contexts), classify
handles and pended classifications, packets with their clones, references
and injections, flow contexts, and the driver's own bookkeeping calls
(``alloc``/``free``/``decision``/``queue``) that the checker follows. Each
callout gets a :class:`BoundApi` (its :class:`CalloutApi`). The stack drives
indications through the filter engine into :meth:`Kernel.invoke`, and learns
about completions through the callbacks it leaves on an :class:`Indication`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from harness.engine.callout_api import (
    PEND_CLASSIFY_LAYERS,
    PEND_OPERATION_LAYERS,
    STATUS_DEVICE_BUSY,
    STATUS_FWP_CANNOT_PEND,
    STATUS_FWP_INJECT_HANDLE_CLOSING,
    STATUS_INVALID_PARAMETER,
    STATUS_NOT_FOUND,
    STATUS_OBJECT_NAME_EXISTS,
    STATUS_SUCCESS,
    Callout,
    ClassifyIn,
    ClassifyOut,
    InjectDone,
    PendResult,
    callout_key,
)
from harness.engine.clock import Scheduler
from harness.engine.endpoints import Endpoint, Flow, Packet
from harness.errors import EngineError
from harness.trace.writer import TraceWriter

if TYPE_CHECKING:
    from harness.engine.bfe import Bfe, Session
    from harness.engine.objects import Filter


class Reinjector:
    """What the kernel needs from the stack: where an injected packet goes."""

    def reinject(self, kind: str, packet: Packet) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Indication:
    """One indication at one layer, shared by the callouts it is delivered to.

    The filter engine fills in the verdict (``action``, ``absorbed``); the
    kernel counts the operations pended (``open_ops``) and classifications
    pended (``open_classifies``) on it; the stack leaves ``on_ops_done`` and
    ``on_classify_done`` to be called when the last of those completes.
    """

    __slots__ = (
        "absorbed", "action", "ale_required", "can_pend", "dir", "ep", "flow", "injection",
        "layer", "local", "on_classify_done", "on_ops_done", "open_classifies", "open_ops",
        "packet", "pended", "pended_classify", "proto", "reauth", "remote", "returned",
        "show_endpoint", "show_flow",
    )

    def __init__(
        self, layer: str, ep: Endpoint | None, direction: str, *, proto: str = "tcp",
        flow: Flow | None = None, remote: str | None = None, packet: Packet | None = None,
        reauth: bool = False, can_pend: bool = False, ale_required: bool = False,
        injection: str = "none", show_endpoint: bool = True, show_flow: bool = False,
    ) -> None:
        self.layer = layer
        self.ep = ep
        self.proto = ep.proto if ep is not None else proto
        self.local = ep.local if ep is not None else None
        self.dir = direction
        self.flow = flow
        self.remote = remote
        self.packet = packet
        self.reauth = reauth
        self.can_pend = can_pend
        self.ale_required = ale_required
        self.injection = injection
        self.show_endpoint = show_endpoint and ep is not None
        self.show_flow = show_flow and flow is not None
        self.action = "PERMIT"
        self.absorbed = False
        self.returned = False
        self.pended = False
        self.open_ops = 0
        self.pended_classify = False
        self.open_classifies = 0
        self.on_ops_done: Callable[[], None] | None = None
        self.on_classify_done: Callable[[], None] | None = None

    def event_fields(self) -> dict[str, object]:
        """The classify event's fields after ``id``/``layer``/``callout``, ``rights`` apart."""
        f: dict[str, object] = {}
        ep = self.ep
        if self.show_endpoint and ep is not None:
            f["endpoint"] = ep.handle
            if ep.parent is not None:
                f["parent"] = ep.parent
        if self.show_flow and self.flow is not None:
            f["flow"] = self.flow.id
        f["proto"] = self.proto
        f["dir"] = self.dir
        if self.local is not None:
            f["local"] = self.local
        if self.remote is not None:
            f["remote"] = self.remote
        f["reauth"] = self.reauth
        f["can_pend"] = self.can_pend
        if self.layer.startswith("INBOUND_TRANSPORT"):
            f["ale_required"] = self.ale_required
        f["injection"] = self.injection
        if self.packet is not None:
            f["packet"] = self.packet.id
        return f


class _Op:
    __slots__ = ("ctx", "ind", "key")

    def __init__(self, ctx: int, ind: Indication, key: str) -> None:
        self.ctx = ctx
        self.ind = ind
        self.key = key


class Kernel:
    """The engine's half of every fwpsk call; see the module docstring."""

    def __init__(self, sched: Scheduler, writer: TraceWriter, faults: frozenset[str]) -> None:
        self.sched = sched
        self.writer = writer
        self.faults = faults
        self.reinjector: Reinjector | None = None
        # the engine's BFE, for the management calls a driver makes (set by the Engine)
        self.bfe: Bfe | None = None
        self.callouts: dict[str, Callout] = {}  # registered key -> callout
        self._apis: dict[str, BoundApi] = {}
        self._gone: set[str] = set()  # keys unregistered (for classify_after_unregister)
        self.flows: dict[int, Flow] = {}  # live flows by id, kept by the stack
        self.packets: dict[int, Packet] = {}
        self._refs: dict[int, int] = {}
        self._retired: set[int] = set()
        self._active: dict[int, Indication] = {}  # classify id -> indication, while it runs
        self.ops: dict[int, _Op] = {}
        self._handles: dict[int, Indication] = {}
        self._contexts_by_key: dict[str, int] = {}
        self._stream_fifo: dict[int, deque[tuple[str, Packet, InjectDone | None]]] = {}
        self._next_id = 0
        self._next_packet = 0
        self._next_obj = 0
        self._next_ctx = 0
        self._next_handle = 0

    # -- the management API from kernel mode ---------------------------------

    def open_kernel_session(self, dynamic: bool, txn_wait_ms: int) -> Session:
        """FwpmEngineOpen0 called by a driver: a kernel-mode session on the engine's BFE."""
        if self.bfe is None:
            raise EngineError("this kernel has no BFE attached; a driver cannot open a session")
        return self.bfe.open_session(dynamic=dynamic, txn_wait_ms=txn_wait_ms, kernel=True)

    # -- registration -------------------------------------------------------

    def api_for(self, callout: Callout) -> BoundApi:
        api = self._apis.get(callout.name)
        if api is None:
            api = self._apis[callout.name] = BoundApi(self, callout)
        return api

    def register(self, callout: Callout) -> None:
        """FwpsCalloutRegister for every layer the callout names."""
        callout.attach(self.api_for(callout))
        self.register_layers(callout, callout.layers)

    def register_layers(self, callout: Callout, layers: Iterable[str]) -> None:
        for layer in layers:
            key = callout_key(callout.name, layer)
            self.callouts[key] = callout
            self._gone.discard(key)
            self.writer.emit("callout_register", callout=key, status=STATUS_SUCCESS)

    def unregister(self, callout: Callout) -> str:
        """FwpsCalloutUnregisterByKey for every key; BUSY while flow contexts exist (FC003).

        Returns STATUS_SUCCESS when every key went, else STATUS_DEVICE_BUSY
        (the busy keys stay registered and keep classifying).
        """
        return self.unregister_layers(callout, callout.layers)

    def unregister_layers(self, callout: Callout, layers: Iterable[str]) -> str:
        overall = STATUS_SUCCESS
        for layer in layers:
            key = callout_key(callout.name, layer)
            if key not in self.callouts:
                continue
            busy = self.contexts_of(key) > 0
            if busy and "unregister_with_contexts" not in self.faults:
                status = STATUS_DEVICE_BUSY
                overall = status
            else:
                status = STATUS_SUCCESS
                del self.callouts[key]
                self._gone.add(key)
            self.writer.emit("callout_unregister", callout=key, status=status)
        return overall

    def contexts_of(self, key: str) -> int:
        """How many flow contexts callout ``key`` has associated now."""
        return self._contexts_by_key.get(key, 0)

    def deliverable(self, key: str | None) -> Callout | None:
        """The callout a filter's classify goes to, or None when it is not registered."""
        if key is None:
            return None
        callout = self.callouts.get(key)
        if callout is None and key in self._gone and "classify_after_unregister" in self.faults:
            name = key.rpartition(".")[0]
            api = self._apis.get(name)
            return api.callout if api is not None else None
        return callout

    def notify(self, key: str, kind: str, flt: Filter) -> None:
        callout = self.callouts.get(key)
        if callout is None:
            return
        status = callout.notify(kind, flt)
        self.writer.emit("notify", callout=key, type=kind, filter=flt.key, status=status)

    # -- classify -------------------------------------------------------------

    def invoke(
        self, callout: Callout, key: str, ind: Indication, rights: bool, flt: Filter | None
    ) -> ClassifyOut:
        """classifyFn: write ``classify``, call the callout, write ``classify_done``."""
        self._next_id += 1
        cid = self._next_id
        emit = self.writer.emit
        emit("classify", id=cid, layer=ind.layer, callout=key, **ind.event_fields(),
             rights=rights)
        ep = ind.ep
        flow = ind.flow
        ctx = flow.contexts.get((ind.layer, key)) if flow is not None else None
        ci = ClassifyIn(
            cid, ind.layer, key,
            ep.handle if ind.show_endpoint and ep is not None else None,
            ep.parent if ind.show_endpoint and ep is not None else None,
            flow.id if ind.show_flow and flow is not None else None,
            ind.proto, ind.dir, ind.local, ind.remote, ind.reauth, ind.can_pend,
            ind.ale_required, ind.injection, rights,
            ind.packet.id if ind.packet is not None else None, ctx, flt,
        )
        out = ClassifyOut(rights)
        self._active[cid] = ind
        try:
            callout.classify(ci, out)
        finally:
            del self._active[cid]
        emit("classify_done", id=cid, action=out.action, absorb=out.absorb, rights=out.rights)
        return out

    # -- pend / complete an operation -----------------------------------------

    def pend_operation(self, key: str, ci: ClassifyIn) -> PendResult:
        ind = self._active.get(ci.id)
        ok = False
        if ind is not None and ci.layer[:-3] in PEND_OPERATION_LAYERS:
            ok = (ind.can_pend and not ind.reauth) or (
                ind.reauth and "pend_allowed_on_reauth" in self.faults
            )
        if not ok or ind is None:
            self.writer.emit("pend_operation", id=ci.id, status=STATUS_FWP_CANNOT_PEND)
            return PendResult(STATUS_FWP_CANNOT_PEND, None)
        self._next_ctx += 1
        ctx = 0x8000 + self._next_ctx
        self.ops[ctx] = _Op(ctx, ind, key)
        ind.pended = True
        ind.open_ops += 1
        self.writer.emit("pend_operation", id=ci.id, ctx=ctx, status=STATUS_SUCCESS)
        return PendResult(STATUS_SUCCESS, ctx)

    def complete_operation(self, ctx: int, packet: int | None) -> None:
        if packet is None:
            self.writer.emit("complete_operation", ctx=ctx)
        else:
            self.writer.emit("complete_operation", ctx=ctx, packet=packet)
        op = self.ops.pop(ctx, None)
        if op is None:
            return  # never pended, or completed before: a driver bug the checker reports
        ind = op.ind
        ind.open_ops -= 1
        if ind.open_ops == 0 and ind.returned and ind.on_ops_done is not None:
            done, ind.on_ops_done = ind.on_ops_done, None
            done()

    # -- classify handles and pended classification ---------------------------

    def acquire_classify_handle(self, ci: ClassifyIn) -> PendResult:
        ind = self._active.get(ci.id)
        if ind is None:
            self.writer.emit("acquire_classify_handle", id=ci.id,
                             status=STATUS_INVALID_PARAMETER)
            return PendResult(STATUS_INVALID_PARAMETER, None)
        self._next_handle += 1
        handle = 0x4000 + self._next_handle
        self._handles[handle] = ind
        self.writer.emit("acquire_classify_handle", id=ci.id, handle=handle,
                         status=STATUS_SUCCESS)
        return PendResult(STATUS_SUCCESS, handle)

    def release_classify_handle(self, handle: int) -> None:
        self.writer.emit("release_classify_handle", handle=handle)
        self._handles.pop(handle, None)

    def pend_classify(self, handle: int, ci: ClassifyIn) -> str:
        ind = self._handles.get(handle)
        ok = ind is not None and ci.id in self._active and (
            ci.layer[:-3] in PEND_CLASSIFY_LAYERS or "pend_classify_anywhere" in self.faults
        )
        status = STATUS_SUCCESS if ok else STATUS_FWP_CANNOT_PEND
        self.writer.emit("pend_classify", id=ci.id, handle=handle, status=status)
        if ok and ind is not None:
            ind.pended_classify = True
            ind.open_classifies += 1
        return status

    def complete_classify(self, handle: int, action: str | None) -> None:
        self.writer.emit("complete_classify", handle=handle, action=action)
        ind = self._handles.get(handle)
        if ind is None or ind.open_classifies <= 0:
            return
        ind.open_classifies -= 1
        if ind.open_classifies == 0 and ind.returned and ind.on_classify_done is not None:
            done, ind.on_classify_done = ind.on_classify_done, None
            done()

    # -- packets ----------------------------------------------------------------

    def new_packet(
        self, kind: str, ep: Endpoint | None, remote: str, direction: str, size: int,
        flow: Flow | None = None, seq: int = 0,
    ) -> Packet:
        self._next_packet += 1
        pkt = Packet(self._next_packet, kind, ep, remote, direction, size, flow=flow, seq=seq)
        self.packets[pkt.id] = pkt
        return pkt

    def retire(self, pkt: Packet) -> None:
        """The stack is done with an indicated packet; it lives on while referenced."""
        if self._refs.get(pkt.id):
            self._retired.add(pkt.id)
        elif pkt.origin is None:
            self.packets.pop(pkt.id, None)

    def clone(self, packet: int) -> PendResult:
        orig = self.packets.get(packet)
        if orig is None or orig.freed:
            self.writer.emit("clone", of=packet, status=STATUS_INVALID_PARAMETER)
            return PendResult(STATUS_INVALID_PARAMETER, None)
        self._next_packet += 1
        copy = orig.clone(self._next_packet)
        self.packets[copy.id] = copy
        self.writer.emit("clone", packet=copy.id, of=packet, status=STATUS_SUCCESS)
        return PendResult(STATUS_SUCCESS, copy.id)

    def free_clone(self, packet: int) -> None:
        self.writer.emit("free_clone", packet=packet)
        pkt = self.packets.pop(packet, None)
        if pkt is not None:
            pkt.freed = True

    def reference(self, packet: int) -> None:
        self.writer.emit("reference", packet=packet)
        self._refs[packet] = self._refs.get(packet, 0) + 1

    def dereference(self, packet: int) -> None:
        self.writer.emit("dereference", packet=packet)
        left = self._refs.get(packet, 0) - 1
        if left > 0:
            self._refs[packet] = left
            return
        self._refs.pop(packet, None)
        if packet in self._retired:
            self._retired.discard(packet)
            self.packets.pop(packet, None)

    def inject(
        self, kind: str, packet: int, endpoint: int | None, flow: int | None,
        on_complete: InjectDone | None,
    ) -> str:
        pkt = self.packets.get(packet)
        fields: dict[str, object] = {"packet": packet, "kind": kind}
        if flow is not None:
            fields["flow"] = flow
        if endpoint is not None:
            fields["endpoint"] = endpoint
        if pkt is None or pkt.freed:
            status = STATUS_INVALID_PARAMETER
        elif pkt.ep is None or not pkt.ep.live:
            status = STATUS_FWP_INJECT_HANDLE_CLOSING  # the endpoint is gone
        else:
            status = STATUS_SUCCESS
        self.writer.emit("inject", **fields, status=status)
        if status != STATUS_SUCCESS or pkt is None:
            return status

        if kind == "stream":
            # stream injections of one flow are delivered in the order they
            # were made, whatever order same-instant work runs in
            fifo = self._stream_fifo.setdefault(flow or 0, deque())
            fifo.append((kind, pkt, on_complete))
            self.sched.call_soon(lambda: self._deliver(*fifo.popleft()), "inject")
        else:
            self.sched.call_soon(lambda: self._deliver(kind, pkt, on_complete), "inject")
        return status

    def _deliver(self, kind: str, pkt: Packet, on_complete: InjectDone | None) -> None:
        if self.reinjector is not None:
            self.reinjector.reinject(kind, pkt)
        if "lost_inject_completion" in self.faults:
            return
        self.writer.emit("inject_complete", packet=pkt.id, status=STATUS_SUCCESS)
        if on_complete is not None:
            on_complete(pkt.id, STATUS_SUCCESS)

    # -- flow contexts -------------------------------------------------------------

    def flow_associate(self, key: str, flow_id: int, layer: str, ctx: object) -> str:
        flow = self.flows.get(flow_id)
        duplicates_ok = "duplicate_flow_associate_accepted" in self.faults
        if flow is None or flow.state == "ended":
            status = STATUS_NOT_FOUND
        elif (layer, key) in flow.contexts and not duplicates_ok:
            status = STATUS_OBJECT_NAME_EXISTS
        else:
            status = STATUS_SUCCESS
            if (layer, key) not in flow.contexts:
                self._contexts_by_key[key] = self._contexts_by_key.get(key, 0) + 1
            flow.contexts[(layer, key)] = ctx
        self.writer.emit("flow_associate", flow=flow_id, layer=layer, callout=key,
                         ctx=ctx, status=status)
        return status

    def flow_remove(self, key: str, flow_id: int, layer: str) -> str:
        """FwpsFlowRemoveContext0. Its success event stands for the flowDeleteFn it runs."""
        flow = self.flows.get(flow_id)
        ctx = flow.contexts.pop((layer, key), None) if flow is not None else None
        status = STATUS_SUCCESS if ctx is not None else STATUS_NOT_FOUND
        self.writer.emit("flow_remove", flow=flow_id, layer=layer, callout=key, status=status)
        if ctx is not None:
            self._contexts_by_key[key] -= 1
            callout = self.callouts.get(key)
            if callout is not None:
                callout.flow_delete(layer, key, flow_id, ctx)
        return status

    def flow_ended(self, flow: Flow) -> None:
        """The flow is torn down: flowDeleteFn for each context still on it."""
        flow.state = "ended"
        self.flows.pop(flow.id, None)
        if not flow.contexts:
            return
        contexts, flow.contexts = flow.contexts, {}
        for (layer, key), ctx in contexts.items():
            self._contexts_by_key[key] -= 1
            if "flow_delete_missing" in self.faults:
                continue
            self.writer.emit("flow_delete", flow=flow.id, callout=key, ctx=ctx)
            callout = self.callouts.get(key) or self.deliverable(key)
            if callout is not None:
                callout.flow_delete(layer, key, flow.id, ctx)

    # -- bookkeeping calls ----------------------------------------------------

    def alloc(self, tag: str, endpoint: int | None) -> int:
        self._next_obj += 1
        obj = 0x10000 + self._next_obj
        if endpoint is None:
            self.writer.emit("alloc", obj=obj, tag=tag)
        else:
            self.writer.emit("alloc", obj=obj, endpoint=endpoint, tag=tag)
        return obj

    def free(self, obj: int) -> None:
        self.writer.emit("free", obj=obj)


class BoundApi:
    """One callout's :class:`CalloutApi`: the kernel calls, with its name filled in."""

    def __init__(self, kernel: Kernel, callout: Callout) -> None:
        self._k = kernel
        self.callout = callout
        self.name = callout.name

    @property
    def now(self) -> float:
        return self._k.sched.now

    def pend_operation(self, ci: ClassifyIn) -> PendResult:
        return self._k.pend_operation(ci.callout, ci)

    def complete_operation(self, ctx: int, packet: int | None = None) -> None:
        self._k.complete_operation(ctx, packet)

    def acquire_classify_handle(self, ci: ClassifyIn) -> PendResult:
        return self._k.acquire_classify_handle(ci)

    def release_classify_handle(self, handle: int) -> None:
        self._k.release_classify_handle(handle)

    def pend_classify(self, handle: int, ci: ClassifyIn) -> str:
        return self._k.pend_classify(handle, ci)

    def complete_classify(self, handle: int, action: str | None) -> None:
        self._k.complete_classify(handle, action)

    def clone(self, packet: int) -> PendResult:
        return self._k.clone(packet)

    def free_clone(self, packet: int) -> None:
        self._k.free_clone(packet)

    def reference(self, packet: int) -> None:
        self._k.reference(packet)

    def dereference(self, packet: int) -> None:
        self._k.dereference(packet)

    def inject(
        self, kind: str, packet: int, *, endpoint: int | None = None, flow: int | None = None,
        on_complete: InjectDone | None = None,
    ) -> str:
        return self._k.inject(kind, packet, endpoint, flow, on_complete)

    def flow_associate(self, flow: int, layer: str, ctx: object) -> str:
        return self._k.flow_associate(callout_key(self.name, layer), flow, layer, ctx)

    def flow_remove(self, flow: int, layer: str) -> str:
        return self._k.flow_remove(callout_key(self.name, layer), flow, layer)

    def alloc(self, tag: str, endpoint: int | None = None) -> int:
        return self._k.alloc(tag, endpoint)

    def free(self, obj: int) -> None:
        self._k.free(obj)

    def decision(self, ctx: int, action: str) -> None:
        self._k.writer.emit("decision", ctx=ctx, action=action)

    def queue(self, packet: int, endpoint: int) -> None:
        self._k.writer.emit("queue", packet=packet, endpoint=endpoint)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self._k.sched.call_later(delay_s, fn, self.name)

    def open_kernel_session(self, *, dynamic: bool = False, txn_wait_ms: int = 0) -> Session:
        return self._k.open_kernel_session(dynamic, txn_wait_ms)

    @property
    def trace_writer(self) -> TraceWriter:
        return self._k.writer

    def packet_size(self, packet: int) -> int | None:
        found = self._k.packets.get(packet)
        return None if found is None else found.size
