"""Well-behaved policy clients: processes the workload and scenarios spawn.

Each function returns a generator to run with
:func:`harness.engine.clock.spawn`; it drives BFE sessions the way a correct
user-mode service (or kernel-mode caller) does, and its trace passes every TX
and OB rule. The client mutants in ``harness.callouts.client_mutants`` are
small deviations from these, taking the same arguments.

A correct client checks every status: it gives up cleanly when ``txn_begin``
fails, aborts (never commits or keeps calling) once it has seen
FWP_E_TXN_ABORTED, and never closes its session with a transaction open.

- :func:`policy_client`: install a policy in one transaction, keep it, delete it;
- :func:`contention`: two clients on one lock, the hold within the peer's wait;
- :func:`forced_abort_client`: hold past the one-hour limit and handle the abort;
- :func:`guarantee_tour`: ask BFE for everything it must refuse, so that any
  BFE engine fault shows in the trace.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass

from harness.engine.bfe.builtins import SUBLAYERS as BUILTIN_SUBLAYERS
from harness.engine.bfe.engine import Bfe
from harness.engine.bfe.session import Session
from harness.engine.clock import spawn
from harness.engine.objects import (
    BfeObject,
    CalloutObject,
    Filter,
    FilterAction,
    Provider,
    ProviderContext,
    Sublayer,
)
from harness.trace.events import INFINITE_WAIT_MS

OK = "STATUS_SUCCESS"
Process = Generator[object, object, object]


@dataclass(frozen=True)
class Policy:
    """The objects one client installs: a provider, a sublayer, callouts and filters.

    ``callouts`` maps a run-time layer to the key of the callout its filter
    invokes (that key must be registered by the callout driver); layers
    without a callout get a plain ``action`` filter.
    """

    name: str = "policy"
    layers: tuple[str, ...] = ("ALE_AUTH_CONNECT_V4",)
    callouts: Mapping[str, str] | None = None
    action: FilterAction = "PERMIT"
    callout_action: FilterAction = "CALLOUT_TERMINATING"
    sublayer_weight: int = 0x100
    filter_weight: int = 10

    def objects(self) -> list[BfeObject]:
        """The objects in the order they must be added (referenced ones first)."""
        provider = f"{self.name}.provider"
        sublayer = f"{self.name}.sublayer"
        objs: list[BfeObject] = [
            Provider(key=provider),
            Sublayer(key=sublayer, provider=provider, weight=self.sublayer_weight),
        ]
        callouts = dict(self.callouts or {})
        for layer in self.layers:
            if layer in callouts:
                objs.append(CalloutObject(key=callouts[layer], layer=layer, provider=provider))
        for layer in self.layers:
            callout = callouts.get(layer)
            objs.append(
                Filter(
                    key=f"{self.name}.filter.{layer}",
                    provider=provider,
                    layer=layer,
                    sublayer=sublayer,
                    weight=self.filter_weight,
                    action=self.callout_action if callout else self.action,
                    callout=callout,
                )
            )
        return objs


def add_all(session: Session, objs: Sequence[BfeObject]) -> str:
    """Add objects in order inside the open transaction; the first failure's status."""
    for obj in objs:
        status = session.add(obj)
        if status != OK:
            return status
    return OK


def delete_all(session: Session, objs: Sequence[BfeObject]) -> str:
    """Delete objects in reverse order (referrers first); the first failure's status."""
    for obj in reversed(objs):
        status = session.delete(obj.type, obj.key)
        if status != OK:
            return status
    return OK


def in_transaction(
    session: Session, work: Sequence[BfeObject], *, delete: bool = False, hold_s: float = 0.0
) -> Generator[object, object, str]:
    """Begin, add (or delete) ``work``, hold for ``hold_s``, commit; abort on any failure.

    Returns the status that decided the outcome: the commit's, or the first
    failure's. This is the one place the clean abort-on-failure rule lives.
    """
    status = yield session.txn_begin()
    if status != OK:
        return str(status)  # nothing to end: the begin did not succeed
    status = delete_all(session, work) if delete else add_all(session, work)
    if status == OK and hold_s:
        yield hold_s
    if status != OK:
        session.txn_abort()
        return str(status)
    status = session.txn_commit()
    if status != OK:
        # A commit refused (FWP_E_TXN_ABORTED after a forced abort) still
        # leaves the transaction to end: abort is the only call allowed now.
        session.txn_abort()
    return status


