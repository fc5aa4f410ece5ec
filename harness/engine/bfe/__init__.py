"""The Base Filtering Engine (BFE) model: sessions, transactions and objects.

The documented contract (the BFE object management page and rules TX001-TX009, OB001-OB006) leaves
some behaviour open; the model decides it as follows.

- **Read-only transactions take the same exclusive lock.** The seed promises
  ACID semantics and one lock that a transaction "acquires"; readers that
  shared it would let a writer's wait depend on reader traffic that TX003 and
  TX009 cannot see in a trace. So every transaction, read-only or not, waits
  in the one FIFO queue and holds the lock alone; a read-only one is also
  bounded by the one-hour user-mode limit.
- **Implicit transactions** (an add or delete outside ``txn_begin``) take the
  lock for that one call and commit at once; they are never force-aborted.
  ``Session.add``/``delete`` are synchronous and cannot wait: when another
  session holds the lock they return FWP_E_TIMEOUT immediately.
  ``Session.add_wait``/``delete_wait`` return a Future and wait in the same
  FIFO queue as ``txn_begin``, for the session's wait timeout, then give
  FWP_E_TIMEOUT exactly at expiry.
- **After a forced abort** the transaction stays attached to its session as
  dead: ``txn_commit``, ``object_add``, ``object_delete`` and ``txn_begin``
  return FWP_E_TXN_ABORTED; ``txn_abort`` returns STATUS_SUCCESS and ends it;
  closing the session ends it too.
- **Dynamic sessions** make every object they add dynamic, whatever
  lifetime the object asked for. A dynamic session deletes only its own
  dynamic objects (OB005); a non-dynamic session may delete any session's.
  Closing a dynamic session deletes its objects and emits ``policy_change``
  for the filter layers that lost filters.
- A session whose call is waiting for the lock can still be closed (RPC
  rundown from another process): the waiting call returns
  FWP_E_SESSION_ABORTED. Any other call on it meanwhile is an EngineError.
"""

from harness.engine.bfe.engine import Bfe, CommitListener
from harness.engine.bfe.session import Session, Transaction

__all__ = ["Bfe", "CommitListener", "Session", "Transaction"]
