"""A BFE client session: its transaction, its calls, and what each call returns.

This is the client API the workload and the scenario processes drive
(``FwpmEngineOpen0`` ... ``FwpmEngineClose0``), one method per call, each
emitting its policy-client event with the status it returns. The rules on
*whether* an object may be added or deleted live in ``validate``; this module
decides *when* calls run: inside the session's explicit transaction, or in an
implicit transaction that needs the global lock.

Calls are synchronous, except the ones that may wait for the lock, which
return a :class:`~harness.engine.clock.Future` a process ``yield``s:
``status = yield session.txn_begin()``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.engine.bfe.lock import LockRequest, deadline_after, elapsed_ms
from harness.engine.bfe.store import View
from harness.engine.bfe.validate import OK, Caller
from harness.engine.clock import Future, Timer
from harness.engine.objects import BfeObject, CalloutObject, Filter
from harness.errors import EngineError
from harness.trace.events import OBJECT_TYPES, USER_TXN_LOCK_LIMIT_S, wait_timeout_ms
from harness.trace.status import succeeded

if TYPE_CHECKING:
    from harness.engine.bfe.engine import Bfe

#: An operation run against a view: it emits its event and returns its status.
Run = Callable[[View], str]
#: The same operation failing before it ran: emits its event with that status.
Fail = Callable[[str], str]


@dataclass(eq=False)
class Transaction:
    """An explicit transaction: its staged changes and whether BFE killed it."""

    read_only: bool
    begin_s: float
    view: View
    forced: bool = False
    timer: Timer | None = None


class Session:
    """One open BFE session; create it with :meth:`Bfe.open_session`."""

    def __init__(
        self, bfe: Bfe, handle: int, *, dynamic: bool, txn_wait_ms: int, kernel: bool
    ) -> None:
        self._bfe = bfe
        self.handle = handle
        self.dynamic = dynamic
        self.txn_wait_ms = txn_wait_ms
        self.kernel = kernel
        self.closed = False
        self._txn: Transaction | None = None
        # A call waiting for the lock, and how to end it if the session closes.
        self._pending: tuple[LockRequest, Callable[[float], None]] | None = None

    def __repr__(self) -> str:
        return f"<Session {self.handle}>"

    @property
    def wait_ms(self) -> float:
        """The effective lock wait: 15000 for 0, ``math.inf`` for INFINITE."""
        return wait_timeout_ms(self.txn_wait_ms)

    @property
    def in_transaction(self) -> bool:
        """True from a successful ``txn_begin`` until commit, abort or close."""
        return self._txn is not None

    @property
    def force_aborted(self) -> bool:
        return self._txn is not None and self._txn.forced

    # -- transactions -------------------------------------------------------

    def txn_begin(self, read_only: bool = False) -> Future:
        """FwpmTransactionBegin0: resolves with the status once the lock is taken or not.

        The ``txn_begin`` event is emitted when the future resolves, with
        ``waited_ms``. A session whose transaction BFE force-aborted gets
        FWP_E_TXN_ABORTED until it calls ``txn_abort`` (see the package docs).
        """
        self._check_usable()
        bfe = self._bfe
        done = Future()
        txn = self._txn
        if txn is not None:
            if txn.forced:
                status = "FWP_E_TXN_ABORTED"
            elif "nested_txn_allowed" in bfe.faults:
                status = OK  # the fault: the open transaction simply carries on
            else:
                status = "FWP_E_TXN_IN_PROGRESS"
            done.resolve(self._emit_begin(read_only, 0.0, status))
            return done

        def granted(waited_ms: float) -> None:
            self._pending = None
            self._start_txn(read_only)
            done.resolve(self._emit_begin(read_only, waited_ms, OK))

        def gave_up(waited_ms: float) -> None:
            self._pending = None
            done.resolve(self._emit_begin(read_only, waited_ms, "FWP_E_TIMEOUT"))

        def abandoned(waited_ms: float) -> None:
            done.resolve(self._emit_begin(read_only, waited_ms, "FWP_E_SESSION_ABORTED"))

        wait_ms = self.wait_ms
        if "early_txn_timeout" in bfe.faults and not math.isinf(wait_ms):
            wait_ms /= 2
        req = bfe.lock.request(self, wait_ms, granted, gave_up)
        if not req.done:
            self._pending = (req, abandoned)
        return done

    def txn_commit(self) -> str:
        """FwpmTransactionCommit0: make the staged changes take effect at once."""
        self._check_usable()
        bfe = self._bfe
        txn = self._txn
        if txn is None:
            status = OK if "commit_without_txn" in bfe.faults else "FWP_E_NO_TXN_IN_PROGRESS"
            return self._emit("txn_commit", status)
        if txn.forced:
            # The dead transaction stays until the client aborts it (TX004, TX008).
            return self._emit("txn_commit", "FWP_E_TXN_ABORTED")
        self._end_txn(txn)
        changed = bfe.store.apply(txn.view)
        self._emit("txn_commit", OK)
        bfe.publish(changed)
        bfe.lock.release(self)
        return OK

    def txn_abort(self) -> str:
        """FwpmTransactionAbort0: drop the staged changes.

        After a forced abort this is how the client acknowledges it: it
        succeeds and ends the dead transaction (the lock is already free).
        """
        self._check_usable()
        bfe = self._bfe
        txn = self._txn
        if txn is None:
            status = OK if "commit_without_txn" in bfe.faults else "FWP_E_NO_TXN_IN_PROGRESS"
            return self._emit("txn_abort", status)
        self._end_txn(txn)
        if txn.forced:
            return self._emit("txn_abort", OK)
        changed = bfe.store.apply(txn.view) if "abort_keeps_changes" in bfe.faults else set()
        self._emit("txn_abort", OK)
        bfe.publish(changed)
        bfe.lock.release(self)
        return OK

    def _start_txn(self, read_only: bool) -> None:
        bfe = self._bfe
        txn = Transaction(read_only, bfe.sched.now, bfe.store.view())
        # Only user-mode explicit transactions are bounded (the BFE object management page): the
        # limit is infinite for kernel-mode callers, implicit ones never end
        # up here.
        if not self.kernel and "no_forced_abort" not in bfe.faults:
            due = deadline_after(txn.begin_s, USER_TXN_LOCK_LIMIT_S * 1000.0)
            txn.timer = bfe.sched.call_at(
                due, lambda: self._force_abort(txn), label=f"bfe forced abort {self.handle}"
            )
        self._txn = txn

    def _force_abort(self, txn: Transaction) -> None:
        if self._txn is not txn or txn.forced:
            return
        txn.forced = True
        txn.timer = None
        txn.view = self._bfe.store.view()  # staged changes are gone for good
        self._bfe.writer.emit("txn_forced_abort", session=self.handle)
        self._bfe.lock.release(self)

    def _end_txn(self, txn: Transaction) -> None:
        self._txn = None
        if txn.timer is not None:
            txn.timer.cancel()
            txn.timer = None

    # -- objects -------------------------------------------------------------

    def find(self, obj_type: str, key: str) -> BfeObject | None:
        """The object of a type and key as this session sees it: staged in its open
        transaction, else committed (a filter's ``filter_id`` is what Fwpm*Add0 returns)."""
        view = self._txn.view if self._txn is not None else self._bfe.store.view()
        return view.get((obj_type, key))

    def filter_key(self, filter_id: int) -> str | None:
        """The key of the filter with run-time id ``filter_id`` as this session sees it."""
        view = self._txn.view if self._txn is not None else self._bfe.store.view()
        for obj in view.values():
            if isinstance(obj, Filter) and obj.filter_id == filter_id:
                return obj.key
        return None

    def add(self, obj: BfeObject) -> str:
        """Fwpm*Add0: add ``obj`` in the open transaction, or in an implicit one.

        An implicit transaction needs the lock. A synchronous call cannot wait
        for it, so when another session holds the lock this returns
        FWP_E_TIMEOUT at once; processes that should wait use :meth:`add_wait`.
        """
        run, fail = self._add_op(obj)
        return self._call_now(run, fail)

    def delete(self, obj_type: str, key: str) -> str:
        """Fwpm*DeleteByKey0; like :meth:`add` as to transactions and the lock."""
        run, fail = self._delete_op(obj_type, key)
        return self._call_now(run, fail)

    def add_wait(self, obj: BfeObject) -> Future:
        """:meth:`add` whose implicit transaction waits for the lock, in FIFO order
        with ``txn_begin`` callers, for at most the session's wait timeout."""
        run, fail = self._add_op(obj)
        return self._call_waiting(run, fail)

    def delete_wait(self, obj_type: str, key: str) -> Future:
        """:meth:`delete` whose implicit transaction waits for the lock."""
        run, fail = self._delete_op(obj_type, key)
        return self._call_waiting(run, fail)

    def _add_op(self, obj: BfeObject) -> tuple[Run, Fail]:
        self._check_usable()
        stamped = self._stamp(obj)
        bfe = self._bfe

        def run(view: View) -> str:
            status = bfe.validator.check_add(view, stamped)
            stored = stamped
            if status == OK:
                if isinstance(stored, Filter):
                    stored = dataclasses.replace(stored, filter_id=bfe.store.next_filter_id())
                view.put(stored)
            return self._emit_add(stored, status)

        return run, lambda status: self._emit_add(stamped, status)

    def _delete_op(self, obj_type: str, key: str) -> tuple[Run, Fail]:
        self._check_usable()
        if obj_type not in OBJECT_TYPES:
            raise EngineError(f"unknown BFE object type {obj_type!r}; expected {OBJECT_TYPES}")
        bfe = self._bfe
        caller = Caller(self.handle, self.dynamic)

        def fail(status: str) -> str:
            return self._emit("object_delete", status, type=obj_type, key=key)

        def run(view: View) -> str:
            status = bfe.validator.check_delete(view, caller, obj_type, key)
            if status == OK:
                view.remove((obj_type, key))
            return fail(status)

        return run, fail

    def _stamp(self, obj: BfeObject) -> BfeObject:
        """The object as BFE stores it: its effective lifetime and owning session."""
        if obj.lifetime == "boottime" and obj.type != "filter":
            raise EngineError(f"{obj.type} {obj.key!r}: only filters can be boot-time")
        if self.dynamic:
            # Seed 003: an object is dynamic exactly when added through a
            # dynamic session, whatever flags it was given.
            return dataclasses.replace(obj, lifetime="dynamic", session=self.handle)
        if obj.lifetime == "dynamic":
            raise EngineError(
                f"{obj.type} {obj.key!r} asks for a dynamic lifetime from non-dynamic "
                f"session {self.handle}; open the session with dynamic=True"
            )
        return dataclasses.replace(obj, session=None)

    def _in_txn(self, txn: Transaction, run: Run, fail: Fail) -> str:
        if txn.forced:
            return fail("FWP_E_TXN_ABORTED")
        if txn.read_only and "write_in_read_only_txn" not in self._bfe.faults:
            return fail("FWP_E_INCOMPATIBLE_TXN")
        return run(txn.view)

    def _run_implicit(self, run: Run) -> str:
        """Run one operation as its own transaction; the caller holds the lock."""
        bfe = self._bfe
        view = bfe.store.view()
        status = run(view)
        changed = bfe.store.apply(view) if succeeded(status) else set()
        bfe.publish(changed)
        bfe.lock.release(self)
        return status

    def _call_now(self, run: Run, fail: Fail) -> str:
        if self._txn is not None:
            return self._in_txn(self._txn, run, fail)
        if self._bfe.lock.try_acquire(self):
            return self._run_implicit(run)
        return fail("FWP_E_TIMEOUT")

    def _call_waiting(self, run: Run, fail: Fail) -> Future:
        done = Future()
        if self._txn is not None:
            done.resolve(self._in_txn(self._txn, run, fail))
            return done

        def granted(_waited_ms: float) -> None:
            self._pending = None
            done.resolve(self._run_implicit(run))

        def gave_up(_waited_ms: float) -> None:
            self._pending = None
            done.resolve(fail("FWP_E_TIMEOUT"))

        req = self._bfe.lock.request(self, self.wait_ms, granted, gave_up)
        if not req.done:
            self._pending = (req, lambda _w: done.resolve(fail("FWP_E_SESSION_ABORTED")))
        return done

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        """FwpmEngineClose0: abort the open transaction, drop a dynamic session's objects.

        No ``txn_abort`` event is written for the implicit abort: that event
        records a client call, and a client that closes with a transaction
        open is exactly what TX008 reports.
        """
        if self.closed:
            raise EngineError(f"session {self.handle} is already closed")
        bfe = self._bfe
        if self._pending is not None:
            # Closed from another process (RPC rundown) while a call waited.
            req, abandon = self._pending
            self._pending = None
            bfe.lock.cancel(req)
            abandon(elapsed_ms(req.start_s, bfe.sched.now))
        self.closed = True
        txn = self._txn
        holding = txn is not None and not txn.forced
        if txn is not None:
            self._end_txn(txn)
        bfe.writer.emit("session_close", session=self.handle)
        if self.dynamic and "dynamic_objects_survive_close" not in bfe.faults:
            bfe.publish(bfe.drop_dynamic(self.handle))
        if holding:
            bfe.lock.release(self)

    # -- events ---------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.closed:
            raise EngineError(f"session {self.handle} is closed")
        if self._pending is not None:
            raise EngineError(
                f"session {self.handle} already has a call waiting for the BFE lock; "
                "a session serves one call at a time"
            )

    def _emit(self, ev: str, status: str, **fields: object) -> str:
        self._bfe.writer.emit(ev, session=self.handle, **fields, status=status)
        return status

    def _emit_begin(self, read_only: bool, waited_ms: float, status: str) -> str:
        return self._emit("txn_begin", status, read_only=read_only, waited_ms=waited_ms)

    def _emit_add(self, obj: BfeObject, status: str) -> str:
        fields: dict[str, object] = {"type": obj.type, "key": obj.key, "lifetime": obj.lifetime}
        # Absent references are left out: the trace format has no null handles.
        if obj.provider is not None and obj.type != "provider":
            fields["provider"] = obj.provider
        if isinstance(obj, CalloutObject):
            fields["layer"] = obj.layer
            if obj.context is not None:
                fields["context"] = obj.context
        elif isinstance(obj, Filter):
            fields["layer"] = obj.layer
            fields["sublayer"] = obj.sublayer
            if obj.callout is not None:
                fields["callout"] = obj.callout
            if obj.context is not None:
                fields["context"] = obj.context
            fields["action"] = obj.action
            fields["weight"] = obj.weight
        return self._emit("object_add", status, **fields)