def policy_client(
    bfe: Bfe,
    policy: Policy | None = None,
    *,
    start_s: float = 0.0,
    hold_s: float = 0.0,
    keep_s: float = 10.0,
    txn_wait_ms: int = 0,
    dynamic: bool = True,
    kernel: bool = False,
) -> Process:
    """Install a policy in one transaction, keep it ``keep_s``, then delete it.

    The session is dynamic by default, so the policy also disappears if the
    client dies; the client still deletes its objects itself before closing.
    Returns the session handle.
    """
    policy = policy or Policy()
    yield start_s
    session = bfe.open_session(dynamic=dynamic, txn_wait_ms=txn_wait_ms, kernel=kernel)
    objs = policy.objects()
    status = yield from in_transaction(session, objs, hold_s=hold_s)
    if status == OK:
        yield keep_s
        yield from in_transaction(session, objs, delete=True)
    session.close()
    return session.handle


def contention(
    bfe: Bfe,
    *,
    hold_s: float = 2.0,
    peer_delay_s: float = 0.5,
    holder_wait_ms: int = 0,
    peer_wait_ms: int = 5000,
    holder_policy: Policy | None = None,
    peer_policy: Policy | None = None,
) -> Process:
    """Two clients on one lock: a holder keeps its transaction ``hold_s``, a peer
    begins ``peer_delay_s`` later and waits up to ``peer_wait_ms``.

    Correct as long as the hold is shorter than the peer's wait timeout (TX009);
    the peer then gets the lock when the holder commits, after waiting
    ``hold_s - peer_delay_s``. Returns the two session handles.
    """
    holder = spawn(
        bfe.sched,
        policy_client(
            bfe,
            holder_policy or Policy(name="holder"),
            hold_s=hold_s,
            txn_wait_ms=holder_wait_ms,
            keep_s=1.0,
        ),
        label="bfe holder",
    )
    peer = spawn(
        bfe.sched,
        policy_client(
            bfe,
            peer_policy or Policy(name="peer", layers=("ALE_AUTH_RECV_ACCEPT_V4",)),
            start_s=peer_delay_s,
            txn_wait_ms=peer_wait_ms,
            keep_s=1.0,
        ),
        label="bfe peer",
    )
    first = yield holder
    second = yield peer
    return (first, second)


def forced_abort_client(
    bfe: Bfe,
    policy: Policy | None = None,
    *,
    hold_s: float = 3700.0,
    kernel: bool = False,
) -> Process:
    """Hold a transaction past the one-hour lock limit, then handle the outcome.

    A user-mode session is force-aborted at 3600 s: its commit gets
    FWP_E_TXN_ABORTED and the client aborts, as TX008 asks. A kernel-mode
    session is never forced and commits. Returns (session handle, commit status).
    """
    policy = policy or Policy(name="slow")
    session = bfe.open_session(dynamic=True, kernel=kernel)
    status = yield from in_transaction(session, policy.objects(), hold_s=hold_s)
    if status == OK:
        yield from in_transaction(session, policy.objects(), delete=True)
    session.close()
    return (session.handle, status)


