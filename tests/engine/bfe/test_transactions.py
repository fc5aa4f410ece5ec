"""Sessions and transactions: the lock, its timeouts, forced aborts, atomicity."""

from __future__ import annotations

from collections.abc import Callable, Generator

import pytest

from harness.engine.bfe import Session
from harness.errors import EngineError
from harness.trace.events import INFINITE_WAIT_MS, USER_TXN_LOCK_LIMIT_S
from tests.engine.bfe.helpers import (
    CONNECT,
    OK,
    Env,
    add_ok,
    filt,
    make_env,
    provider,
)

Proc = Generator[object, object, object]


def hold(session: Session, hold_s: float, *, start_s: float = 0.0) -> Proc:
    """Begin at ``start_s``, keep the transaction ``hold_s``, commit."""
    yield start_s
    status = yield session.txn_begin()
    assert status == OK
    yield hold_s
    return session.txn_commit()


def begin_at(session: Session, start_s: float, *, read_only: bool = False) -> Proc:
    yield start_s
    status = yield session.txn_begin(read_only)
    return status


# -- sessions ----------------------------------------------------------------


def test_sessions_get_unique_handles_and_an_open_event(env: Env) -> None:
    sessions = [env.bfe.open_session(dynamic=i % 2 == 0, txn_wait_ms=i) for i in range(4)]
    assert len({s.handle for s in sessions}) == 4
    opened = env.events("session_open")
    assert [e["session"] for e in opened] == [s.handle for s in sessions]
    assert [e["txn_wait_ms"] for e in opened] == [0, 1, 2, 3]
    assert all(e["status"] == OK and e["kernel"] is False for e in opened)


@pytest.mark.parametrize("bad", [-1, INFINITE_WAIT_MS + 1, 1.5, True])
def test_wait_timeout_out_of_range_is_refused(env: Env, bad: object) -> None:
    with pytest.raises(EngineError, match="txn_wait_ms"):
        env.bfe.open_session(txn_wait_ms=bad)  # type: ignore[arg-type]


def test_closed_session_refuses_calls(env: Env) -> None:
    s = env.bfe.open_session()
    s.close()
    with pytest.raises(EngineError, match="closed"):
        s.txn_begin()
    with pytest.raises(EngineError, match="closed"):
        s.close()


# -- waiting for the lock ----------------------------------------------------


@pytest.mark.parametrize(
    ("txn_wait_ms", "effective_ms"), [(0, 15000.0), (2500, 2500.0), (1, 1.0)]
)
def test_begin_times_out_exactly_at_the_wait_timeout(
    env: Env, txn_wait_ms: int, effective_ms: float
) -> None:
    holder = env.bfe.open_session()
    waiter = env.bfe.open_session(txn_wait_ms=txn_wait_ms)
    env.spawn(hold(holder, 100.0))
    start_s = 0.1  # an awkward float start: the deadline must not round early
    result = env.spawn(begin_at(waiter, start_s))
    env.sched.run()
    assert result.value == "FWP_E_TIMEOUT"
    ev = env.last("txn_begin")
    assert ev["session"] == waiter.handle and ev["status"] == "FWP_E_TIMEOUT"
    assert ev["waited_ms"] == effective_ms
    assert (ev["t"] - start_s) * 1000 >= effective_ms
    assert ev["t"] == pytest.approx(start_s + effective_ms / 1000)


def test_infinite_wait_outlasts_a_kernel_holder(env: Env) -> None:
    holder = env.bfe.open_session(kernel=True)
    waiter = env.bfe.open_session(txn_wait_ms=INFINITE_WAIT_MS)
    env.spawn(hold(holder, 7200.0))
    result = env.spawn(begin_at(waiter, 1.0))
    env.sched.run()
    assert result.value == OK
    ev = env.last("txn_begin")
    assert ev["session"] == waiter.handle
    assert ev["t"] == 7200.0 and ev["waited_ms"] == 7199000.0


