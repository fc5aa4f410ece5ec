"""Driver mutants: the reference callout with one real bug each.

Each mutant is a small subclass of :class:`ReferenceCallout` overriding one
hook, registered in :data:`MUTANTS` with the rule IDs its trace must trip.
The client mutants (policy clients breaking TX008/TX009) live in
``client_mutants`` and are merged into the same registry. A command-line
spec becomes a callout in :mod:`harness.callouts.spec`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.callouts.reference import Held, Pended, ReferenceCallout, StreamState
from harness.callouts.registry import Mutant, build_registry
from harness.engine.callout_api import ClassifyIn, ClassifyOut

# -- PC: pend and complete ------------------------------------------------------


class ForgetsComplete(ReferenceCallout):
    """Records a decision but never calls FwpsCompleteOperation0 for connects."""

    def complete_operation(self, record: Pended) -> None:
        if record.clone is not None:
            super().complete_operation(record)


class CompletesTwice(ReferenceCallout):
    """Completes every pended operation twice (a retry path that also completes)."""

    def complete_operation(self, record: Pended) -> None:
        super().complete_operation(record)
        super().complete_operation(record)


class PendWithoutAbsorb(ReferenceCallout):
    """Pends the connect but returns PERMIT without absorb."""

    def pend(self, ci: ClassifyIn, out: ClassifyOut, *, clone: bool) -> None:
        super().pend(ci, out, clone=clone)
        if out.absorb:
            out.absorb = False
            out.action = "PERMIT"
            out.rights = True


class PendsAtTransport(ReferenceCallout):
    """Tries FwpsPendOperation0 on outbound TCP packets at OUTBOUND_TRANSPORT."""

    def on_transport(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.proto == "tcp" and ci.dir == "out" and ci.rights:
            self.api.pend_operation(ci)
        super().on_transport(ci, out)


class AbsorbsAfterCannotPend(ReferenceCallout):
    """Pends in the reauthorization too, and absorbs even though that pend failed."""

    def answer_reauth(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.layer.startswith("ALE_AUTH_CONNECT"):
            result = self.api.pend_operation(ci)
            if not result.ok:
                out.block(absorb=True)  # the bug: nothing was pended
                return
        super().answer_reauth(ci, out)


class FlipsReauth(ReferenceCallout):
    """Answers the post-completion reauthorization with the opposite of its decision."""

    def answer_reauth(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        recorded = self.verdicts.get((ci.endpoint or 0, ci.remote))
        if recorded is None:
            super().answer_reauth(ci, out)
            return
        self.give(out, "BLOCK" if recorded == "PERMIT" else "PERMIT", ci.rights)


class NeverReinjects(ReferenceCallout):
    """Completes a RECV_ACCEPT pend and then neither reinjects nor frees the clone."""

    def finish_recv_accept(self, record: Pended, action: str) -> None:
        return None


class RependsSelfInjected(ReferenceCallout):
    """Does not check the injection state at RECV_ACCEPT: pends its own reinjected clone
    (once per endpoint, then it learns)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._seen: set[int] = set()

    def on_self_injected(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.layer.startswith("ALE_AUTH_RECV_ACCEPT") and ci.endpoint not in self._seen:
            self._seen.add(ci.endpoint or 0)
            self.on_recv_accept(ci, out)
            return
        super().on_self_injected(ci, out)


class PendsAtFlowEstablished(ReferenceCallout):
    """Tries to pend at ALE_FLOW_ESTABLISHED, both ways (asynchronous processing is not
    supported there); when the engine lets the classify pend, it completes it at once."""

    def on_flow_established(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        self.api.pend_operation(ci)
        got = self.api.acquire_classify_handle(ci)
        if got.ok and got.handle is not None:
            if self.api.pend_classify(got.handle, ci) == "STATUS_SUCCESS":
                self.api.complete_classify(got.handle, "PERMIT")
            self.api.release_classify_handle(got.handle)
        super().on_flow_established(ci, out)


class QueuesAleRequired(ReferenceCallout):
    """Clones and absorbs inbound datagrams that still need ALE classification."""

    def wants_queue(self, ci: ClassifyIn) -> bool:
        if ci.ale_required and ci.proto == "udp" and ci.packet is not None and ci.endpoint:
            return True
        if ci.ale_required and ci.proto == "udp" and ci.packet is not None:
            return False
        return super().wants_queue(ci)

    def on_transport(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.ale_required and ci.proto == "udp" and ci.packet is not None and ci.rights:
            made = self.api.clone(ci.packet)
            if made.ok and made.handle is not None:
                out.block(absorb=True)
                held = Held(made.handle, "transport_recv", None)
                self.api.call_later(self.transport_delay_s, lambda: self.reinject(held))
                return
        super().on_transport(ci, out)


    def reinject(self, held: Held) -> None:
        self.inject(held.kind, held.packet, None, None)


class IgnoresRights(ReferenceCallout):
    """Pends and absorbs at AUTH_CONNECT even without the write right."""

    def on_connect(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        self.endpoint_context(ci.endpoint)
        if ci.can_pend:
            self.pend(ci, out, clone=False)
        else:
            self.give(out, self.decide(ci), True)


# -- PK: classify handles and pended classification --------------------------------


class LeaksClassifyHandle(ReferenceCallout):
    """Completes the pended closure but never releases its classify handle."""

    def complete_closure(self, handle: int) -> None:
        self.api.complete_classify(handle, "PERMIT")


class ReleasesBeforeComplete(ReferenceCallout):
    """Releases the classify handle first, then completes the pended closure."""

    def complete_closure(self, handle: int) -> None:
        self.api.release_classify_handle(handle)
        self.api.complete_classify(handle, "PERMIT")


# -- PI: packets ----------------------------------------------------------------------


class LeaksClone(ReferenceCallout):
    """Never frees a clone after its injection completed."""

    def injected(self, packet: int, endpoint: int | None) -> None:
        self.settle(endpoint)


class LeaksReference(ReferenceCallout):
    """References the pended datagram and never dereferences it."""

    def complete(self, ctx: int, action: str) -> None:
        record = self.pended.get(ctx)
        if record is not None:
            record.referenced = None
        super().complete(ctx, action)


class NoFreeAfterFailedInject(ReferenceCallout):
    """Does not pend the closure: queued datagrams are injected after the endpoint is
    gone, the injection fails, and the clone is not freed."""

    def busy(self, endpoint: int) -> bool:
        return False

    def injection_failed(self, packet: int, endpoint: int | None) -> None:
        self.settle(endpoint)


class InjectsFreedClone(ReferenceCallout):
    """Frees the queued clone, then injects it (use after free)."""

    def release_held(self, held: Held) -> None:
        queue = self.queued.get(held.endpoint or 0)
        if queue and held in queue:
            self.api.free_clone(held.packet)
        super().release_held(held)

    def injected(self, packet: int, endpoint: int | None) -> None:
        self.settle(endpoint)

    def injection_failed(self, packet: int, endpoint: int | None) -> None:
        self.settle(endpoint)


# -- ST: streams -------------------------------------------------------------------------


class MixesStreamModes(ReferenceCallout):
    """Lets every other segment through inline while absorbed data is still pending."""

    def out_of_band(self, state: StreamState) -> bool:
        if state.waiting and len(state.waiting) % 2 == 1:
            return False
        return super().out_of_band(state)


class InjectsOutOfOrder(ReferenceCallout):
    """Injects absorbed stream data newest first."""

    def stream_order(self, waiting: list[Held]) -> list[Held]:
        return list(reversed(waiting))


# -- EP: endpoint lifetime ------------------------------------------------------------------


class LeaksEndpointContext(ReferenceCallout):
    """Never frees its per-endpoint context."""

    def free_endpoint_context(self, endpoint: int) -> None:
        self.endpoint_ctx.pop(endpoint, None)


class CompletesClosureEarly(ReferenceCallout):
    """Pends the closure, then completes it before draining what it queued."""

    def drain(self, endpoint: int) -> None:
        handle = self.closing.pop(endpoint, None)
        if handle is not None:
            self.free_endpoint_context(endpoint)
            self.complete_closure(handle)
        super().drain(endpoint)


class SlowDecisionOpenAtClosure(ReferenceCallout):
    """Its user-mode service answers after the app gave up; the closure does not wait."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("decide_delay_s", 30.0)
        super().__init__(*args, **kw)

    def complete_leftovers(self, endpoint: int) -> None:
        return None


# -- FC: flow contexts and unload ----------------------------------------------------------


class DoubleAssociate(ReferenceCallout):
    """Associates a second context on the same flow and layer, and leaks it when refused."""

    def associate_flow(self, ci: ClassifyIn) -> None:
        super().associate_flow(ci)
        assert ci.flow is not None
        ctx = self.api.alloc("FLcx", ci.endpoint)
        self.api.flow_associate(ci.flow, f"STREAM_{ci.version}", ctx)


class UnloadsWithWork(ReferenceCallout):
    """Keeps a spare clone of the first accepted packet for diagnostics and frees it
    only when it is loaded again: at its unload a clone is still outstanding."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.kept: int | None = None
        self.kept_any = False

    def on_recv_accept(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        super().on_recv_accept(ci, out)
        if not self.kept_any and ci.packet is not None and out.absorb:
            made = self.api.clone(ci.packet)
            if made.ok:
                self.kept, self.kept_any = made.handle, True

    def attach(self, api: Any) -> None:
        if self.kept is not None:
            api.free_clone(self.kept)
            self.kept = None
        super().attach(api)


# -- RA: reauthorization ------------------------------------------------------------------------


class AbsorbsReauth(ReferenceCallout):
    """Absorbs reauthorizations at AUTH_CONNECT instead of answering them."""

    def answer_reauth(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.layer.startswith("ALE_AUTH_CONNECT"):
            out.block(absorb=True)
            return
        super().answer_reauth(ci, out)


def _m(name: str, rules: tuple[str, ...], cls: type[ReferenceCallout]) -> Mutant:
    doc = (cls.__doc__ or "").strip().replace("\n    ", " ")
    return Mutant(name, rules, doc, lambda **kw: cls(name=f"mutant_{name}", **kw))


DRIVER_MUTANTS: dict[str, Mutant] = build_registry((
    _m("forgets_complete", ("PC001", "EP009"), ForgetsComplete),
    _m("completes_twice", ("PC001",), CompletesTwice),
    _m("pend_without_absorb", ("PC002",), PendWithoutAbsorb),
    _m("pends_at_transport", ("PC003",), PendsAtTransport),
    _m("absorbs_after_cannot_pend", ("PC005", "RA002"), AbsorbsAfterCannotPend),
    _m("flips_reauth_decision", ("PC007",), FlipsReauth),
    _m("never_reinjects_clone", ("PC009",), NeverReinjects),
    _m("repends_self_injected", ("PC010",), RependsSelfInjected),
    _m("pends_at_flow_established", ("PC011",), PendsAtFlowEstablished),
    _m("queues_ale_required", ("PC012",), QueuesAleRequired),
    _m("ignores_rights", ("PC013",), IgnoresRights),
    _m("leaks_classify_handle", ("PK001",), LeaksClassifyHandle),
    _m("releases_before_complete", ("PK002",), ReleasesBeforeComplete),
    _m("leaks_clone", ("PI001",), LeaksClone),
    _m("leaks_reference", ("PI002",), LeaksReference),
    _m("no_free_after_failed_inject", ("PI003",), NoFreeAfterFailedInject),
    _m("injects_freed_clone", ("PI004",), InjectsFreedClone),
    _m("mixes_stream_modes", ("ST001",), MixesStreamModes),
    _m("injects_out_of_order", ("ST002",), InjectsOutOfOrder),
    _m("leaks_endpoint_context", ("EP007",), LeaksEndpointContext),
    _m("completes_closure_early", ("EP008",), CompletesClosureEarly),
    _m("closure_before_completion", ("EP009",), SlowDecisionOpenAtClosure),
    _m("double_flow_associate", ("FC002",), DoubleAssociate),
    _m("unloads_with_work", ("FC004",), UnloadsWithWork),
    _m("absorbs_reauth", ("RA002",), AbsorbsReauth),
))


def _client_mutants() -> dict[str, Mutant]:
    try:
        from harness.callouts.client_mutants import CLIENT_MUTANTS
    except ImportError:  # the BFE side is optional for the driver mutants
        return {}
    return dict(CLIENT_MUTANTS)


CLIENT_MUTANTS: dict[str, Mutant] = _client_mutants()
MUTANTS: dict[str, Mutant] = build_registry([*DRIVER_MUTANTS.values(), *CLIENT_MUTANTS.values()])


#: Engine faults that only show when a driver makes the call whose guarantee they
#: break: the mutant that makes it (the reference never does).
FAULT_CALLOUTS: dict[str, str] = {
    "pend_allowed_on_reauth": "mutant:absorbs_after_cannot_pend",
    "pend_classify_anywhere": "mutant:pends_at_flow_established",
    "duplicate_flow_associate_accepted": "mutant:double_flow_associate",
}


def callout_for_faults(faults: Iterable[str]) -> str:
    """The callout spec a run with these faults uses unless told otherwise."""
    for fault in sorted(faults):
        if fault in FAULT_CALLOUTS:
            return FAULT_CALLOUTS[fault]
    return "reference"


def describe_mutants() -> list[dict[str, object]]:
    """The registry as data, for ``callout-harness mutants --format json``."""
    from harness.csim import describe_c_mutants  # the probe's C mutants, c:drivers/probe#NAME

    rows: list[dict[str, object]] = [
        {"name": m.name, "rules": list(m.rules), "description": m.description,
         "kind": "client" if m.name in CLIENT_MUTANTS else "driver"}
        for m in sorted(MUTANTS.values(), key=lambda m: m.name)
    ]
    return rows + describe_c_mutants()
