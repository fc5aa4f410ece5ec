"""The BFE transaction lock as the TX checker sees it: who holds it, until when.

BFE serialises read-write work behind one lock. An explicit transaction holds
it from ``txn_begin`` until its commit, abort, forced abort or session close;
a user-mode holder must be force-aborted after 3600 s (TX004), and a hold
longer than a peer session's wait timeout makes that peer's ``txn_begin``
fail (TX009). :class:`Lock` keeps just what those two rules need, cheaply:

- the user-mode holders in begin order, which is deadline order because ``t``
  never decreases, so the next deadline is the first entry's (O(1));
- a heap of the open sessions' wait timeouts, so the smallest peer timeout
  at a ``txn_begin`` costs O(log n); closed sessions' entries are dropped
  lazily and swept once they are the majority, so the heap follows the
  number of open sessions, not of sessions ever opened.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict

from harness.contract.tx_model import SessionModel, Txn
from harness.trace.events import USER_TXN_LOCK_LIMIT_S

_INF = math.inf
_SWEEP_AFTER = 1024


class Lock:
    """Lock holders, their deadlines, and the peers' wait timeouts."""

    __slots__ = ("_sessions", "_stale", "_user", "_waits", "held", "next_deadline")

    def __init__(self, sessions: dict[object, SessionModel]) -> None:
        self._sessions = sessions
        #: every explicit transaction holding the lock, by begin seq
        self.held: dict[int, Txn] = {}
        #: user-mode holders in begin (= deadline) order
        self._user: OrderedDict[int, Txn] = OrderedDict()
        #: trace time after which the first user-mode holder is overdue
        self.next_deadline = _INF
        #: (wait ms, open seq, session) of sessions with a finite wait timeout
        self._waits: list[tuple[float, int, object]] = []
        self._stale = 0

    def _set_deadline(self) -> None:
        user = self._user
        self.next_deadline = (
            next(iter(user.values())).begin_t + USER_TXN_LOCK_LIMIT_S if user else _INF
        )

    def hold(self, txn: Txn) -> None:
        """``txn`` took the lock: note its deadline and its smallest peer timeout."""
        seq = txn.begin_seq
        self.held[seq] = txn
        if txn.kernel is False:
            self._user[seq] = txn
            if len(self._user) == 1:
                self._set_deadline()
        peer = self._min_peer(txn.session)
        if peer is not None:
            txn.peer_ms, txn.peer_seq, txn.peer_sid = peer

    def release(self, txn: Txn) -> None:
        """``txn`` no longer holds the lock."""
        txn.ended = True
        self.held.pop(txn.begin_seq, None)
        if self._user.pop(txn.begin_seq, None) is not None:
            self._set_deadline()

    def overdue(self, t: float) -> list[Txn]:
        """User-mode holders whose 3600 s ran out before ``t``; each is returned once."""
        user = self._user
        late: list[Txn] = []
        while user:
            txn = next(iter(user.values()))
            if txn.begin_t + USER_TXN_LOCK_LIMIT_S >= t:
                break
            user.popitem(last=False)
            txn.overdue = True
            late.append(txn)
        self._set_deadline()
        return late

    def session_opened(self, s: SessionModel) -> None:
        """A new peer for every current holder, and a candidate for later ones."""
        wait = s.wait_ms
        if wait == _INF:
            return
        heapq.heappush(self._waits, (wait, s.open_seq, s.sid))
        for txn in self.held.values():
            if txn.session != s.sid and (txn.peer_ms is None or wait < txn.peer_ms):
                txn.peer_ms, txn.peer_seq, txn.peer_sid = wait, s.open_seq, s.sid

    def session_gone(self, s: SessionModel) -> None:
        """``s`` closed (or was replaced): its heap entry is stale."""
        if s.wait_ms == _INF:
            return
        self._stale += 1
        if self._stale > _SWEEP_AFTER and self._stale * 2 > len(self._waits):
            self._waits = [e for e in self._waits if self._live(e)]
            heapq.heapify(self._waits)
            self._stale = 0

    def _live(self, entry: tuple[float, int, object]) -> bool:
        s = self._sessions.get(entry[2])
        return s is not None and s.open_seq == entry[1]

    def _min_peer(self, sid: object) -> tuple[float, int, object] | None:
        heap = self._waits
        mine: list[tuple[float, int, object]] = []
        found = None
        while heap:
            entry = heap[0]
            if not self._live(entry):
                heapq.heappop(heap)
                self._stale = max(0, self._stale - 1)
            elif entry[2] == sid:
                mine.append(heapq.heappop(heap))
            else:
                found = entry
                break
        for entry in mine:
            heapq.heappush(heap, entry)
        return found
