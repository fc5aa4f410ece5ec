"""The transaction lock on its own: exact deadlines, FIFO grants, cancellation."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.engine.bfe.lock import TxnLock, deadline_after, elapsed_ms
from harness.engine.clock import Scheduler
from harness.errors import EngineError


@given(
    start_s=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    wait_ms=st.integers(min_value=1, max_value=4294967294),
)
def test_deadline_is_never_early_and_never_a_step_late(start_s: float, wait_ms: int) -> None:
    due = deadline_after(start_s, wait_ms)
    assert (due - start_s) * 1000.0 >= wait_ms
    assert elapsed_ms(start_s, due) == pytest.approx(wait_ms, abs=1e-3)
    earlier = math.nextafter(due, -math.inf)
    # Either the plain sum was not early, or one float step less would be.
    assert due == start_s + wait_ms / 1000.0 or (earlier - start_s) * 1000.0 < wait_ms


def test_elapsed_ms_hides_float_noise() -> None:
    assert elapsed_ms(0.1, 0.1 + 2.5) == 2500.0


def record(log: list[tuple[str, str, float]], who: str) -> tuple[object, object]:
    return (
        lambda waited: log.append((who, "granted", waited)),
        lambda waited: log.append((who, "timeout", waited)),
    )


def test_grants_in_request_order_and_times_out_the_impatient() -> None:
    sched = Scheduler(0)
    lock = TxnLock(sched)
    log: list[tuple[str, str, float]] = []
    lock.request("a", 10.0, *record(log, "a"))  # type: ignore[arg-type]
    lock.request("b", math.inf, *record(log, "b"))  # type: ignore[arg-type]
    lock.request("c", 500.0, *record(log, "c"))  # type: ignore[arg-type]
    lock.request("d", 5000.0, *record(log, "d"))  # type: ignore[arg-type]
    sched.run(until_s=1.0)
    lock.release("a")
    sched.run(until_s=2.0)
    lock.release("b")
    assert log == [
        ("a", "granted", 0.0),
        ("c", "timeout", 500.0),
        ("b", "granted", 1000.0),
        ("d", "granted", 2000.0),
    ]
    assert lock.holder == "d" and lock.waiting == 0


def test_cancelled_requests_are_skipped() -> None:
    sched = Scheduler(0)
    lock = TxnLock(sched)
    log: list[tuple[str, str, float]] = []
    lock.request("a", 10.0, *record(log, "a"))  # type: ignore[arg-type]
    req = lock.request("b", 10_000.0, *record(log, "b"))  # type: ignore[arg-type]
    lock.cancel(req)
    sched.run()
    lock.release("a")
    assert lock.free and [entry[0] for entry in log] == ["a"]


def test_an_owner_releasing_at_once_passes_the_lock_down_the_queue() -> None:
    sched = Scheduler(0)
    lock = TxnLock(sched)
    order: list[str] = []
    def take_and_release(name: str) -> Callable[[float], None]:
        def granted(_waited_ms: float) -> None:
            order.append(name)
            lock.release(name)

        return granted

    lock.request("a", 10.0, lambda w: order.append("a"), lambda w: None)
    for name in "bcd":
        lock.request(name, 10.0, take_and_release(name), lambda w: None)
    lock.release("a")
    assert order == ["a", "b", "c", "d"] and lock.free


def test_misuse_is_an_engine_error() -> None:
    lock = TxnLock(Scheduler(0))
    assert lock.try_acquire("a")
    with pytest.raises(EngineError):
        lock.request("a", 10.0, lambda w: None, lambda w: None)
    with pytest.raises(EngineError):
        lock.release("b")
