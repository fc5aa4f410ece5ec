"""The one BFE transaction lock: FIFO waiters, wait timeouts, exact virtual times.

BFE serialises every transaction, read-only ones included, on one global
lock (see ``harness.engine.bfe`` for why read-only transactions do not share
it). A session that asks for the lock while another holds it waits in FIFO
order for at most its wait timeout. Everything runs on the scheduler's virtual
clock, so a one-hour hold costs nothing and every wait ends at an exact time.

The lock knows nothing about sessions or events: an owner is any object, and
the caller is told by callback when a request is granted or has timed out,
with how long it waited. Granting happens synchronously inside ``release`` so
that the next owner's ``txn_begin`` lands in the trace right after the event
that freed the lock, at the same virtual instant.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.engine.clock import Scheduler, Timer
from harness.errors import EngineError

#: Callback told how long a request waited, in milliseconds.
WaitCallback = Callable[[float], None]


def deadline_after(start_s: float, wait_ms: float) -> float:
    """The first clock value at which ``wait_ms`` has fully elapsed since ``start_s``.

    ``start_s + wait_ms / 1000`` can land one float step short of the timeout
    (0.1 + 2.5 - 0.1 < 2.5), and a timeout reported even a rounding error early
    is what TX003 forbids; so step forward until the elapsed time, measured as
    a reader of the trace measures it, is not below the timeout.
    """
    due = start_s + wait_ms / 1000.0
    while (due - start_s) * 1000.0 < wait_ms:
        due = math.nextafter(due, math.inf)
    return due


def elapsed_ms(start_s: float, now_s: float) -> float:
    """Milliseconds from ``start_s`` to ``now_s``, rid of float noise below 1 ns.

    Without rounding, a grant at exactly the timeout can read 2500.0000000000005
    ms and look like a begin that waited longer than its timeout yet succeeded.
    """
    return round((now_s - start_s) * 1000.0, 6)


@dataclass(eq=False)
class LockRequest:
    """One queued request for the lock; ``cancel`` it to leave the queue."""

    owner: object
    start_s: float
    on_grant: WaitCallback
    on_timeout: WaitCallback
    timer: Timer | None = None
    done: bool = field(default=False)


class TxnLock:
    """A single exclusive lock with a FIFO queue of timed waiters."""

    def __init__(self, sched: Scheduler) -> None:
        self._sched = sched
        self.holder: object | None = None
        self._queue: deque[LockRequest] = deque()
        self._granting = False

    @property
    def free(self) -> bool:
        return self.holder is None

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def try_acquire(self, owner: object) -> bool:
        """Take the lock now if nobody holds it or waits for it; never queue."""
        if self.holder is None and not self._queue:
            self.holder = owner
            return True
        return False

    def request(
        self,
        owner: object,
        wait_ms: float,
        on_grant: WaitCallback,
        on_timeout: WaitCallback,
    ) -> LockRequest:
        """Ask for the lock, waiting at most ``wait_ms`` (``math.inf``: forever).

        When the lock is free ``on_grant(0.0)`` runs before this returns.
        Otherwise the request joins the back of the queue and exactly one of
        the callbacks runs later: ``on_grant`` when it reaches the head as the
        lock is released, ``on_timeout`` when the wait timeout has elapsed.
        """
        if owner is self.holder:
            raise EngineError(f"{owner!r} asked for the BFE lock it already holds")
        req = LockRequest(owner, self._sched.now, on_grant, on_timeout)
        if self.try_acquire(owner):
            req.done = True
            on_grant(0.0)
            return req
        if not math.isinf(wait_ms):
            due = deadline_after(req.start_s, wait_ms)
            req.timer = self._sched.call_at(
                due, lambda: self._expire(req), label=f"bfe lock wait {owner!r}"
            )
        self._queue.append(req)
        return req

    def cancel(self, req: LockRequest) -> None:
        """Withdraw a queued request (its owner went away); no callback runs."""
        if req.done:
            return
        req.done = True
        if req.timer is not None:
            req.timer.cancel()
        self._queue.remove(req)

    def release(self, owner: object) -> None:
        """Free the lock and hand it to the longest-waiting request, if any."""
        if owner is not self.holder:
            raise EngineError(f"{owner!r} released the BFE lock held by {self.holder!r}")
        self.holder = None
        # A grantee may release at once (an implicit transaction does), which
        # re-enters here; the loop below then grants the next one instead of
        # recursing once per waiter.
        if self._granting:
            return
        self._granting = True
        try:
            while self.holder is None and self._queue:
                req = self._queue.popleft()
                req.done = True
                if req.timer is not None:
                    req.timer.cancel()
                self.holder = req.owner
                req.on_grant(elapsed_ms(req.start_s, self._sched.now))
        finally:
            self._granting = False

    def _expire(self, req: LockRequest) -> None:
        if req.done:
            return
        req.done = True
        self._queue.remove(req)
        req.on_timeout(elapsed_ms(req.start_s, self._sched.now))