def test_infinite_wait_is_served_by_a_forced_abort(env: Env) -> None:
    holder = env.bfe.open_session()
    waiter = env.bfe.open_session(txn_wait_ms=INFINITE_WAIT_MS)
    assert env.begin_now(holder) == OK
    result = env.spawn(begin_at(waiter, 10.0))
    env.sched.run(until_s=5000.0)
    assert result.value == OK
    forced = env.last("txn_forced_abort")
    granted = env.last("txn_begin")
    assert granted["seq"] > forced["seq"] and granted["t"] == forced["t"]
    assert granted["waited_ms"] == pytest.approx((USER_TXN_LOCK_LIMIT_S - 10.0) * 1000)


def commit_later(session: Session) -> Callable[[], None]:
    def commit() -> None:
        session.txn_commit()

    return commit


def test_waiting_exactly_the_timeout_is_either_outcome_never_longer() -> None:
    outcomes = set()
    for seed in range(30):
        env = make_env(seed=seed)
        holder = env.bfe.open_session()
        waiter = env.bfe.open_session(txn_wait_ms=5000)
        assert env.begin_now(holder) == OK
        env.sched.call_at(5.0, commit_later(holder))
        result = waiter.txn_begin()
        env.sched.run()
        ev = env.last("txn_begin")
        assert ev["session"] == waiter.handle
        assert ev["waited_ms"] == 5000.0 and ev["t"] == 5.0
        assert result.value == ev["status"]
        outcomes.add(ev["status"])
    # Commit and expiry fall on one instant; the seed picks which runs first.
    assert outcomes == {OK, "FWP_E_TIMEOUT"}


def test_waiters_get_the_lock_in_fifo_order(env: Env) -> None:
    a, b, c = (env.bfe.open_session(txn_wait_ms=60000) for _ in range(3))
    env.spawn(hold(a, 3.0))
    env.spawn(hold(b, 1.0, start_s=1.0))
    env.spawn(hold(c, 1.0, start_s=2.0))
    env.sched.run()
    begins = [e for e in env.events("txn_begin")]
    assert [e["session"] for e in begins] == [a.handle, b.handle, c.handle]
    assert [e["t"] for e in begins] == [0.0, 3.0, 4.0]
    assert [e["waited_ms"] for e in begins] == [0.0, 2000.0, 2000.0]


def test_read_only_transactions_do_not_share_the_lock(env: Env) -> None:
    reader = env.bfe.open_session()
    other = env.bfe.open_session(txn_wait_ms=1000)
    assert env.begin_now(reader, read_only=True) == OK
    result = env.spawn(begin_at(other, 0.0, read_only=True))
    env.sched.run(until_s=10.0)
    assert result.value == "FWP_E_TIMEOUT"


# -- one transaction per session, commit and abort without one ---------------


def test_second_begin_in_a_session_fails_and_keeps_the_first(env: Env) -> None:
    s = env.bfe.open_session()
    assert env.begin_now(s) == OK
    assert env.begin_now(s) == "FWP_E_TXN_IN_PROGRESS"
    assert env.last("txn_begin")["waited_ms"] == 0.0
    add_ok(s, provider())
    assert s.txn_commit() == OK
    assert env.bfe.committed("provider", "p") is not None


@pytest.mark.parametrize("call", ["txn_commit", "txn_abort"])
def test_commit_or_abort_without_a_transaction(env: Env, call: str) -> None:
    s = env.bfe.open_session()
    assert getattr(s, call)() == "FWP_E_NO_TXN_IN_PROGRESS"
    assert env.last(call)["status"] == "FWP_E_NO_TXN_IN_PROGRESS"
    assert env.begin_now(s) == OK
    assert s.txn_commit() == OK
    assert getattr(s, call)() == "FWP_E_NO_TXN_IN_PROGRESS"


# -- forced abort --------------------------------------------------------------


def start_then_sleep(session: Session, start_s: float, sleep_s: float) -> Proc:
    yield start_s
    assert (yield session.txn_begin()) == OK
    session.add(provider("held"))
    yield sleep_s
    return None


def test_user_transaction_is_forced_off_the_lock_at_3600_s(env: Env) -> None:
    s = env.bfe.open_session()
    start_s = 0.7
    env.spawn(start_then_sleep(s, start_s, 4000.0))
    env.sched.run()
    (forced,) = env.events("txn_forced_abort")
    assert forced["session"] == s.handle
    assert forced["t"] - start_s >= USER_TXN_LOCK_LIMIT_S
    assert forced["t"] == pytest.approx(start_s + USER_TXN_LOCK_LIMIT_S)
    assert env.bfe.lock.free
    assert env.bfe.committed("provider", "held") is None


