"""The driver's obligations that fall due when an endpoint's closure completes.

EP007, EP008 and EP009 bind driver work to an ALE endpoint: memory allocated
for it (``alloc`` with ``endpoint``), packets held for later reinjection
(``queue``) and ALE operations pended in a classify that named it
(``pend_operation``). Each must be gone by the time the endpoint's closure
completes, which is where a leftover becomes certain and is reported, with
the event that created the obligation and the closure classify as evidence.

:class:`EndpointResources` keeps only what is outstanding, indexed both by the
object (so a ``free``/``inject``/``complete_operation`` is one dict pop) and by
endpoint handle (so the closure's end visits exactly that endpoint's
leftovers). It does not know by itself when a closure completes: the endpoint
monitor in :mod:`harness.contract.ep` subclasses it, fills ``_open`` (classify
id -> endpoint while the classify runs) and calls :meth:`_closure_done` and
:meth:`_forget_endpoint`, and answers :meth:`_closure_of_closed`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.contract.base import Monitor, Sink, handle
from harness.trace.events import Event
from harness.trace.status import succeeded

Handle = Any  # int | str, compared by equality only


class EndpointResources(Monitor):
    """Tracks allocs, queued packets and pended operations per endpoint (EP007-EP009)."""

    RULES: ClassVar[tuple[str, ...]] = ("EP007", "EP008", "EP009")

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        #: classify id -> endpoint, from its classify until its classify_done
        self._open: dict[Handle, Handle] = {}
        #: live allocs: obj -> (alloc seq, endpoint or None)
        self._allocs: dict[Handle, tuple[int, Handle]] = {}
        self._allocs_by_ep: dict[Handle, dict[Handle, int]] = {}
        #: packets queued for reinjection: packet -> endpoint
        self._queued: dict[Handle, Handle] = {}
        self._queued_by_ep: dict[Handle, dict[Handle, int]] = {}
        #: successful pends not yet completed: ctx -> endpoint
        self._pended: dict[Handle, Handle] = {}
        self._pended_by_ep: dict[Handle, dict[Handle, int]] = {}

    # -- hooks for the endpoint monitor -------------------------------------

    def _closure_of_closed(self, endpoint: Handle) -> int | None:
        """The closure classify seq of ``endpoint`` when its closure has completed."""
        return None

    def _closure_done(self, endpoint: Handle, closure_seq: int, pended: bool) -> None:
        """The closure of ``endpoint`` (classify ``closure_seq``) just completed."""
        allocs = self._allocs_by_ep.pop(endpoint, None)
        if allocs:
            for obj, seq in allocs.items():
                self._allocs.pop(obj, None)
                self.report(
                    "EP007",
                    f"alloc {handle(obj)} of endpoint {handle(endpoint)} is not freed when "
                    f"the endpoint's closure completes",
                    seq,
                    closure_seq,
                )
        queued = self._queued_by_ep.pop(endpoint, None)
        if queued:
            for packet, seq in queued.items():
                self._queued.pop(packet, None)
                if pended:
                    self.report(
                        "EP008",
                        f"packet {handle(packet)} queued for endpoint {handle(endpoint)} is "
                        f"neither injected nor freed when its pended closure is completed",
                        seq,
                        closure_seq,
                    )
        pends = self._pended_by_ep.pop(endpoint, None)
        if pends:
            for ctx, seq in pends.items():
                self._pended.pop(ctx, None)
                self.report(
                    "EP009",
                    f"operation {handle(ctx)} pended on endpoint {handle(endpoint)} is not "
                    f"completed when the endpoint's closure completes",
                    seq,
                    closure_seq,
                )

    def _forget_endpoint(self, endpoint: Handle) -> None:
        """The endpoint is gone without a completed closure: drop its per-endpoint indexes.

        Its allocs stay in the global table, so the end of the trace still
        reports them if they are never freed; queued packets and pends are
        left to the PI and PC families.
        """
        self._allocs_by_ep.pop(endpoint, None)
        queued = self._queued_by_ep.pop(endpoint, None)
        if queued:
            for packet in queued:
                self._queued.pop(packet, None)
        pends = self._pended_by_ep.pop(endpoint, None)
        if pends:
            for ctx in pends:
                self._pended.pop(ctx, None)

    # -- EP007: allocs ------------------------------------------------------

    def on_alloc(self, ev: Event) -> None:
        obj = ev.get("obj")
        if obj is None:
            return
        self.touch("EP007")
        seq: int = ev["seq"]
        endpoint = ev.get("endpoint")
        old = self._allocs.get(obj)
        if old is not None and old[1] is not None:
            by_ep = self._allocs_by_ep.get(old[1])
            if by_ep is not None:
                by_ep.pop(obj, None)
        if endpoint is not None:
            closure = self._closure_of_closed(endpoint)
            if closure is not None:
                # It can no longer be freed before the closure ends: certain now.
                self._allocs.pop(obj, None)
                self.report(
                    "EP007",
                    f"alloc {handle(obj)} is bound to endpoint {handle(endpoint)} after "
                    f"its closure completed",
                    closure,
                    seq,
                )
                return
            by_ep = self._allocs_by_ep.get(endpoint)
            if by_ep is None:
                self._allocs_by_ep[endpoint] = {obj: seq}
            else:
                by_ep[obj] = seq
        self._allocs[obj] = (seq, endpoint)

    def on_free(self, ev: Event) -> None:
        rec = self._allocs.pop(ev.get("obj"), None)
        if rec is not None and rec[1] is not None:
            by_ep = self._allocs_by_ep.get(rec[1])
            if by_ep is not None:
                by_ep.pop(ev.get("obj"), None)

    # -- EP008: queued packets ----------------------------------------------

    def on_queue(self, ev: Event) -> None:
        packet = ev.get("packet")
        endpoint = ev.get("endpoint")
        if packet is None or endpoint is None:
            return
        self.touch("EP008")
        if self._closure_of_closed(endpoint) is not None:
            return
        old = self._queued.get(packet)
        if old is not None and old != endpoint:
            self._drop_queued(packet)
        self._queued[packet] = endpoint
        by_ep = self._queued_by_ep.get(endpoint)
        if by_ep is None:
            self._queued_by_ep[endpoint] = {packet: ev["seq"]}
        else:
            by_ep.setdefault(packet, ev["seq"])

    def _drop_queued(self, packet: Handle) -> None:
        endpoint = self._queued.pop(packet, None)
        if endpoint is not None:
            by_ep = self._queued_by_ep.get(endpoint)
            if by_ep is not None:
                by_ep.pop(packet, None)

    def on_inject(self, ev: Event) -> None:
        # A failed inject leaves the packet with the driver: still queued.
        if self._queued and succeeded(ev.get("status")):
            self._drop_queued(ev.get("packet"))

    def on_free_clone(self, ev: Event) -> None:
        if self._queued:
            self._drop_queued(ev.get("packet"))

    def on_dereference(self, ev: Event) -> None:
        if self._queued:
            self._drop_queued(ev.get("packet"))

    # -- EP009: pended operations -------------------------------------------

    def on_pend_operation(self, ev: Event) -> None:
        endpoint = self._open.get(ev.get("id"))
        ctx = ev.get("ctx")
        if endpoint is None or ctx is None or not succeeded(ev.get("status")):
            return
        self.touch("EP009")
        if self._closure_of_closed(endpoint) is not None:
            return
        self._pended[ctx] = endpoint
        by_ep = self._pended_by_ep.get(endpoint)
        if by_ep is None:
            self._pended_by_ep[endpoint] = {ctx: ev["seq"]}
        else:
            by_ep[ctx] = ev["seq"]

    def on_complete_operation(self, ev: Event) -> None:
        if not self._pended:
            return
        ctx = ev.get("ctx")
        endpoint = self._pended.pop(ctx, None)
        if endpoint is not None:
            by_ep = self._pended_by_ep.get(endpoint)
            if by_ep is not None:
                by_ep.pop(ctx, None)

    def finish(self) -> None:
        for obj, (seq, endpoint) in self._allocs.items():
            owner = f" of endpoint {handle(endpoint)}" if endpoint is not None else ""
            self.report("EP007", f"alloc {handle(obj)}{owner} is never freed", seq)
