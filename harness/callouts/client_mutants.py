"""Client mutants: policy clients that break the client rules TX008 and TX009.

Each is a one-step deviation from a correct client in
``harness.engine.bfe.clients`` and takes the same arguments (``bfe`` first),
so a scenario can swap one for the other. The engine stays clean: only the
client's own rules may trip.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.callouts.registry import Mutant, build_registry
from harness.engine.bfe.clients import (
    OK,
    Policy,
    Process,
    add_all,
    contention,
    forced_abort_client,
    policy_client,
)
from harness.engine.bfe.engine import Bfe


def txn_left_open(
    bfe: Bfe,
    policy: Policy | None = None,
    *,
    start_s: float = 0.0,
    hold_s: float = 0.0,
    txn_wait_ms: int = 0,
    dynamic: bool = True,
    kernel: bool = False,
    keep_s: float = 0.0,
) -> Process:
    """policy_client that closes its session without committing or aborting.

    ``keep_s`` is accepted for signature parity and unused: the policy is
    never committed, so there is nothing to keep.
    """
    policy = policy or Policy(name="leaky")
    yield start_s
    session = bfe.open_session(dynamic=dynamic, txn_wait_ms=txn_wait_ms, kernel=kernel)
    status = yield session.txn_begin()
    if status == OK:
        add_all(session, policy.objects())
        if hold_s:
            yield hold_s
    session.close()  # the bug: the transaction is still open here
    return session.handle


def calls_after_txn_aborted(
    bfe: Bfe,
    policy: Policy | None = None,
    *,
    hold_s: float = 3700.0,
    kernel: bool = False,
) -> Process:
    """forced_abort_client that, told FWP_E_TXN_ABORTED, retries the add and the commit."""
    policy = policy or Policy(name="stubborn")
    objs = policy.objects()
    session = bfe.open_session(dynamic=True, kernel=kernel)
    status = yield session.txn_begin()
    if status != OK:
        session.close()
        return (session.handle, status)
    add_all(session, objs)
    yield hold_s
    status = session.txn_commit()
    if status != OK:
        # The bug: carrying on in a transaction BFE already killed.
        session.add(objs[-1])
        session.txn_commit()
        session.txn_abort()
    session.close()
    return (session.handle, status)


def hold_past_peer_timeout(
    bfe: Bfe,
    *,
    hold_s: float = 20.0,
    peer_delay_s: float = 0.5,
    holder_wait_ms: int = 0,
    peer_wait_ms: int = 0,
    holder_policy: Policy | None = None,
    peer_policy: Policy | None = None,
) -> Process:
    """contention whose holder keeps the lock past the peer's (default 15 s) timeout."""
    return (
        yield from contention(
            bfe,
            hold_s=hold_s,
            peer_delay_s=peer_delay_s,
            holder_wait_ms=holder_wait_ms,
            peer_wait_ms=peer_wait_ms,
            holder_policy=holder_policy,
            peer_policy=peer_policy,
        )
    )


#: The correct behaviour each mutant deviates from, by mutant name.
CORRECT_COUNTERPART: dict[str, Callable[..., Process]] = {
    "txn_left_open": policy_client,
    "calls_after_txn_aborted": forced_abort_client,
    "hold_past_peer_timeout": contention,
}

CLIENT_MUTANTS: dict[str, Mutant] = build_registry(
    (
        Mutant(
            "txn_left_open",
            ("TX008",),
            "closes its session while its transaction is still open",
            txn_left_open,
        ),
        Mutant(
            "calls_after_txn_aborted",
            ("TX008",),
            "keeps adding and committing after FWP_E_TXN_ABORTED instead of aborting",
            calls_after_txn_aborted,
        ),
        Mutant(
            "hold_past_peer_timeout",
            ("TX009",),
            "holds its transaction longer than a peer's wait timeout; the peer's begin fails",
            hold_past_peer_timeout,
        ),
    )
)

