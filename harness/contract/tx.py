"""Rule family TX (BFE sessions and transactions), and the monitor of OB too.

:class:`BfeMonitor` replays the policy-client calls of a trace against a
model of BFE (:mod:`harness.contract.tx_model`): open sessions, each one's
explicit transaction (lock hold, staged changes, whether the engine forced it
to abort), and the committed object store. TX rules are judged here; the OB
judges of :mod:`harness.contract.ob` run on the same model, so one monitor
owns both families (an object call's status can be explained by either).

Judging notes (decisions where rules.md leaves room):

- Only sessions whose successful ``session_open`` the trace shows are judged;
  calls from other sessions only update the store when they succeed.
- TX003 is judged from ``waited_ms`` against the session's wait timeout:
  FWP_E_TIMEOUT after waiting less is a violation, success after waiting more
  is one; exactly the timeout is fine either way. A timeout while no traced
  session held the lock is *not* judged: processes outside the trace (the
  firewall service, other tools) and implicit transactions of unknown length
  hold the same lock, so the trace cannot prove the lock was free.
- TX004 needs "now", but the monitor sees only policy-client events and
  ``policy_change`` (subscribing to every kind would slow every trace down):
  an overdue user-mode hold (no ``txn_forced_abort`` although ``t`` passed
  ``txn_begin`` + 3600 s) is found at the first of those events past the
  deadline, or at the transaction's own commit, abort or close. A session
  whose ``kernel`` field is absent is not judged for overdue holds.
- After ``txn_forced_abort`` every call in the transaction but ``txn_abort``
  must return FWP_E_TXN_ABORTED (a ``txn_begin`` may also return
  FWP_E_TXN_IN_PROGRESS); ``txn_abort`` then ends it, whatever it returns.
- A commit or abort that fails with a status the model does not decide
  leaves the transaction's fate unknown: it is dropped without evidence and
  the session's next transaction call is not judged by TX001/TX002.
- TX006/TX007 ``policy_change`` evidence: after an abort (or a close that
  aborted a transaction), a ``policy_change`` arriving before the next
  policy-client call at a layer that only the aborted transaction changed
  proves its change took effect. A layer with a committed change whose
  ``policy_change`` has not arrived yet is excluded, on the assumption that
  the engine reports a commit's policy changes after the commit's own event.
- TX008: a transaction still open at the end of the trace is reported (the
  scenario ended without committing or aborting it); after a call got
  FWP_E_TXN_ABORTED, the first further call other than ``txn_abort`` in that
  transaction is reported (once per transaction).
- TX009: a hold (begin to commit, abort, forced abort or close) longer than
  the smallest wait timeout of another session open at any time during it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

from harness.contract import ob
from harness.contract.base import Monitor, Sink, duration_ms, handle, seconds
from harness.contract.tx_lock import Lock
from harness.contract.tx_model import Obj, SessionModel, Store, Txn
from harness.trace.builtins import layer_name
from harness.trace.events import USER_TXN_LOCK_LIMIT_S, Event, wait_timeout_ms
from harness.trace.status import succeeded

TXN_IN_PROGRESS: Final = "FWP_E_TXN_IN_PROGRESS"
NO_TXN: Final = "FWP_E_NO_TXN_IN_PROGRESS"
TXN_ABORTED: Final = "FWP_E_TXN_ABORTED"
TIMEOUT: Final = "FWP_E_TIMEOUT"
INCOMPATIBLE_TXN: Final = "FWP_E_INCOMPATIBLE_TXN"

#: Statuses of txn_begin/commit/abort this model decides.
TXN_MODELLED: Final = frozenset({TXN_IN_PROGRESS, NO_TXN, TXN_ABORTED, TIMEOUT, INCOMPATIBLE_TXN})

_INF = math.inf


def _ms(value: float) -> str:
    return "infinite" if value == _INF else duration_ms(value)


class _Window:
    """Policy changes that would prove an abort let its staged changes through."""

    __slots__ = ("end_seq", "layers", "rule", "sid")

    def __init__(self, rule: str, sid: object, layers: dict[str, int | None], end_seq: int):
        self.rule = rule
        self.sid = sid
        self.layers = layers
        self.end_seq = end_seq


class BfeMonitor(Monitor):
    """Sessions, transactions, the lock and the object store (TX001-TX009, OB001-OB006)."""

    RULES = (
        "TX001", "TX002", "TX003", "TX004", "TX005", "TX006", "TX007", "TX008", "TX009",
        "OB001", "OB002", "OB003", "OB004", "OB005", "OB006",
    )

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self._sessions: dict[object, SessionModel] = {}
        self._store = Store()
        self._lock = Lock(self._sessions)
        self._window: _Window | None = None
        #: layers with a committed filter change whose policy_change is still due
        self._owed: dict[str, None] = {}

    def accept_header(self, header: dict[str, object]) -> None:
        objects = header.get("objects")
        if isinstance(objects, list):
            self.preload(o for o in objects if isinstance(o, dict))

    def preload(self, objects: Iterable[Mapping[str, object]]) -> None:
        """Objects that existed before the trace (a header's ``objects`` list)."""
        self._store.preload(objects)

    # -- time and the lock

    def _tick(self, ev: Event) -> None:
        """Report user-mode holds past their deadline; called once ``t`` passed the next."""
        t = ev["t"]
        for txn in self._lock.overdue(t):
            self.touch("TX004")
            self.report(
                "TX004",
                f"user-mode transaction of session {handle(txn.session)} still holds the lock "
                f"{seconds(t - txn.begin_t)} s after txn_begin without txn_forced_abort",
                txn.begin_seq, ev["seq"],
            )

    def _end_hold(self, txn: Txn, ev: Event) -> None:
        if txn.ended:
            return
        self._lock.release(txn)
        if txn.peer_ms is None:
            return
        self.touch("TX009")
        hold_ms = (ev["t"] - txn.begin_t) * 1000.0
        if hold_ms > txn.peer_ms:
            self.report(
                "TX009",
                f"session {handle(txn.session)} held its transaction {duration_ms(hold_ms)}, "
                f"longer than the {_ms(txn.peer_ms)} wait timeout of session "
                f"{handle(txn.peer_sid)}",
                txn.begin_seq, ev["seq"], txn.peer_seq,
            )

    # -- client bookkeeping (TX008)

    def _client_call(self, s: SessionModel, ev: Event) -> None:
        if s.aborted_seq is not None and not s.tx8_reported:
            s.tx8_reported = True
            self.report(
                "TX008",
                f"session {handle(s.sid)} called {ev['ev']} after FWP_E_TXN_ABORTED instead "
                "of aborting the transaction",
                s.aborted_seq, ev["seq"],
            )

    def _got_aborted(self, s: SessionModel, seq: int) -> None:
        self.touch("TX008")
        if s.aborted_seq is None:
            s.aborted_seq = seq

    def _abort_window(self, rule: str, txn: Txn, seq: int) -> None:
        if txn.layers:
            self._window = _Window(rule, txn.session, dict(txn.layers), seq)

    # -- sessions

    def on_session_open(self, ev: Event) -> None:
        if ev["t"] > self._lock.next_deadline:
            self._tick(ev)
        self._window = None
        sid = ev.get("session")
        if sid is None or not succeeded(ev.get("status")):
            return
        seq = ev["seq"]
        kernel = ev.get("kernel")
        s = SessionModel(
            sid, seq, bool(ev.get("dynamic")), kernel if isinstance(kernel, bool) else None,
            wait_timeout_ms(ev.get("txn_wait_ms")),
        )
        old = self._sessions.get(sid)
        if old is not None:
            # reopened without a close: forget the old one, unjudged
            if old.txn is not None:
                self._lock.release(old.txn)
            self._lock.session_gone(old)
        self._sessions[sid] = s
        self._lock.session_opened(s)

    def on_session_close(self, ev: Event) -> None:
        if ev["t"] > self._lock.next_deadline:
            self._tick(ev)
        self._window = None
        sid = ev.get("session")
        if sid is None:
            return
        seq = ev["seq"]
        s = self._sessions.pop(sid, None)
        if s is not None:
            self._lock.session_gone(s)
            self.touch("TX008")
            txn = s.txn
            if txn is not None and txn.forced_seq is None:
                self.touch("TX007")
                self.report(
                    "TX008",
                    f"session {handle(sid)} closed with the transaction it began still open",
                    txn.begin_seq, seq,
                )
                self._end_hold(txn, ev)
                self._store.discard(txn, "TX007", seq)
            if s.dynamic:
                self.touch("TX007")
        for layer in self._store.close_session(sid, seq):
            self._owed[layer] = None
        if s is not None and s.txn is not None and s.txn.forced_seq is None:
            self._abort_window("TX007", s.txn, seq)

    # -- transactions

    def on_txn_begin(self, ev: Event) -> None:
        if ev["t"] > self._lock.next_deadline:
            self._tick(ev)
        self._window = None
        s = self._sessions.get(ev.get("session"))
        status = ev.get("status")
        if s is None or status is None:
            return
        seq = ev["seq"]
        ok = succeeded(status)
        self._client_call(s, ev)
        txn = s.txn
        if txn is not None:
            self.touch("TX001")
            allowed = (TXN_IN_PROGRESS, TXN_ABORTED) if txn.forced_seq is not None else (
                TXN_IN_PROGRESS,)
            if status not in allowed and (ok or status in TXN_MODELLED):
                self.report(
                    "TX001",
                    f"txn_begin in session {handle(s.sid)}, which has a transaction in "
                    f"progress, returned {status}",
                    txn.begin_seq, seq,
                )
            if status == TXN_ABORTED:
                self._got_aborted(s, seq)
        else:
            if not s.unsure:
                self.touch("TX001")
                if status == TXN_IN_PROGRESS:
                    self.report(
                        "TX001",
                        f"txn_begin in session {handle(s.sid)} returned {status} with no "
                        "transaction in progress",
                        s.last_end, seq,
                    )
            if ok:
                self._begin(s, ev)
        waited = ev.get("waited_ms")
        if waited is not None and (ok or status == TIMEOUT):
            self.touch("TX003")
            limit = s.wait_ms
            if status == TIMEOUT and waited < limit:
                self.report(
                    "TX003",
                    f"txn_begin in session {handle(s.sid)} timed out after {duration_ms(waited)}, "
                    f"before its {_ms(limit)} wait timeout",
                    s.open_seq, seq,
                )
            elif ok and waited > limit:
                self.report(
                    "TX003",
                    f"txn_begin in session {handle(s.sid)} succeeded after waiting "
                    f"{duration_ms(waited)}, longer than its {_ms(limit)} wait timeout",
                    s.open_seq, seq,
                )

    def _begin(self, s: SessionModel, ev: Event) -> None:
        seq, t = ev["seq"], ev["t"]
        txn = Txn(s.sid, seq, t, bool(ev.get("read_only")), s.kernel)
        s.txn, s.unsure, s.aborted_seq, s.tx8_reported = txn, False, None, False
        self.touch("TX008")
        self._lock.hold(txn)

    def on_txn_commit(self, ev: Event) -> None:
        self._txn_end(ev, commit=True)

    def on_txn_abort(self, ev: Event) -> None:
        self._txn_end(ev, commit=False)

    def _txn_end(self, ev: Event, commit: bool) -> None:
        if ev["t"] > self._lock.next_deadline:
            self._tick(ev)
        self._window = None
        s = self._sessions.get(ev.get("session"))
        status = ev.get("status")
        if s is None or status is None:
            return
        seq, call = ev["seq"], ev["ev"]
        ok = succeeded(status)
        if commit:
            self._client_call(s, ev)
        txn = s.txn
        if txn is None:
            if s.unsure:
                s.unsure = False
                return
            self.touch("TX002")
            if status != NO_TXN and (ok or status in TXN_MODELLED):
                self.report(
                    "TX002",
                    f"{call} in session {handle(s.sid)} with no transaction in progress "
                    f"returned {status}",
                    s.last_end, seq,
                )
            return
        if txn.forced_seq is not None:
            if not commit:
                s.txn, s.aborted_seq, s.last_end = None, None, seq
                return
            self.touch("TX004")
            if status == TXN_ABORTED:
                self._got_aborted(s, seq)
            elif ok or status in TXN_MODELLED:
                self.report(
                    "TX004",
                    f"txn_commit in session {handle(s.sid)} after txn_forced_abort returned "
                    f"{status}",
                    txn.forced_seq, seq,
                )
            return
        self.touch("TX006")
        if ok:
            self._end_hold(txn, ev)
            if commit:
                for layer in self._store.commit(txn, seq):
                    self._owed[layer] = None
            else:
                self._store.discard(txn, "TX006", seq)
                self._abort_window("TX006", txn, seq)
            s.txn, s.aborted_seq, s.last_end = None, None, seq
            return
        if status == NO_TXN:
            if txn.failed_seq is not None:
                self.report(
                    "TX006",
                    f"{call} in session {handle(s.sid)} returned {status}: the failed call "
                    "inside the transaction ended it",
                    txn.begin_seq, txn.failed_seq, seq,
                )
            self._end_hold(txn, ev)
            txn.adds.clear()
            txn.dels.clear()
            s.txn, s.last_end = None, seq
        elif status == TXN_ABORTED:
            # The engine aborted it without a txn_forced_abort event: the client
            # must now abort, as after a forced abort.
            self._got_aborted(s, seq)
            self._end_hold(txn, ev)
            txn.adds.clear()
            txn.dels.clear()
            txn.forced_seq = seq
        else:
            self._end_hold(txn, ev)
            txn.adds.clear()
            txn.dels.clear()
            s.txn, s.unsure = None, True

    def on_txn_forced_abort(self, ev: Event) -> None:
        self._window = None
        s = self._sessions.get(ev.get("session"))
        if s is not None:
            self._forced(s, ev)
        if ev["t"] > self._lock.next_deadline:
            self._tick(ev)

    def _forced(self, s: SessionModel, ev: Event) -> None:
        seq = ev["seq"]
        self.touch("TX004")
        txn = s.txn
        if txn is None:
            if not s.unsure:
                self.report(
                    "TX004",
                    f"txn_forced_abort of session {handle(s.sid)} with no transaction in "
                    "progress (implicit transactions are never forced)",
                    s.last_end, seq,
                )
            return
        if txn.forced_seq is not None:
            return
        held = ev["t"] - txn.begin_t
        if txn.kernel:
            self.report(
                "TX004",
                f"txn_forced_abort of kernel-mode session {handle(s.sid)}'s transaction",
                txn.begin_seq, seq,
            )
        elif held < USER_TXN_LOCK_LIMIT_S:
            self.report(
                "TX004",
                f"txn_forced_abort of session {handle(s.sid)}'s transaction after "
                f"{seconds(held)} s, before the {seconds(USER_TXN_LOCK_LIMIT_S)} s lock limit",
                txn.begin_seq, seq,
            )
        txn.forced_seq = seq
        self._end_hold(txn, ev)
        self._store.discard(txn, "TX006", seq)
        self._abort_window("TX006", txn, seq)

    # -- objects

    def on_object_add(self, ev: Event) -> None:
        self._object_call(ev, add=True)

    def on_object_delete(self, ev: Event) -> None:
        self._object_call(ev, add=False)

    def _object_call(self, ev: Event, add: bool) -> None:
        if ev["t"] > self._lock.next_deadline:
            self._tick(ev)
        self._window = None
        sid = ev.get("session")
        status = ev.get("status")
        s = self._sessions.get(sid)
        if s is None or s.unsure:
            if succeeded(status):
                self._apply_unjudged(ev, sid, add)
            return
        if s.aborted_seq is not None:
            self._client_call(s, ev)
        txn = s.txn
        store = self._store
        judge = ob.judge_add if add else ob.judge_delete
        j = judge(store, txn, s, ev, self._applicable)
        if j is None:
            return
        if txn is not None and (txn.forced_seq is not None or txn.read_only):
            verb = "added" if add else "deleted"
            what = f"{j.key[0]} {handle(j.key[1])}"
            if txn.forced_seq is not None:
                self.touch("TX004")
                j.cond(ob.Cond(
                    "TX004", frozenset((TXN_ABORTED,)),
                    f"session {handle(sid)} {verb} {what} in a transaction the engine forced "
                    "to abort", (txn.forced_seq,),
                ))
            if txn.read_only:
                self.touch("TX005")
                j.cond(ob.Cond(
                    "TX005", frozenset((INCOMPATIBLE_TXN,)),
                    f"session {handle(sid)} {verb} {what} inside a read-only transaction",
                    (txn.begin_seq,),
                ))
        if status is None:
            return
        seq = ev["seq"]
        conds = j.conds
        if succeeded(status):
            for c in conds:
                self.report(c.rule, f"{c.message}, and it succeeded", *c.seqs, seq)
            for f in j.if_ok:
                self.report(f.rule, f.message, *f.seqs, seq)
            if txn is None or (txn.forced_seq is None and not txn.read_only):
                self._apply(j, txn, seq, add)
            return
        if status == TXN_ABORTED:
            self._got_aborted(s, seq)
        if txn is not None and txn.forced_seq is None:
            txn.failed_seq = seq
        if status not in ob.MODELLED or any(status in c.codes for c in conds):
            return
        if conds:
            for c in conds:
                want = " or ".join(sorted(c.codes))
                self.report(c.rule, f"{c.message}: returned {status}, not {want}", *c.seqs, seq)
            return
        found = (
            ob.converse_add(store, txn, j, status) if add else ob.converse_delete(j, s, status)
        )
        for f in found:
            self.report(f.rule, f.message, *f.seqs, seq)

    def _apply(self, j: ob.Judgement, txn: Txn | None, seq: int, add: bool) -> None:
        store, obj = self._store, j.obj
        if add:
            if obj is None:
                return
            if txn is not None:
                store.stage_add(txn, obj)
                return
            store.insert(obj)
        else:
            if obj is None:
                store.ghosts.pop(j.key, None)
                return
            if txn is not None:
                store.stage_delete(txn, obj, seq)
                return
            store.remove(j.key)
            store.ghost(j.key, "TX006", (seq,))
        if obj.layer is not None:
            self._owed[obj.layer] = None

    def _apply_unjudged(self, ev: Event, sid: object, add: bool) -> None:
        """A successful call from a session the model does not know: the store follows it."""
        otype, key = ev.get("type"), ev.get("key")
        if not isinstance(otype, str) or key is None:
            return
        store = self._store
        if not add:
            store.remove((otype, key))
            return
        lifetime = ev.get("lifetime") or "static"
        layer = ev.get("layer")
        store.insert(Obj(
            (otype, key), lifetime, sid if lifetime == "dynamic" else None,
            key if otype == "provider" else ev.get("provider"),
            layer=layer_name(layer) if otype == "filter" and isinstance(layer, str) else None,
            add_seq=ev["seq"],
        ))

    # -- engine notifications

    def on_policy_change(self, ev: Event) -> None:
        if ev["t"] > self._lock.next_deadline:
            self._tick(ev)
        layer = ev.get("layer")
        if not isinstance(layer, str):
            return
        layer = layer_name(layer)
        if layer in self._owed:
            del self._owed[layer]
            return
        w = self._window
        if w is None or layer not in w.layers:
            return
        first = w.layers.pop(layer)
        self.report(
            w.rule,
            f"policy_change at {layer} after session {handle(w.sid)}'s transaction was "
            "aborted: its change there took effect",
            first, w.end_seq, ev["seq"],
        )

    def finish(self) -> None:
        for s in self._sessions.values():
            txn = s.txn
            if txn is not None and txn.forced_seq is None:
                self.report(
                    "TX008",
                    f"session {handle(s.sid)}'s transaction was never committed or aborted "
                    "(end of trace)",
                    txn.begin_seq,
                )


MONITORS: tuple[type[Monitor], ...] = (BfeMonitor,)
