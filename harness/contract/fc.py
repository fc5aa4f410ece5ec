"""Rule family FC: flow contexts and callout unregistration.

:class:`FlowContextMonitor` keeps the flow contexts that are associated now,
keyed by ``(flow, callout)`` and then by layer (``flow_delete`` carries no
layer; a callout has one layer, so this inner dict almost always holds one
entry), plus the same contexts indexed by callout so that a
``callout_unregister`` knows at once whether the callout still has any.

How a context ends (FC001), after DDI FwpsFlowRemoveContext0: a successful
``flow_remove`` deletes the context, and the engine then calls flowDeleteFn
for it, synchronously for STATUS_SUCCESS and later for STATUS_PENDING. So a
context ends at exactly one of ``flow_delete`` or successful ``flow_remove``;
the flowDeleteFn call that belongs to a successful remove is the same
deletion and is counted once, in either order: a ``flow_delete`` right after
the remove (remembered in ``_removed``), or a ``flow_delete`` logged inside
the remove call and so before its ``flow_remove`` event (``_deleted``). Any
other ``flow_delete``, and a successful ``flow_remove`` with nothing to
remove, breaks "exactly one". Contexts still associated at the end of the
trace never got their delete. STATUS_OBJECT_NAME_EXISTS is a success code but
attaches nothing, so it opens no context.

FC002: a second associate on a live (flow, layer, callout) must return
STATUS_OBJECT_NAME_EXISTS (engine), and the context the driver tried to
attach must be ``free``d by the end of the trace (driver). The driver part is
judged only for a ctx that is a live ``alloc``'d ``obj`` when the associate
fails: a trace that carries no allocs cannot show a leak.

FC003 and FC004 are judged at ``callout_unregister``, from the live contexts of
that callout and from what the one driver of the trace has outstanding:
pended operations, clones and classify handles, each a dict keyed by handle
(an item reported there is dropped, so the next unregister does not report
it again). A classify naming a callout after its successful unregister (and
before a successful re-register) breaks FC004.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from harness.contract.base import Monitor, Sink, handle
from harness.trace.events import Event
from harness.trace.status import succeeded

Handle = Any  # int | str, compared by equality only

_NAME_EXISTS = "STATUS_OBJECT_NAME_EXISTS"
_DEVICE_BUSY = "STATUS_DEVICE_BUSY"

#: Remembered recent deletions (to pair a remove with its flowDeleteFn call).
RECENT_LIMIT = 4096


class _Context:
    __slots__ = ("ctx", "layer", "seq")

    def __init__(self, ctx: Handle, layer: Handle, seq: int) -> None:
        self.ctx = ctx
        self.layer = layer
        self.seq = seq


def _remember(table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    table[key] = value
    if len(table) > RECENT_LIMIT:
        table.popitem(last=False)


class FlowContextMonitor(Monitor):
    """Flow contexts from associate to delete (FC001, FC002) and at unregister (FC003, FC004).

    Also tracks, globally and by handle, the driver's outstanding pend ctxs,
    clones and classify handles, and the callouts unregistered successfully,
    so that FC004 is one dict lookup per event.
    """

    RULES: ClassVar[tuple[str, ...]] = ("FC001", "FC002", "FC003", "FC004")

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self._contexts: dict[tuple[Handle, Handle], dict[Handle, _Context]] = {}
        self._by_callout: dict[Handle, dict[tuple[Handle, Handle], int]] = {}
        #: successfully removed, flowDeleteFn not seen yet: (flow, callout) -> (ctx, seq)
        self._removed: OrderedDict[tuple[Handle, Handle], tuple[Handle, int]] = OrderedDict()
        #: deleted by flowDeleteFn: (flow, callout) -> (layer, seq), for a remove logged after
        self._deleted: OrderedDict[tuple[Handle, Handle], tuple[Handle, int]] = OrderedDict()
        #: live allocs: obj -> alloc seq (a flow context is an alloc'd obj)
        self._allocs: dict[Handle, int] = {}
        #: contexts an associate did not attach, left to the driver to free:
        #: ctx -> (alloc seq, associate seq)
        self._to_free: dict[Handle, tuple[int, int]] = {}
        # FC004
        self._unregistered: dict[Handle, int] = {}
        self._pends: dict[Handle, int] = {}
        self._clones: dict[Handle, int] = {}
        self._handles: dict[Handle, int] = {}

    # -- FC001 / FC002 -------------------------------------------------------

    def on_flow_associate(self, ev: Event) -> None:
        flow = ev.get("flow")
        callout = ev.get("callout")
        status = ev.get("status")
        if flow is None or callout is None or status is None:
            return
        seq: int = ev["seq"]
        layer = ev.get("layer")
        ctx = ev.get("ctx")
        key = (flow, callout)
        layers = self._contexts.get(key)
        live = layers.get(layer) if layers is not None else None
        if live is not None:
            self.touch("FC002")
            if status != _NAME_EXISTS:
                self.report(
                    "FC002",
                    f"second flow_associate on flow {handle(flow)} layer {handle(layer)} "
                    f"callout {handle(callout)} returns {status}, not {_NAME_EXISTS}",
                    live.seq,
                    seq,
                )
            if succeeded(status) and status != _NAME_EXISTS:
                # The engine claims it attached the new context: follow that one.
                live.ctx, live.seq = ctx, seq
                return
            self._left_to_driver(ctx, seq)
            return
        if status == _NAME_EXISTS:
            self.touch("FC002")
            self._left_to_driver(ctx, seq)
            return
        if not succeeded(status):
            return
        self.touch("FC001")
        if layers is None:
            self._contexts[key] = {layer: _Context(ctx, layer, seq)}
        else:
            layers[layer] = _Context(ctx, layer, seq)
        by_callout = self._by_callout.get(callout)
        if by_callout is None:
            self._by_callout[callout] = {(flow, layer): seq}
        else:
            by_callout[(flow, layer)] = seq
        if self._removed:
            self._removed.pop(key, None)
        if self._deleted:
            self._deleted.pop(key, None)

    def _end(self, key: tuple[Handle, Handle], layer: Handle) -> _Context | None:
        layers = self._contexts.get(key)
        if layers is None:
            return None
        if layer is None and len(layers) == 1:
            layer = next(iter(layers))
        ended = layers.pop(layer, None)
        if ended is None:
            return None
        if not layers:
            del self._contexts[key]
        by_callout = self._by_callout.get(key[1])
        if by_callout is not None:
            by_callout.pop((key[0], layer), None)
            if not by_callout:
                del self._by_callout[key[1]]
        return ended

    def on_flow_delete(self, ev: Event) -> None:
        flow = ev.get("flow")
        callout = ev.get("callout")
        if flow is None or callout is None:
            return
        self.touch("FC001")
        seq: int = ev["seq"]
        ctx = ev.get("ctx")
        key = (flow, callout)
        layers = self._contexts.get(key)
        if layers is not None:
            layer = next((lay for lay, c in layers.items() if c.ctx == ctx), None)
            if layer is None:
                layer = next(iter(layers))
                assoc = layers[layer]
                self.report(
                    "FC001",
                    f"flow_delete of flow {handle(flow)} callout {handle(callout)} passes "
                    f"ctx {handle(ctx)}, but ctx {handle(assoc.ctx)} is associated",
                    assoc.seq,
                    seq,
                )
            self._end(key, layer)
            _remember(self._deleted, key, (layer, seq))
            return
        removed = self._removed.pop(key, None)
        if removed is not None and (ctx is None or removed[0] == ctx):
            return  # the flowDeleteFn call of a successful flow_remove
        earlier = self._deleted.get(key)
        self.report(
            "FC001",
            f"flow_delete of flow {handle(flow)} callout {handle(callout)} ctx {handle(ctx)} "
            f"with no context associated",
            earlier[1] if earlier else None,
            removed[1] if removed else None,
            seq,
        )

    def on_flow_remove(self, ev: Event) -> None:
        flow = ev.get("flow")
        callout = ev.get("callout")
        if flow is None or callout is None or not succeeded(ev.get("status")):
            return
        self.touch("FC001")
        seq: int = ev["seq"]
        key = (flow, callout)
        layer = ev.get("layer")
        ended = self._end(key, layer)
        if ended is not None:
            _remember(self._removed, key, (ended.ctx, seq))
            return
        deleted = self._deleted.pop(key, None)
        if deleted is not None and (layer is None or deleted[0] == layer):
            return  # flowDeleteFn ran inside this remove call and was logged first
        self.report(
            "FC001",
            f"flow_remove on flow {handle(flow)} layer {handle(layer)} callout "
            f"{handle(callout)} succeeds with no context associated",
            seq,
        )

    def _left_to_driver(self, ctx: Handle, seq: int) -> None:
        allocated = self._allocs.get(ctx)
        if allocated is not None:
            self._to_free[ctx] = (allocated, seq)

    def on_alloc(self, ev: Event) -> None:
        obj = ev.get("obj")
        if obj is not None:
            self._allocs[obj] = ev["seq"]

    def on_free(self, ev: Event) -> None:
        obj = ev.get("obj")
        self._allocs.pop(obj, None)
        if self._to_free:
            self._to_free.pop(obj, None)

    # -- FC003 / FC004 -------------------------------------------------------

    def on_callout_register(self, ev: Event) -> None:
        if self._unregistered and succeeded(ev.get("status")):
            self._unregistered.pop(ev.get("callout"), None)

    def on_callout_unregister(self, ev: Event) -> None:
        callout = ev.get("callout")
        status = ev.get("status")
        if callout is None or status is None:
            return
        self.touch("FC003")
        seq: int = ev["seq"]
        live = self._by_callout.get(callout)
        if live and status != _DEVICE_BUSY and succeeded(status):
            (flow, layer), assoc_seq = next(iter(live.items()))
            self.report(
                "FC003",
                f"callout_unregister of callout {handle(callout)} returns {status} while "
                f"{len(live)} flow context(s) remain (flow {handle(flow)} layer "
                f"{handle(layer)})",
                assoc_seq,
                seq,
            )
        elif not live and status == _DEVICE_BUSY:
            self.report(
                "FC003",
                f"callout_unregister of callout {handle(callout)} returns {_DEVICE_BUSY} "
                f"with no flow context left",
                seq,
            )
        if not succeeded(status):
            return
        self.touch("FC004")
        self._unregistered[callout] = seq
        for what, table in (
            ("pended operation", self._pends),
            ("clone", self._clones),
            ("classify handle", self._handles),
        ):
            for h, first in table.items():
                self.report(
                    "FC004",
                    f"{what} {handle(h)} is still outstanding when callout "
                    f"{handle(callout)} is unregistered",
                    first,
                    seq,
                )
            table.clear()  # reported once, not again at the next unregister

    def on_classify(self, ev: Event) -> None:
        if self._unregistered:
            callout = ev.get("callout")
            at = self._unregistered.get(callout) if callout is not None else None
            if at is not None:
                self.report(
                    "FC004",
                    f"callout {handle(callout)} is classified after its callout_unregister",
                    at,
                    ev["seq"],
                )

    def on_pend_operation(self, ev: Event) -> None:
        ctx = ev.get("ctx")
        if ctx is not None and succeeded(ev.get("status")):
            self._pends[ctx] = ev["seq"]

    def on_complete_operation(self, ev: Event) -> None:
        if self._pends:
            self._pends.pop(ev.get("ctx"), None)

    def on_clone(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is not None and succeeded(ev.get("status")):
            self._clones[packet] = ev["seq"]

    def on_free_clone(self, ev: Event) -> None:
        if self._clones:
            self._clones.pop(ev.get("packet"), None)

    def on_acquire_classify_handle(self, ev: Event) -> None:
        hdl = ev.get("handle")
        if hdl is not None and succeeded(ev.get("status")):
            self._handles[hdl] = ev["seq"]

    def on_release_classify_handle(self, ev: Event) -> None:
        if self._handles:
            self._handles.pop(ev.get("handle"), None)

    # -- end of trace --------------------------------------------------------

    def finish(self) -> None:
        for (flow, callout), layers in self._contexts.items():
            for layer, assoc in layers.items():
                self.report(
                    "FC001",
                    f"flow context {handle(assoc.ctx)} on flow {handle(flow)} layer "
                    f"{handle(layer)} callout {handle(callout)} is never deleted",
                    assoc.seq,
                )
        for ctx, (allocated, seq) in self._to_free.items():
            self.report(
                "FC002",
                f"context {handle(ctx)} that flow_associate did not attach is never freed",
                allocated,
                seq,
            )


MONITORS = (FlowContextMonitor,)
