"""PK001-PK003: classify handles and pended classifications."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tracebuild import TraceBuilder

PK = ["PK001", "PK002", "PK003"]
OK = "STATUS_SUCCESS"


@pytest.fixture
def tb(tmp_path: Path) -> TraceBuilder:
    return TraceBuilder(tmp_path)


def closure(tb: TraceBuilder, endpoint: int = 1, handle: str = "h1") -> tuple[int, int, int]:
    """A closure classify that acquires a handle and pends; returns (acquire, pend, done)."""
    c = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=endpoint, proto="tcp")
    acquire = tb.add("acquire_classify_handle", id=c, handle=handle, status=OK)
    pend = tb.add("pend_classify", id=c, handle=handle, status=OK)
    done = tb.done(c, action="CONTINUE")
    return acquire, pend, done


# -- PK001 --------------------------------------------------------------------


def test_pk001_handle_never_released(tb: TraceBuilder) -> None:
    acquire, _, _ = closure(tb)
    tb.add("complete_classify", handle="h1", action="PERMIT")
    result = tb.check(PK)
    assert result.fired("PK001") == [[acquire]]
    assert result.fired("PK002") == []


def test_pk001_handle_released_twice(tb: TraceBuilder) -> None:
    closure(tb)
    tb.add("complete_classify", handle="h1", action="PERMIT")
    first = tb.add("release_classify_handle", handle="h1")
    second = tb.add("release_classify_handle", handle="h1")
    assert tb.check(PK).fired("PK001") == [[first, second]]


def test_pk001_release_of_handle_never_acquired(tb: TraceBuilder) -> None:
    c = tb.classify(layer="ALE_CONNECT_REDIRECT_V4", endpoint=1)
    tb.add("acquire_classify_handle", id=c, handle="h1", status="STATUS_NO_MEMORY")
    tb.done(c)
    release = tb.add("release_classify_handle", handle="h1")
    assert tb.check(PK).fired("PK001") == [[release]]


def test_pk001_handle_acquired_again_while_held(tb: TraceBuilder) -> None:
    c = tb.classify(layer="ALE_CONNECT_REDIRECT_V4", endpoint=1)
    first = tb.add("acquire_classify_handle", id=c, handle="h1", status=OK)
    tb.done(c)
    c2 = tb.classify(layer="ALE_CONNECT_REDIRECT_V4", endpoint=2)
    second = tb.add("acquire_classify_handle", id=c2, handle="h1", status=OK)
    tb.done(c2)
    tb.add("release_classify_handle", handle="h1")
    assert tb.check(PK).fired("PK001") == [[first, second]]


def test_pk001_near_miss_handles_released_once_and_reused(tb: TraceBuilder) -> None:
    for endpoint in (1, 2):  # the same handle value, acquired again after its release
        closure(tb, endpoint)
        tb.add("complete_classify", handle="h1", action="PERMIT")
        tb.add("release_classify_handle", handle="h1")
    c = tb.classify(layer="ALE_BIND_REDIRECT_V6", endpoint=3)
    tb.add("acquire_classify_handle", id=c, handle="h9", status="STATUS_NO_MEMORY")
    tb.done(c)
    result = tb.check(PK)
    assert result.rules() == set()
    assert result.applicable("PK001")


def test_pk001_acquire_without_status_creates_no_obligation(tb: TraceBuilder) -> None:
    c = tb.classify(layer="ALE_CONNECT_REDIRECT_V4", endpoint=1)
    tb.add("acquire_classify_handle", id=c, handle="h1")
    tb.done(c)
    assert tb.check(PK).fired("PK001") == []


def test_pk001_not_applicable_without_classify_handles(tb: TraceBuilder) -> None:
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=1, proto="tcp")
    tb.done(c)
    result = tb.check(PK)
    assert not result.applicable("PK001")
    assert not result.applicable("PK002")
    assert not result.applicable("PK003")


# -- PK002 --------------------------------------------------------------------


def test_pk002_pend_not_completed_before_release(tb: TraceBuilder) -> None:
    _, pend, _ = closure(tb)
    release = tb.add("release_classify_handle", handle="h1")
    result = tb.check(PK)
    assert result.fired("PK002") == [[pend, release]]
    assert result.fired("PK001") == []
    assert "h1" in result.messages("PK002")[0]


def test_pk002_completion_after_release_is_also_reported(tb: TraceBuilder) -> None:
    _, pend, _ = closure(tb)
    release = tb.add("release_classify_handle", handle="h1")
    late = tb.add("complete_classify", handle="h1", action="PERMIT")
    assert tb.check(PK).fired("PK002") == [[pend, release], [release, late]]


def test_pk002_completed_twice(tb: TraceBuilder) -> None:
    closure(tb)
    first = tb.add("complete_classify", handle="h1", action="PERMIT")
    second = tb.add("complete_classify", handle="h1", action="PERMIT")
    tb.add("release_classify_handle", handle="h1")
    assert tb.check(PK).fired("PK002") == [[first, second]]


def test_pk002_never_completed_nor_released(tb: TraceBuilder) -> None:
    _, pend, _ = closure(tb)
    result = tb.check(PK)
    assert result.fired("PK002") == [[pend]]


def test_pk002_completion_without_pend(tb: TraceBuilder) -> None:
    c = tb.classify(layer="ALE_CONNECT_REDIRECT_V4", endpoint=1)
    tb.add("acquire_classify_handle", id=c, handle="h1", status=OK)
    tb.done(c)
    complete = tb.add("complete_classify", handle="h1", action=None)
    tb.add("release_classify_handle", handle="h1")
    assert tb.check(PK).fired("PK002") == [[complete]]


def test_pk002_near_miss_completed_then_released(tb: TraceBuilder) -> None:
    closure(tb)
    tb.add("complete_classify", handle="h1", action=None)
    tb.add("release_classify_handle", handle="h1")
    # a failed pend owes no completion
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=2)
    tb.add("acquire_classify_handle", id=c, handle="h2", status=OK)
    tb.add("pend_classify", id=c, handle="h2", status="STATUS_FWP_CANNOT_PEND")
    tb.done(c)
    tb.add("release_classify_handle", handle="h2")
    result = tb.check(PK)
    assert result.rules() == set()
    assert result.applicable("PK002")


# -- PK003 --------------------------------------------------------------------


def test_pk003_pend_succeeds_outside_pendable_layers(tb: TraceBuilder) -> None:
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=1, proto="tcp")
    start = tb.seq_of[c]
    tb.add("acquire_classify_handle", id=c, handle="h1", status=OK)
    pend = tb.add("pend_classify", id=c, handle="h1", status=OK)
    tb.done(c, action="BLOCK", absorb=True)
    tb.add("complete_classify", handle="h1", action="PERMIT")
    tb.add("release_classify_handle", handle="h1")
    result = tb.check(PK)
    assert result.fired("PK003") == [[start, pend]]
    assert result.fired("PK002") == []


def test_pk003_other_failure_outside_pendable_layers(tb: TraceBuilder) -> None:
    c = tb.classify(layer="STREAM_V6", flow=3, packet="d1")
    start = tb.seq_of[c]
    pend = tb.add("pend_classify", id=c, handle="h1", status="STATUS_NO_MEMORY")
    tb.done(c)
    assert tb.check(PK).fired("PK003") == [[start, pend]]


def test_pk003_near_miss_pendable_layers_and_cannot_pend(tb: TraceBuilder) -> None:
    for n, layer in enumerate(
        ("ALE_ENDPOINT_CLOSURE_V6", "ALE_CONNECT_REDIRECT_V4", "ALE_BIND_REDIRECT_V6")
    ):
        c = tb.classify(layer=layer, endpoint=n)
        tb.add("acquire_classify_handle", id=c, handle=n, status=OK)
        tb.add("pend_classify", id=c, handle=n, status=OK)
        tb.done(c)
        tb.add("complete_classify", handle=n, action="PERMIT")
        tb.add("release_classify_handle", handle=n)
    c = tb.classify(layer="ALE_AUTH_RECV_ACCEPT_V4", endpoint=9)
    # the numeric spelling of STATUS_FWP_CANNOT_PEND
    tb.add("pend_classify", id=c, handle="x", status="0xC0220103")
    tb.done(c)
    result = tb.check(PK)
    assert result.rules() == set()
    assert result.applicable("PK003")


def test_pk003_skips_pend_outside_a_known_classify(tb: TraceBuilder) -> None:
    tb.add("pend_classify", id="nowhere", handle="h1", status=OK)
    tb.add("complete_classify", handle="h1", action="PERMIT")
    result = tb.check(PK)
    assert not result.applicable("PK003")
    assert result.rules() == set()