def test_calls_after_a_forced_abort(env: Env) -> None:
    s = env.bfe.open_session()
    assert env.begin_now(s) == OK
    env.sched.run(until_s=3601.0)
    assert s.force_aborted
    assert s.add(provider()) == "FWP_E_TXN_ABORTED"
    assert s.delete("provider", "p") == "FWP_E_TXN_ABORTED"
    assert s.txn_commit() == "FWP_E_TXN_ABORTED"
    assert env.begin_now(s) == "FWP_E_TXN_ABORTED"
    assert s.txn_abort() == OK
    assert not s.in_transaction
    assert env.begin_now(s) == OK
    assert env.bfe.committed("provider", "p") is None


def test_the_lock_is_free_for_others_after_a_forced_abort(env: Env) -> None:
    s = env.bfe.open_session()
    other = env.bfe.open_session()
    assert env.begin_now(s) == OK
    env.sched.run(until_s=3600.5)
    assert env.begin_now(other) == OK


def test_kernel_transactions_are_never_forced(env: Env) -> None:
    s = env.bfe.open_session(kernel=True)
    assert env.begin_now(s) == OK
    add_ok(s, provider())
    env.sched.run(until_s=10 * USER_TXN_LOCK_LIMIT_S)
    assert env.events("txn_forced_abort") == []
    assert s.txn_commit() == OK
    assert env.bfe.committed("provider", "p") is not None


def test_committing_before_the_limit_cancels_the_forced_abort(env: Env) -> None:
    s = env.bfe.open_session()
    env.run(hold(s, USER_TXN_LOCK_LIMIT_S - 1.0))
    env.sched.run(until_s=3 * USER_TXN_LOCK_LIMIT_S)
    assert env.events("txn_forced_abort") == []


# -- read-only -----------------------------------------------------------------


def test_read_only_transaction_refuses_writes_but_commits(env: Env) -> None:
    writer = env.bfe.open_session()
    add_ok(writer, provider())
    s = env.bfe.open_session()
    assert env.begin_now(s, read_only=True) == OK
    assert s.add(provider("q")) == "FWP_E_INCOMPATIBLE_TXN"
    assert s.delete("provider", "p") == "FWP_E_INCOMPATIBLE_TXN"
    assert env.last("object_delete")["status"] == "FWP_E_INCOMPATIBLE_TXN"
    assert s.txn_commit() == OK
    assert env.bfe.committed("provider", "q") is None
    assert env.bfe.committed("provider", "p") is not None


# -- atomicity ---------------------------------------------------------------------


def test_changes_take_effect_only_on_commit(env: Env) -> None:
    s = env.bfe.open_session()
    assert env.begin_now(s) == OK
    add_ok(s, provider(), filt(provider="p"))
    assert env.bfe.committed_filters(CONNECT) == []
    assert env.bfe.committed("provider", "p") is None
    assert s.txn_commit() == OK
    assert [f.key for f in env.bfe.committed_filters(CONNECT)] == ["f"]


def test_abort_undoes_adds_and_deletes(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, provider("old"), filt("old"))
    assert env.begin_now(s) == OK
    add_ok(s, provider(), filt(provider="p"))
    assert s.delete("filter", "old") == OK
    assert s.delete("provider", "old") == OK
    assert s.txn_abort() == OK
    assert [f.key for f in env.bfe.committed_filters(CONNECT)] == ["old"]
    assert env.bfe.committed("provider", "old") is not None
    assert env.bfe.committed("provider", "p") is None


def test_a_failed_operation_does_not_end_the_transaction(env: Env) -> None:
    s = env.bfe.open_session()
    assert env.begin_now(s) == OK
    add_ok(s, filt("f1"), filt("f2"), filt("f3"))
    assert s.add(filt("f4", sublayer="missing")) == "FWP_E_SUBLAYER_NOT_FOUND"
    assert s.in_transaction
    add_ok(s, filt("f5"))
    assert s.txn_commit() == OK
    keys = [f.key for f in env.bfe.committed_filters(CONNECT)]
    assert keys == ["f1", "f2", "f3", "f5"]