def guarantee_tour(
    bfe: Bfe, *, prefix: str = "tour", layer: str = "ALE_AUTH_CONNECT_V4",
    forced_abort: bool = False,
) -> Process:
    """A correct client that asks BFE for everything it must refuse, and checks it.

    It walks through TX001-TX003, TX005-TX007 and OB001-OB006 (TX004 too with
    ``forced_abort``, which costs an hour of virtual time), each time ending
    with a call that makes the engine's state visible in the trace: after an
    abort or a dynamic session's close it adds the same key again, which a
    broken engine refuses with FWP_E_ALREADY_EXISTS. So every BFE engine
    fault trips its rule in any trace that contains this process, and a
    clean engine trips none; the client itself breaks no TX008/TX009 rule
    (its longest hold, 1.5 s, is shorter than its own peer's 2 s wait).
    Every implicit call waits for the lock, so it is safe beside other clients.
    """

    def key(name: str) -> str:
        return f"{prefix}.{name}"

    def flt(name: str, **kw: object) -> Filter:
        return Filter(key=key(name), layer=layer, **kw)  # type: ignore[arg-type]

    static = bfe.open_session(txn_wait_ms=INFINITE_WAIT_MS)
    dyn = bfe.open_session(dynamic=True, txn_wait_ms=INFINITE_WAIT_MS)
    other = bfe.open_session(dynamic=True, txn_wait_ms=INFINITE_WAIT_MS)

    # TX001, TX002: one transaction per session; commit/abort need one.
    if (yield static.txn_begin()) == OK:
        yield static.txn_begin()
        static.txn_commit()
    static.txn_commit()
    static.txn_abort()

    # TX003: a peer that may wait 2 s gets the lock after 1.25 s, not a timeout.
    peer = bfe.open_session(txn_wait_ms=2000)
    if (yield static.txn_begin()) == OK:
        waiting = spawn(bfe.sched, _begin_then_commit(peer, delay_s=0.25))
        yield 1.5
        static.txn_commit()
        yield waiting
    peer.close()

    # TX005: a read-only transaction refuses writes.
    if (yield static.txn_begin(read_only=True)) == OK:
        static.add(flt("read_only"))
        static.delete("filter", key("read_only"))
        static.txn_commit()

    # TX006: an aborted add leaves nothing; a failed add does not end the
    # transaction and the successful ones around it are committed.
    if (yield static.txn_begin()) == OK:
        static.add(flt("aborted"))
        static.txn_abort()
    yield from _add_then_delete(static, flt("aborted"))
    if (yield static.txn_begin()) == OK:
        static.add(flt("kept"))
        static.add(flt("dangling", sublayer=key("missing")))
        static.add(flt("kept_too"))
        static.txn_commit()
    yield static.delete_wait("filter", key("kept"))
    yield static.delete_wait("filter", key("kept_too"))

    # TX007: a closed dynamic session's objects are gone.
    closing = bfe.open_session(dynamic=True, txn_wait_ms=INFINITE_WAIT_MS)
    yield closing.add_wait(flt("dynamic"))
    closing.close()
    yield from _add_then_delete(static, flt("dynamic"))

    # OB001: static -> dynamic.  OB005: dynamic sessions and others' objects.
    yield dyn.add_wait(Provider(key=key("dyn_provider")))
    yield dyn.add_wait(flt("dyn_filter"))
    yield static.add_wait(flt("lifetime", provider=key("dyn_provider")))
    yield other.delete_wait("filter", key("dyn_filter"))
    yield static.add_wait(Provider(key=key("static_provider")))
    yield other.delete_wait("provider", key("static_provider"))

    # OB002: in use.  OB004: duplicate keys.
    yield static.add_wait(Sublayer(key=key("sublayer"), weight=1))
    yield static.add_wait(flt("user", sublayer=key("sublayer")))
    yield static.delete_wait("sublayer", key("sublayer"))
    yield static.add_wait(Provider(key=key("static_provider")))

    # OB003: built-ins.  OB006: missing references.
    builtin = BUILTIN_SUBLAYERS[-1][0]
    yield static.delete_wait("sublayer", builtin)
    yield static.add_wait(Sublayer(key=builtin))
    for bad in (
        flt("no_provider", provider=key("missing")),
        flt("no_sublayer", sublayer=key("missing")),
        flt("no_callout", callout=key("missing"), action="CALLOUT_TERMINATING"),
        flt("no_context", context=key("missing")),
        Filter(key=key("no_layer"), layer="NO_SUCH_LAYER"),
        ProviderContext(key=key("context"), provider=key("missing")),
    ):
        yield static.add_wait(bad)

    # Clean up, referrers first; under an engine fault more was accepted than
    # should have been, and goes too (in a clean run those deletes find nothing).
    for name in (
        "user", "lifetime", "no_provider", "no_sublayer", "no_callout", "no_context", "no_layer",
    ):
        yield static.delete_wait("filter", key(name))
    for obj_type, name in (
        ("provider_context", "context"), ("sublayer", "sublayer"),
        ("provider", "static_provider"),
    ):
        yield static.delete_wait(obj_type, key(name))
    for session in (other, dyn, static):
        session.close()
    if forced_abort:
        yield from forced_abort_client(bfe, Policy(name=key("slow"), layers=(layer,)))
    return None


def _begin_then_commit(session: Session, *, delay_s: float) -> Process:
    yield delay_s
    if (yield session.txn_begin()) == OK:
        session.txn_commit()
    return None


def _add_then_delete(session: Session, obj: BfeObject) -> Process:
    """Add an object (it must be possible again) and remove it."""
    if (yield session.add_wait(obj)) == OK:
        yield session.delete_wait(obj.type, obj.key)
    return None
