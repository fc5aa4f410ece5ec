"""The Base Filtering Engine model: sessions, the lock, the store, policy changes.

:class:`Bfe` is what the rest of the engine model holds. The filter engine
reads committed policy from it (``committed_filters``, ``sublayer_weight``)
and learns of changes through commit listeners; policy clients open sessions
on it. Everything a client call does is in ``session``; this class owns what
sessions share.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.engine.bfe.lock import TxnLock
from harness.engine.bfe.session import Session
from harness.engine.bfe.store import ObjectStore
from harness.engine.bfe.validate import Validator
from harness.engine.clock import Scheduler
from harness.engine.faults import FAULTS
from harness.engine.objects import BfeObject, Filter
from harness.errors import EngineError
from harness.trace.events import INFINITE_WAIT_MS
from harness.trace.writer import TraceWriter

CommitListener = Callable[[set[str]], None]


class Bfe:
    """BFE on a scheduler, writing its policy-client events to ``writer``.

    ``faults`` may hold any engine fault names (the network-side ones are
    ignored here); the BFE-side ones each break one TX or OB guarantee.
    """

    def __init__(
        self, sched: Scheduler, writer: TraceWriter, faults: frozenset[str] = frozenset()
    ) -> None:
        unknown = sorted(set(faults) - FAULTS.keys())
        if unknown:
            raise EngineError(f"unknown engine fault {unknown[0]!r}")
        self.sched = sched
        self.writer = writer
        self.faults = frozenset(faults)
        self.store = ObjectStore()
        self.validator = Validator(self.store, self.faults)
        self.lock = TxnLock(sched)
        self.sessions: dict[int, Session] = {}
        self._listeners: list[CommitListener] = []
        self._next_handle = 1

    # -- for the filter engine ----------------------------------------------

    def committed_filters(self, layer: str) -> list[Filter]:
        """The committed filters at a run-time layer (``ALE_AUTH_CONNECT_V4``).

        Staged changes of open transactions are never visible here.
        """
        return self.store.filters_at(layer)

    def sublayer_weight(self, key: str) -> int:
        """A committed sublayer's weight; 0 for a key naming none (reachable only
        under the ``dangling_reference_accepted`` or ``delete_in_use`` faults)."""
        return self.store.sublayer_weight(key)

    def add_commit_listener(self, fn: CommitListener) -> None:
        """Call ``fn(layers)`` whenever committed filters changed at ``layers``.

        That is after a commit, an implicit transaction, or the close of a
        dynamic session that changed filters; the ``policy_change`` events for
        those layers are already written when ``fn`` runs.
        """
        self._listeners.append(fn)

    def committed(self, obj_type: str, key: str) -> BfeObject | None:
        """The committed object of a type and key, built-ins included."""
        return self.store.committed.get((obj_type, key))

    # -- for policy clients ---------------------------------------------------

    def open_session(
        self, dynamic: bool = False, txn_wait_ms: int = 0, kernel: bool = False
    ) -> Session:
        """FwpmEngineOpen0: a new session with a unique integer handle.

        ``txn_wait_ms`` is how long ``txn_begin`` waits for the lock: 0 means
        the default 15000 ms, 4294967295 (INFINITE) means forever.
        """
        if isinstance(txn_wait_ms, bool) or not isinstance(txn_wait_ms, int):
            raise EngineError(f"txn_wait_ms must be an integer, got {txn_wait_ms!r}")
        if not 0 <= txn_wait_ms <= INFINITE_WAIT_MS:
            raise EngineError(
                f"txn_wait_ms must be between 0 and {INFINITE_WAIT_MS}, got {txn_wait_ms}"
            )
        handle = self._next_handle
        self._next_handle += 1
        session = Session(self, handle, dynamic=dynamic, txn_wait_ms=txn_wait_ms, kernel=kernel)
        self.sessions[handle] = session
        self.writer.emit(
            "session_open",
            session=handle,
            dynamic=dynamic,
            txn_wait_ms=txn_wait_ms,
            kernel=kernel,
            status="STATUS_SUCCESS",
        )
        return session

    # -- shared by sessions -----------------------------------------------------

    def publish(self, layers: set[str]) -> None:
        """Announce committed filter changes: one ``policy_change`` per layer, then listeners."""
        if not layers:
            return
        for layer in sorted(layers):
            self.writer.emit("policy_change", layer=layer)
        for fn in list(self._listeners):
            fn(set(layers))

    def drop_dynamic(self, handle: int) -> set[str]:
        """Delete a closed dynamic session's committed objects; return the changed layers.

        BFE does this itself, without the lock: nothing else can refer to or
        delete those objects (OB001, OB005), so no open transaction notices.
        """
        return self.store.remove_committed(self.store.owned_by(handle))