# -- implicit transactions ------------------------------------------------------


def test_an_implicit_transaction_commits_at_once(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, filt())
    assert [f.key for f in env.bfe.committed_filters(CONNECT)] == ["f"]
    assert env.events("txn_begin") == [] and env.bfe.lock.free
    assert s.delete("filter", "f") == OK
    assert env.bfe.committed_filters(CONNECT) == []


def test_a_synchronous_implicit_call_cannot_wait_for_a_held_lock(env: Env) -> None:
    holder = env.bfe.open_session()
    s = env.bfe.open_session()
    assert env.begin_now(holder) == OK
    assert s.add(filt()) == "FWP_E_TIMEOUT"
    assert s.delete("filter", "f") == "FWP_E_TIMEOUT"
    assert env.bfe.committed_filters(CONNECT) == []


def add_later(session: Session, start_s: float) -> Proc:
    yield start_s
    status = yield session.add_wait(filt())
    return status


def test_a_waiting_implicit_call_queues_behind_the_holder(env: Env) -> None:
    holder = env.bfe.open_session()
    s = env.bfe.open_session(txn_wait_ms=10000)
    env.spawn(hold(holder, 4.0))
    result = env.spawn(add_later(s, 1.0))
    env.sched.run()
    assert result.value == OK
    add = env.last("object_add")
    assert add["t"] == 4.0 and add["seq"] > env.last("txn_commit")["seq"]
    assert [f.key for f in env.bfe.committed_filters(CONNECT)] == ["f"]


def test_a_waiting_implicit_call_times_out_at_the_wait_timeout(env: Env) -> None:
    holder = env.bfe.open_session()
    s = env.bfe.open_session(txn_wait_ms=2000)
    env.spawn(hold(holder, 30.0))
    result = env.spawn(add_later(s, 1.0))
    env.sched.run()
    assert result.value == "FWP_E_TIMEOUT"
    assert env.events("object_add")[0]["t"] == 3.0


# -- closing ---------------------------------------------------------------------


def test_close_aborts_the_open_transaction_and_frees_the_lock(env: Env) -> None:
    s = env.bfe.open_session()
    waiter = env.bfe.open_session(txn_wait_ms=60000)
    assert env.begin_now(s) == OK
    add_ok(s, provider(), filt())
    result = env.spawn(begin_at(waiter, 0.0))
    env.sched.run(until_s=2.0)
    s.close()
    env.sched.run(until_s=3.0)
    assert result.value == OK
    assert env.events("txn_abort") == []  # the client never called abort
    assert env.bfe.committed("provider", "p") is None
    assert env.bfe.committed_filters(CONNECT) == []


def test_closing_a_dynamic_session_deletes_only_its_objects(env: Env) -> None:
    mine = env.bfe.open_session(dynamic=True)
    other = env.bfe.open_session(dynamic=True)
    static = env.bfe.open_session()
    add_ok(mine, provider("m"), filt("mf", provider="m"))
    add_ok(other, filt("of"))
    add_ok(static, filt("sf"))
    before = len(env.events("policy_change"))
    mine.close()
    assert env.bfe.committed("provider", "m") is None
    assert {f.key for f in env.bfe.committed_filters(CONNECT)} == {"of", "sf"}
    changes = env.events("policy_change")[before:]
    assert [e["layer"] for e in changes] == [CONNECT]
    assert changes[0]["seq"] > env.last("session_close")["seq"]


def test_closing_a_waiting_session_abandons_its_begin(env: Env) -> None:
    holder = env.bfe.open_session()
    waiter = env.bfe.open_session(txn_wait_ms=60000)
    env.spawn(hold(holder, 10.0))
    result = env.spawn(begin_at(waiter, 1.0))
    env.sched.run(until_s=4.0)
    with pytest.raises(EngineError, match="waiting"):
        waiter.add(provider())
    waiter.close()
    env.sched.run(until_s=4.0)
    assert result.value == "FWP_E_SESSION_ABORTED"
    assert env.last("txn_begin")["waited_ms"] == 3000.0
    env.sched.run()
    assert env.bfe.lock.free
    assert [e["session"] for e in env.events("txn_begin", status=OK)] == [holder.handle]
