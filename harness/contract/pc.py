"""Rule family PC: pending and completing an ALE operation.

One monitor, :class:`PendMonitor`, judges the whole family (rule texts in
harness.contract.catalog); it is one class rather than two because both halves
follow every classify, and classifies are most of a trace, so the family pays
for one handler call per classify and per classify_done, not two.

* PC001-PC009: it follows each ``pend_operation`` from the classify it was
  called in to its ``complete_operation`` and on to what must follow the
  completion (that part lives in :mod:`harness.contract.pc_reauth`). It keeps
  every open classify (a pend is judged against the layer and flags of the
  classify it was called in) and every outstanding pend.
* PC010-PC013: classifies whose flags limit what the callout may return
  (self-injected packets, ALE_FLOW_ESTABLISHED, INBOUND_TRANSPORT packets that
  still need ALE classification, no write right) are flagged at ``classify``
  and judged at their ``classify_done`` and at the calls made inside them (a
  clone or an injection is attributed to the open classify whose packet it
  names).

Where each rule is judged: PC001 at a second completion or one of an
unknown ctx, and at end of trace for a pend never completed; PC002 and PC005
at the pending classify's ``classify_done``; PC003 and PC004 at the
``pend_operation``; PC010-PC013 at the offending call or ``classify_done``;
PC006-PC009 as described in :mod:`harness.contract.pc_reauth`.

Readings of the rules where rules.md leaves room:

* A ``pend_operation`` without ``status`` may or may not have pended: it is
  followed (so its completion is no violation) but never reported as a leak,
  and PC002/PC005 skip it. PC005 holds a classify to "no absorb" only when
  none of its pends succeeded (a retry that succeeded leaves something to
  complete).
* PC010-PC013 count a pend or clone attempt whatever its status: the rules
  forbid the call, not its success.
* Completed ctxs are remembered for double-completion detection (PC001) until
  their endpoint's closure completes, and at most the last ``DONE_LIMIT`` of
  them whatever happens: a second completion after that is still PC001, but
  reported as the completion of an unknown ctx.
"""

from __future__ import annotations

from typing import Final

from harness.contract.base import Monitor, Sink, handle
from harness.contract.pc_reauth import (
    K_CLOSURE,
    K_CONNECT,
    K_FLOWEST,
    K_INTRANS,
    K_RECV,
    LAYER_KINDS,
    PENDABLE,
    AfterCompletion,
    Handle,
    PendRecord,
    layer_kind,
)
from harness.trace.events import Event
from harness.trace.status import canonical, succeeded

#: How many completed ctxs are remembered, at most, for double completion.
DONE_LIMIT: Final = 65536

CANNOT_PEND: Final = canonical("STATUS_FWP_CANNOT_PEND")

# Flags of a classify that limit what the callout may do in it (PC010-PC013).
F_SELF: Final = 1  # injection self / prev_self (PC010)
F_FLOWEST: Final = 2  # ALE_FLOW_ESTABLISHED (PC011)
F_ALEREQ: Final = 4  # INBOUND_TRANSPORT with ale_required (PC012)
F_NORIGHTS: Final = 8  # rights false on entry (PC013)

_SELF_INJECTION: Final = frozenset({"self", "prev_self"})
_FLAG_RULE: Final = (
    (F_SELF, "PC010"), (F_FLOWEST, "PC011"), (F_ALEREQ, "PC012"), (F_NORIGHTS, "PC013"),
)
_PACKET_RULE: Final = ((F_SELF, "PC010"), (F_ALEREQ, "PC012"))
#: flags -> the rules they make applicable, for all 16 combinations.
_RULES_OF: Final = tuple(
    tuple(rid for bit, rid in _FLAG_RULE if flags & bit) for flags in range(16)
)
_WHY: Final = {
    F_SELF: "a self-injected packet",
    F_FLOWEST: "ALE_FLOW_ESTABLISHED",
    F_ALEREQ: "an INBOUND_TRANSPORT packet that needs ALE classification",
    F_NORIGHTS: "a classify without the write right",
}
_PACKET_FLAGS: Final = F_SELF | F_ALEREQ
_PASSING: Final = (None, "PERMIT", "CONTINUE")  # None: the field is missing, skip
_KIND_CACHE: Final = LAYER_KINDS


