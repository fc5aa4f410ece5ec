"""Family PC, after a completion: what must follow ``complete_operation``.

Completing an ALE operation is not the end of it. At ALE_AUTH_CONNECT the
engine reauthorizes the connection and the driver must answer that
reauthorization with its final verdict (PC006, PC007); at
ALE_AUTH_RECV_ACCEPT the engine must not reauthorize (PC008), and the driver
decides the connection by reinjecting or dropping the packet it kept (PC009).
:class:`AfterCompletion` holds that state for :class:`harness.contract.pc.PendMonitor`,
which owns the pend lifecycle and calls in here; the shared pieces (layer
kinds, the pend record) live here so that both modules import them one way.

Where each rule is judged:

* PC006 when it becomes certain that no reauthorization follows: when the
  endpoint's closure completes, or at end of trace. A completion that comes
  after its endpoint's closure owes nothing (no classify may name a closed
  endpoint). The reauthorization that answers a completion is the next
  classify with ``reauth`` at ALE_AUTH_CONNECT (V4 or V6) of that endpoint
  and, where the events say, of the pending callout and the same remote
  address: the engine delivers the reauthorization to every callout at the
  layer, and only the pending callout's answers its pend.
* PC007 at that reauthorization's ``pend_operation`` (any attempt) and at its
  ``classify_done`` (a final PERMIT/BLOCK, equal to the ``decision`` recorded
  for the ctx by then).
* PC008 at a ``reauth`` classify at ALE_AUTH_RECV_ACCEPT of the endpoint of a
  completed RECV_ACCEPT pend, once per completion, unless a policy change at
  ALE_AUTH_RECV_ACCEPT (V4 or V6) came in between.
* PC009 at the ``inject`` or ``free_clone`` of the packet after the
  completion (the first ``inject`` decides, whatever its status: the driver
  chose the allow path, and a failed injection is PI003's business), or at
  end of trace when the packet was neither injected nor freed. Freeing the
  clone before completing drops the packet just as well and is accepted as
  the deny path; injecting it before completing is reported at the
  completion.

State is keyed by live handles only: a completion waiting for its
reauthorization is kept until the reauthorization arrives or the endpoint's
closure completes; a RECV_ACCEPT completion is remembered for PC008 until the
endpoint closes or a policy change at that layer makes a reauthorization
legitimate; a packet is watched for PC009 until it is injected or freed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from harness.contract.base import handle
from harness.trace.events import Event, layer_family

Handle = int | str
Report = Callable[..., None]

# Layer kinds: what the PC rules care about in a layer name (V4/V6 alike).
K_OTHER: Final = 0
K_CONNECT: Final = 1
K_RECV: Final = 2
K_ASSIGN: Final = 3
K_LISTEN: Final = 4
K_FLOWEST: Final = 5
K_INTRANS: Final = 6
K_CLOSURE: Final = 7

#: Layer kinds where FwpsPendOperation0 may be called (PC003).
PENDABLE: Final = frozenset({K_CONNECT, K_RECV, K_ASSIGN, K_LISTEN})

_FAMILY_KIND: Final = {
    "ALE_AUTH_CONNECT": K_CONNECT,
    "ALE_AUTH_RECV_ACCEPT": K_RECV,
    "ALE_RESOURCE_ASSIGNMENT": K_ASSIGN,
    "ALE_AUTH_LISTEN": K_LISTEN,
    "ALE_FLOW_ESTABLISHED": K_FLOWEST,
    "INBOUND_TRANSPORT": K_INTRANS,
    "ALE_ENDPOINT_CLOSURE": K_CLOSURE,
}
#: layer name -> kind, filled as names are met; read directly by hot handlers.
LAYER_KINDS: dict[object, int] = {}
_KIND_CACHE = LAYER_KINDS


def layer_kind(layer: object) -> int:
    """The PC kind of a layer name (``K_OTHER`` for anything the rules ignore)."""
    kind = _KIND_CACHE.get(layer)
    if kind is None:
        if type(layer) is not str:
            return K_OTHER
        kind = _FAMILY_KIND.get(layer_family(layer), K_OTHER)
        if len(_KIND_CACHE) < 4096:  # layer names are few; a hostile trace must not grow it
            _KIND_CACHE[layer] = kind
    return kind


def same(a: object, b: object) -> bool:
    """Two optional keys agree: equal, or one side does not say."""
    return a is None or b is None or a == b


class PendRecord:
    """One successful (or unconfirmed) ``pend_operation`` and what became of it."""

    __slots__ = (
        "callout", "certain", "cid", "clone", "clone_seq", "closed", "complete_seq", "cseq",
        "ctx", "decision", "decision_seq", "early", "early_seq", "endpoint", "kind", "layer",
        "remote", "seq",
    )

    def __init__(self, ctx: Handle, seq: int, cid: Handle | None, ev: Event | None) -> None:
        self.ctx = ctx
        self.seq = seq
        self.cid = cid
        self.certain = True  # False when the pend's status was missing
        self.closed = False  # its endpoint's closure completed before the completion
        if ev is None:
            self.kind: int = K_OTHER
            self.endpoint: Handle | None = None
            self.callout: Handle | None = None
            self.remote: str | None = None
            self.layer: str | None = None
            self.cseq: int | None = None
        else:
            self.layer = ev.get("layer")
            self.cseq = ev.get("seq")
            self.kind = layer_kind(ev.get("layer"))
            self.endpoint = ev.get("endpoint")
            self.callout = ev.get("callout")
            self.remote = ev.get("remote")
        self.complete_seq: int | None = None
        self.decision: str | None = None
        self.decision_seq: int | None = None
        self.clone: Handle | None = None  # clone made in the pended classify (PC009)
        self.clone_seq: int | None = None
        self.early: str | None = None  # "inject"/"free" of the clone before completion
        self.early_seq: int | None = None


class AfterCompletion:
    """PC006-PC009: the engine's and the driver's duties once a ctx is completed."""

    def __init__(self, report: Report, touch: Callable[..., None]) -> None:
        self._report = report
        self._touch = touch
        #: endpoint -> completions at ALE_AUTH_CONNECT still owed a reauthorization.
        self.await_reauth: dict[object, list[PendRecord]] = {}
        #: endpoint -> its last completion at ALE_AUTH_RECV_ACCEPT (PC008 window).
        self.recv_done: dict[object, PendRecord] = {}
        #: packet -> the RECV_ACCEPT pend whose packet it is (PC009).
        self.packets: dict[object, PendRecord] = {}

    # -- completion ------------------------------------------------------------

    def completed(self, p: PendRecord, packet: Handle | None, seq: int) -> None:
        """``p`` was just completed by the ``complete_operation`` at ``seq``."""
        if p.kind == K_CONNECT:
            self._touch("PC006")
            if p.endpoint is not None and not p.closed:
                waiting = self.await_reauth.get(p.endpoint)
                if waiting is None:
                    self.await_reauth[p.endpoint] = [p]
                else:
                    waiting.append(p)
        elif p.kind == K_RECV:
            self._touch("PC008")
            if p.endpoint is not None and not p.closed:
                self.recv_done[p.endpoint] = p
            self._packet_after_completion(p, packet, seq)

    def _packet_after_completion(self, p: PendRecord, given: Handle | None, seq: int) -> None:
        clone = p.clone
        packet = clone if given is None else given
        if clone is not None and packet != clone and self.packets.get(clone) is p:
            del self.packets[clone]  # the driver handed back another packet: judge that one
        if packet is None:
            return  # nothing was kept and nothing handed back: no packet to judge
        self._touch("PC009")
        if packet == clone and p.early is not None:
            if p.early == "free":
                self._judge_free(p, p.early_seq, packet)
            else:
                self._report(
                    "PC009",
                    f"packet {handle(packet)} of RECV_ACCEPT pend ctx {handle(p.ctx)} was "
                    "injected before the pend was completed",
                    p.early_seq, seq,
                )
            return
        self.packets[packet] = p

    def watch_clone(self, p: PendRecord) -> None:
        """The pended RECV_ACCEPT classify cloned its packet: watch the clone from now."""
        if p.clone is not None and p.complete_seq is None:
            self.packets[p.clone] = p

    # -- packet fate (PC009) ---------------------------------------------------

    def injected(self, ev: Event) -> None:
        p = self.packets.pop(ev.get("packet"), None)
        if p is None:
            return
        seq: int = ev["seq"]
        if p.complete_seq is None:
            p.early, p.early_seq = "inject", seq
            return
        kind = ev.get("kind")
        problems = []
        if kind is not None and kind != "transport_recv":
            problems.append(f"injected with {kind}, not transport_recv")
        decision_seq = None
        if p.decision == "BLOCK":
            problems.append("injected although the decision was BLOCK")
            decision_seq = p.decision_seq
        if problems:
            self._report(
                "PC009",
                f"packet {handle(ev.get('packet'))} of RECV_ACCEPT pend ctx {handle(p.ctx)}: "
                + "; ".join(problems),
                decision_seq, p.complete_seq, seq,
            )

    def freed(self, ev: Event) -> None:
        p = self.packets.pop(ev.get("packet"), None)
        if p is None:
            return
        seq: int = ev["seq"]
        if p.complete_seq is None:
            p.early, p.early_seq = "free", seq
            return
        self._judge_free(p, seq, ev.get("packet"))

    def _judge_free(self, p: PendRecord, seq: int | None, packet: object) -> None:
        if p.decision == "PERMIT":
            self._report(
                "PC009",
                f"packet {handle(packet)} of RECV_ACCEPT pend ctx {handle(p.ctx)} was freed "
                "without injection although the decision was PERMIT",
                p.decision_seq, p.complete_seq, seq,
            )

    # -- reauthorization (PC006-PC008) -----------------------------------------

    def match_connect_reauth(self, ev: Event) -> PendRecord | None:
        """A reauth classify at ALE_AUTH_CONNECT: the completion it answers, if any."""
        waiting = self.await_reauth.get(ev.get("endpoint"))
        if not waiting:
            return None
        callout = ev.get("callout")
        remote = ev.get("remote")
        for i, p in enumerate(waiting):  # almost always one entry
            # The reauthorization goes to every callout at the layer; the one
            # that answers this completion is the pending callout's.
            if same(p.callout, callout) and same(p.remote, remote):
                del waiting[i]
                if not waiting:
                    del self.await_reauth[ev.get("endpoint")]
                self._touch("PC007")
                return p
        return None

    def recv_reauth(self, ev: Event) -> None:
        """A reauth classify at ALE_AUTH_RECV_ACCEPT: caused by a completion? (PC008)."""
        p = self.recv_done.pop(ev.get("endpoint"), None)
        if p is not None:
            self._report(
                "PC008",
                f"completing RECV_ACCEPT pend ctx {handle(p.ctx)} caused a reauthorization "
                f"(classify {handle(ev.get('id'))}) of endpoint {handle(p.endpoint)}",
                p.complete_seq, ev["seq"],
            )

    def judge_reauth_done(
        self, p: PendRecord, classify_seq: int, ev: Event, cid: object
    ) -> None:
        """PC007: the verdict returned in the reauthorization that answers ``p``."""
        action = ev.get("action")
        if action is None:
            return
        final = action == "PERMIT" or action == "BLOCK"
        differs = p.decision is not None and action != p.decision
        if final and not differs:
            return
        why = [] if final else ["not a final PERMIT or BLOCK"]
        if differs:
            why.append(f"the decision for that ctx was {p.decision}")
        self._report(
            "PC007",
            f"reauthorization classify {handle(cid)} after completing connect pend ctx "
            f"{handle(p.ctx)} returned {action}: " + "; ".join(why),
            p.decision_seq if differs else None, p.complete_seq, classify_seq, ev["seq"],
        )

    def pend_in_reauth(self, p: PendRecord, classify_seq: int, cid: object, seq: int) -> None:
        self._report(
            "PC007",
            f"reauthorization classify {handle(cid)} after completing connect pend ctx "
            f"{handle(p.ctx)} tried to pend again",
            p.complete_seq, classify_seq, seq,
        )

    def policy_change(self, layer: object) -> None:
        # Reauthorizations after a policy change at RECV_ACCEPT are RA001's
        # business, so no earlier completion can be blamed for them any more.
        if self.recv_done and layer_kind(layer) == K_RECV:
            self.recv_done.clear()

    # -- endpoint closure and end of trace ---------------------------------------

    def closed(self, endpoint: object) -> None:
        """The endpoint's closure completed: no reauthorization can follow now."""
        if self.await_reauth:
            waiting = self.await_reauth.pop(endpoint, None)
            if waiting:
                for p in waiting:
                    self._no_reauth(p, "before its endpoint closed")
        if self.recv_done:
            self.recv_done.pop(endpoint, None)

    def _no_reauth(self, p: PendRecord, when: str) -> None:
        self._report(
            "PC006",
            f"no reauthorization at ALE_AUTH_CONNECT of endpoint {handle(p.endpoint)} "
            f"followed the completion of pend ctx {handle(p.ctx)} {when}",
            p.seq, p.complete_seq,
        )

    def finish(self) -> None:
        for waiting in self.await_reauth.values():
            for p in waiting:
                self._no_reauth(p, "by the end of the trace")
        for packet, p in self.packets.items():
            if p.complete_seq is None:
                continue  # never completed: PC001 reports the pend
            self._report(
                "PC009",
                f"packet {handle(packet)} of completed RECV_ACCEPT pend ctx {handle(p.ctx)} "
                "was neither injected nor freed",
                p.seq, p.clone_seq if packet == p.clone else None, p.complete_seq,
            )