def _returned(action: object, absorb: bool) -> str:
    return f"{action}{' with absorb' if absorb else ''}"


class _Classify:
    """An open classify with something to judge at its ``classify_done``."""

    __slots__ = (
        "clone",
        "clone_seq",
        "closure_handle",
        "ev",
        "kind",
        "pend",
        "pend_fail_seq",
        "pend_ok_seq",
        "reauth_of",
    )

    def __init__(self, ev: Event, kind: int) -> None:
        self.ev = ev
        self.kind = kind
        self.pend: PendRecord | None = None
        self.pend_ok_seq: int | None = None
        self.pend_fail_seq: int | None = None
        self.reauth_of: PendRecord | None = None  # the completion this reauth answers
        self.closure_handle: Handle | None = None  # pend_classify handle of a closure
        self.clone: Handle | None = None
        self.clone_seq: int | None = None


class PendMonitor(Monitor):
    """PC001-PC013: pended ALE operations, and what a classify's flags allow.

    It tracks every open classify (id -> event, dropped at its
    classify_done), the open ones with something to judge at their
    classify_done (a pend, a reauthorization answering a completion, an
    endpoint closure, a limiting flag), every outstanding pend by ctx, and,
    per live endpoint, its pends, so that an endpoint's closure can forget
    them. What must follow a completion is delegated to
    :class:`~harness.contract.pc_reauth.AfterCompletion`.
    """

    RULES = tuple(f"PC{n:03d}" for n in range(1, 14))

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        #: id -> classify event, for every classify whose classify_done is still to come.
        self._open: dict[object, Event] = {}
        #: id -> state of the open classifies with a pend, a reauth or a closure to judge.
        self._cls: dict[object, _Classify] = {}
        #: id -> F_* flags of the open classifies that PC010-PC013 judge.
        self._flags: dict[object, int] = {}
        self._touched: set[int] = set()  # flag combinations already made applicable
        #: packet -> id of the open flagged (F_SELF/F_ALEREQ) classify indicating it.
        self._flag_packet: dict[object, object] = {}
        #: packet -> id of an open, pendable RECV_ACCEPT classify (to attribute clones).
        self._recv_packet: dict[object, object] = {}
        #: ctx -> outstanding pend.
        self._pends: dict[object, PendRecord] = {}
        #: ctx -> completed pend (double completion); bounded, see the module docstring.
        self._done: dict[object, PendRecord] = {}
        #: endpoint -> ctx -> its pends, outstanding or completed, while it is live.
        self._by_ep: dict[object, dict[object, PendRecord]] = {}
        #: pend_classify handle of a pended closure -> (endpoint, closure classify id).
        self._closure_handles: dict[object, tuple[Handle, object]] = {}
        self._after = AfterCompletion(self.report, self.touch)

    # -- classifies --------------------------------------------------------------

    def on_classify(self, ev: Event) -> None:
        cid = ev.get("id")
        if cid is None:
            return
        self._open[cid] = ev
        layer = ev.get("layer")
        kind = _KIND_CACHE.get(layer)
        if kind is None:
            kind = layer_kind(layer)
        flags = F_NORIGHTS if ev.get("rights") is False else 0
        if ev.get("injection") in _SELF_INJECTION:
            flags |= F_SELF
        if kind:
            flags |= self._ale_classify(cid, ev, kind)
        if flags:
            if flags not in self._touched:
                self._touched.add(flags)
                self._applicable.update(_RULES_OF[flags])
            self._flags[cid] = flags
            if flags & _PACKET_FLAGS:
                packet = ev.get("packet")
                if packet is not None:
                    self._flag_packet[packet] = cid

    def _ale_classify(self, cid: object, ev: Event, kind: int) -> int:
        """A classify at a layer PC cares about; returns its layer's F_* flags."""
        if kind == K_FLOWEST:
            return F_FLOWEST
        if kind == K_INTRANS:
            return F_ALEREQ if ev.get("ale_required") is True else 0
        if kind == K_CLOSURE:
            if ev.get("endpoint") is not None:
                self._cls[cid] = _Classify(ev, kind)
            return 0
        if ev.get("reauth") is True:
            if kind == K_CONNECT:
                if self._after.await_reauth:
                    p = self._after.match_connect_reauth(ev)
                    if p is not None:
                        self._state(cid, ev).reauth_of = p
            elif kind == K_RECV and self._after.recv_done:
                self._after.recv_reauth(ev)
        if kind == K_RECV and ev.get("can_pend") is not False:
            packet = ev.get("packet")
            if packet is not None:
                self._recv_packet[packet] = cid
        return 0

    def _state(self, cid: object, ev: Event) -> _Classify:
        st = self._cls.get(cid)
        if st is None:
            st = self._cls[cid] = _Classify(ev, layer_kind(ev.get("layer")))
        return st

    def on_classify_done(self, ev: Event) -> None:
        cid = ev.get("id")
        cev = self._open.pop(cid, None)
        if cev is None:
            return
        if self._recv_packet:
            packet = cev.get("packet")
            if packet is not None and self._recv_packet.get(packet) == cid:
                del self._recv_packet[packet]
        if self._flags:
            flags = self._flags.pop(cid, 0)
            if flags:
                self._judge_outcome(cid, cev, ev, flags)
        if self._cls:
            st = self._cls.pop(cid, None)
            if st is not None:
                self._judge_done(cid, cev, st, ev)

    def _judge_done(self, cid: object, cev: Event, st: _Classify, ev: Event) -> None:
        """PC002, PC005, PC007 and closures, at the classify_done of ``st``."""
        seq: int = ev["seq"]
        action = ev.get("action")
        absorb = ev.get("absorb")
        if st.pend_ok_seq is not None:
            if (action is not None and action != "BLOCK") or absorb is False:
                absorbed = (
                    " with absorb" if absorb is True
                    else " without absorb" if absorb is False else ""
                )
                self.report(
                    "PC002",
                    f"classify {handle(cid)} pended an operation but returned "
                    f"{action}{absorbed}, not BLOCK with absorb",
                    st.pend_ok_seq, seq,
                )
        elif st.pend_fail_seq is not None and absorb is True:
            # A failed pend followed by a successful one in the same classify
            # leaves something to complete, so only a classify with no
            # successful pend is held to PC005.
            self.report(
                "PC005",
                f"classify {handle(cid)} absorbed although its pend_operation failed",
                st.pend_fail_seq, seq,
            )
        if st.reauth_of is not None:
            self._after.judge_reauth_done(st.reauth_of, cev["seq"], ev, cid)
        if st.kind == K_CLOSURE and st.closure_handle is None:
            self._closed(cev["endpoint"])

    def _judge_outcome(self, cid: object, cev: Event, ev: Event, flags: int) -> None:
        """PC010-PC013 at the classify_done of a flagged classify."""
        absorb = ev.get("absorb") is True
        action = ev.get("action")
        if flags & _PACKET_FLAGS:
            packet = cev.get("packet")
            if packet is not None and self._flag_packet.get(packet) == cid:
                del self._flag_packet[packet]
            if absorb or action not in _PASSING:
                for bit, rid in _PACKET_RULE:
                    if flags & bit:
                        self.report(
                            rid,
                            f"classify {handle(cid)} of {_WHY[bit]} returned "
                            f"{_returned(action, absorb)}, not PERMIT or CONTINUE without absorb",
                            cev["seq"], ev["seq"],
                        )
        if flags & F_FLOWEST and absorb:
            self.report(
                "PC011", f"classify {handle(cid)} at ALE_FLOW_ESTABLISHED absorbed",
                cev["seq"], ev["seq"],
            )
        if flags & F_NORIGHTS and (absorb or action == "PERMIT"):
            self.report(
                "PC013",
                f"classify {handle(cid)} without the write right returned "
                f"{_returned(action, absorb)}: only CONTINUE/NONE unchanged or a BLOCK veto, "
                "without absorb, is allowed",
                cev["seq"], ev["seq"],
            )

    def _flagged_call(self, cid: object, call: str, seq: int) -> None:
        """A pend (either kind) inside a flagged classify breaks each flag's rule."""
        flags = self._flags.get(cid)
        if not flags:
            return
        cseq: int = self._open[cid]["seq"]
        for bit, rid in _FLAG_RULE:
            if flags & bit:
                self.report(rid, f"{call} in classify {handle(cid)} of {_WHY[bit]}", cseq, seq)

    # -- pend and complete ---------------------------------------------------------

    def on_pend_operation(self, ev: Event) -> None:
        seq: int = ev["seq"]
        cid = ev.get("id")
        ctx = ev.get("ctx")
        status = ev.get("status")
        ok = succeeded(status)
        self.touch("PC001")
        cev = self._open.get(cid)
        st = None
        if cev is not None:
            st = self._state(cid, cev)
            self._judge_pend_call(st, cev, ev, ok)
            if self._flags:
                self._flagged_call(cid, "pend_operation", seq)
        if ctx is None or (status is not None and not ok):
            return
        p = PendRecord(ctx, seq, cid, cev)
        p.certain = ok
        if st is not None:
            st.pend = p
            if st.clone is not None and p.kind == K_RECV:
                p.clone, p.clone_seq = st.clone, st.clone_seq
                self._after.watch_clone(p)
        # A completion context handle may be reused once completed; a second
        # successful pend of an outstanding ctx is an engine fault no PC rule
        # names, and the newer pend is the one followed.
        old = self._done.pop(ctx, None) or self._pends.get(ctx)
        if old is not None:
            self._forget_by_ep(old)
        self._pends[ctx] = p
        if p.endpoint is not None:
            by_ep = self._by_ep.get(p.endpoint)
            if by_ep is None:
                self._by_ep[p.endpoint] = {ctx: p}
            else:
                by_ep[ctx] = p

    def _judge_pend_call(self, st: _Classify, cev: Event, ev: Event, ok: bool) -> None:
        """PC002-PC005 and PC007 inputs of a pend_operation made inside a known classify."""
        seq: int = ev["seq"]
        cseq: int = cev["seq"]
        cid = cev["id"]
        status = ev.get("status")
        self.touch("PC003")
        layer = cev.get("layer")
        wrong = []
        if layer is not None and st.kind not in PENDABLE:
            wrong.append(f"at {layer}")
        if cev.get("can_pend") is False:
            wrong.append("without can_pend")
        if wrong:
            self.report(
                "PC003",
                f"pend_operation ctx {handle(ev.get('ctx'))} in classify {handle(cid)} "
                + " and ".join(wrong),
                cseq, seq,
            )
        if cev.get("reauth") is True:
            self.touch("PC004")
            if status is not None and status != CANNOT_PEND:
                self.report(
                    "PC004",
                    f"pend_operation in reauthorization classify {handle(cid)} returned "
                    f"{status}, not STATUS_FWP_CANNOT_PEND",
                    cseq, seq,
                )
        if st.reauth_of is not None:
            self._after.pend_in_reauth(st.reauth_of, cseq, cid, seq)
        if ok:
            self.touch("PC002")
            if st.pend_ok_seq is None:
                st.pend_ok_seq = seq
        elif status is not None:
            self.touch("PC005")
            if st.pend_fail_seq is None:
                st.pend_fail_seq = seq

    def on_complete_operation(self, ev: Event) -> None:
        ctx = ev.get("ctx")
        if ctx is None:
            return
        seq: int = ev["seq"]
        self.touch("PC001")
        p = self._pends.pop(ctx, None)
        if p is None:
            first = self._done.get(ctx)
            if first is not None:
                self.report(
                    "PC001",
                    f"pend ctx {handle(ctx)} completed twice",
                    first.seq, first.complete_seq, seq,
                )
            else:
                self.report(
                    "PC001", f"complete_operation of ctx {handle(ctx)}, which was never pended",
                    seq,
                )
            return
        p.complete_seq = seq
        self._remember_done(p)
        self._after.completed(p, ev.get("packet"), seq)

    def _remember_done(self, p: PendRecord) -> None:
        done = self._done
        done[p.ctx] = p
        if len(done) > DONE_LIMIT:
            self._forget_by_ep(done.pop(next(iter(done))))

    def _forget_by_ep(self, p: PendRecord) -> None:
        by_ep = self._by_ep.get(p.endpoint)
        if by_ep is not None and by_ep.get(p.ctx) is p:
            del by_ep[p.ctx]
            if not by_ep:
                del self._by_ep[p.endpoint]

    def on_decision(self, ev: Event) -> None:
        ctx = ev.get("ctx")
        p = self._pends.get(ctx)
        if p is None:
            p = self._done.get(ctx)
            if p is None:
                return
        p.decision = ev.get("action")
        p.decision_seq = ev["seq"]

    # -- packets of a pended RECV_ACCEPT classify (PC009) ---------------------------------

    def on_clone(self, ev: Event) -> None:
        of = ev.get("of")
        if self._flag_packet:
            cid = self._flag_packet.get(of)
            if cid is not None:
                self._flagged_packet_call(cid, ev, "clone", _PACKET_RULE)
        if not self._recv_packet:
            return
        cid = self._recv_packet.get(of)
        packet = ev.get("packet")
        if cid is None or packet is None or not succeeded(ev.get("status")):
            return
        st = self._state(cid, self._open[cid])
        if st.clone is not None:
            return  # the first clone of the packet is the one kept for reinjection
        st.clone, st.clone_seq = packet, ev["seq"]
        p = st.pend
        if p is not None and p.clone is None and p.kind == K_RECV:
            p.clone, p.clone_seq = packet, ev["seq"]
            self._after.watch_clone(p)

    def on_inject(self, ev: Event) -> None:
        if self._flag_packet:
            cid = self._flag_packet.get(ev.get("packet"))
            if cid is not None:
                self._flagged_packet_call(cid, ev, "injection", ((F_ALEREQ, "PC012"),))
        if self._after.packets:
            self._after.injected(ev)

    def _flagged_packet_call(
        self, cid: object, ev: Event, call: str, rules: tuple[tuple[int, str], ...]
    ) -> None:
        """A clone or an injection of the packet of an open flagged classify."""
        flags = self._flags.get(cid, 0)
        cev = self._open[cid]
        for bit, rid in rules:
            if flags & bit:
                self.report(
                    rid,
                    f"{call} of packet {handle(cev.get('packet'))} during classify "
                    f"{handle(cid)} of {_WHY[bit]}",
                    cev["seq"], ev["seq"],
                )

    def on_free_clone(self, ev: Event) -> None:
        if self._after.packets:
            self._after.freed(ev)

    def on_policy_change(self, ev: Event) -> None:
        self._after.policy_change(ev.get("layer"))

    # -- endpoint closure ----------------------------------------------------------------

    def on_pend_classify(self, ev: Event) -> None:
        cid = ev.get("id")
        if self._flags:
            self._flagged_call(cid, "pend_classify", ev["seq"])
        if not self._cls:
            return
        st = self._cls.get(cid)
        handle_ = ev.get("handle")
        if st is None or st.kind != K_CLOSURE or handle_ is None:
            return
        if succeeded(ev.get("status")):
            st.closure_handle = handle_
            self._closure_handles[handle_] = (st.ev["endpoint"], cid)

    def on_complete_classify(self, ev: Event) -> None:
        if not self._closure_handles:
            return
        entry = self._closure_handles.pop(ev.get("handle"), None)
        if entry is None:
            return
        endpoint, cid = entry
        st = self._cls.get(cid)
        if st is not None:
            st.closure_handle = None  # completed inside the classify: it ends at classify_done
        else:
            self._closed(endpoint)

    def _closed(self, endpoint: object) -> None:
        self._after.closed(endpoint)
        if self._by_ep:
            by_ep = self._by_ep.pop(endpoint, None)
            if by_ep:
                done = self._done
                for ctx, p in by_ep.items():
                    if p.complete_seq is None:
                        p.closed = True  # nothing can reauthorize a closed endpoint
                    elif done.get(ctx) is p:
                        del done[ctx]

    def finish(self) -> None:
        for ctx, p in self._pends.items():
            if p.certain:
                self.report("PC001", f"pend ctx {handle(ctx)}{_pended_where(p)} was never "
                            "completed", p.cseq, p.seq)
        self._after.finish()


def _pended_where(p: PendRecord) -> str:
    """`` (pended in classify 2 at ALE_AUTH_CONNECT_V4, endpoint 4096)``, as far as known."""
    if p.cid is None:
        return ""
    at = [f"at {p.layer}"] if p.layer else []
    if p.endpoint is not None:
        at.append(f"endpoint {handle(p.endpoint)}")
    return f" (pended in classify {handle(p.cid)}{' ' + ', '.join(at) if at else ''})"


MONITORS: tuple[type[Monitor], ...] = (PendMonitor,)
