"""PI001-PI004: clones, references and injection of packets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tracebuild import TraceBuilder

PI = ["PI001", "PI002", "PI003", "PI004"]
OK = "STATUS_SUCCESS"


@pytest.fixture
def tb(tmp_path: Path) -> TraceBuilder:
    return TraceBuilder(tmp_path)


def cloned(tb: TraceBuilder, clone: str = "c1", of: str = "p1") -> int:
    """An outbound transport classify that clones its packet and absorbs it."""
    k = tb.classify(layer="OUTBOUND_TRANSPORT_V4", endpoint=1, packet=of)
    seq = tb.add("clone", packet=clone, of=of, status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    return seq


# -- PI001 --------------------------------------------------------------------


def test_pi001_clone_never_freed(tb: TraceBuilder) -> None:
    clone = cloned(tb)
    assert tb.check(PI).fired("PI001") == [[clone]]


def test_pi001_clone_freed_twice(tb: TraceBuilder) -> None:
    cloned(tb)
    first = tb.add("free_clone", packet="c1")
    second = tb.add("free_clone", packet="c1")
    result = tb.check(PI)
    assert result.fired("PI001") == [[first, second]]
    assert result.fired("PI004") == []


def test_pi001_free_of_packet_never_cloned(tb: TraceBuilder) -> None:
    k = tb.classify(layer="OUTBOUND_TRANSPORT_V4", endpoint=1, packet="p1")
    tb.add("clone", packet="c1", of="p1", status="STATUS_NO_MEMORY")
    tb.done(k)
    free = tb.add("free_clone", packet="c1")
    assert tb.check(PI).fired("PI001") == [[free]]


def test_pi001_freed_before_injection_completed(tb: TraceBuilder) -> None:
    cloned(tb)
    inject = tb.add("inject", packet="c1", kind="transport_send", status=OK)
    free = tb.add("free_clone", packet="c1")
    tb.add("inject_complete", packet="c1", status=OK)
    result = tb.check(PI)
    assert result.fired("PI001") == [[inject, free]]
    assert result.fired("PI003") == []


def test_pi001_near_miss_freed_after_completion_and_handle_reused(tb: TraceBuilder) -> None:
    for of in ("p1", "p2"):  # the second clone reuses the freed handle c1
        cloned(tb, "c1", of)
        tb.add("inject", packet="c1", kind="transport_send", status=OK)
        tb.add("inject_complete", packet="c1", status=OK)
        tb.add("free_clone", packet="c1")
    result = tb.check(PI)
    assert result.rules() == set()
    assert result.applicable("PI001")


def test_pi001_clone_without_status_owes_nothing(tb: TraceBuilder) -> None:
    tb.add("clone", packet="c1", of="p1")
    tb.add("clone", packet="c2", of="p1")
    tb.add("free_clone", packet="c2")
    assert tb.check(PI).fired("PI001") == []


# -- PI002 --------------------------------------------------------------------


def test_pi002_reference_never_dereferenced(tb: TraceBuilder) -> None:
    ref = tb.add("reference", packet="p1")
    result = tb.check(PI)
    assert result.fired("PI002") == [[ref]]
    assert "p1" in result.messages("PI002")[0]


def test_pi002_outstanding_reference_is_reported_once(tb: TraceBuilder) -> None:
    tb.add("reference", packet="p1")
    second = tb.add("reference", packet="p1")
    tb.add("dereference", packet="p1")
    # dereferences answer references oldest first
    assert tb.check(PI).fired("PI002") == [[second]]


def test_pi002_dereferenced_twice(tb: TraceBuilder) -> None:
    tb.add("reference", packet="p1")
    first = tb.add("dereference", packet="p1")
    second = tb.add("dereference", packet="p1")
    assert tb.check(PI).fired("PI002") == [[first, second]]


def test_pi002_dereference_without_reference(tb: TraceBuilder) -> None:
    deref = tb.add("dereference", packet="p7")
    assert tb.check(PI).fired("PI002") == [[deref]]


def test_pi002_near_miss_balanced_references(tb: TraceBuilder) -> None:
    for packet in ("p1", "p2", "p1"):
        tb.add("reference", packet=packet)
    for packet in ("p2", "p1", "p1"):
        tb.add("dereference", packet=packet)
    result = tb.check(PI)
    assert result.rules() == set()
    assert result.applicable("PI002")


def test_pi002_not_applicable_without_references(tb: TraceBuilder) -> None:
    cloned(tb)
    tb.add("free_clone", packet="c1")
    result = tb.check(PI)
    assert not result.applicable("PI002")
    assert not result.applicable("PI003")


# -- PI003 --------------------------------------------------------------------


def test_pi003_successful_inject_never_completed(tb: TraceBuilder) -> None:
    cloned(tb)
    inject = tb.add("inject", packet="c1", kind="transport_send", status=OK)
    result = tb.check(PI)
    assert result.fired("PI003") == [[inject]]


def test_pi003_successful_inject_completed_twice(tb: TraceBuilder) -> None:
    cloned(tb)
    inject = tb.add("inject", packet="c1", kind="transport_send", status=OK)
    first = tb.add("inject_complete", packet="c1", status=OK)
    second = tb.add("inject_complete", packet="c1", status=OK)
    tb.add("free_clone", packet="c1")
    assert tb.check(PI).fired("PI003") == [[inject, first, second]]


def test_pi003_failed_inject_gets_a_completion(tb: TraceBuilder) -> None:
    cloned(tb)
    inject = tb.add(
        "inject", packet="c1", kind="transport_send", status="STATUS_FWP_TCPIP_NOT_READY"
    )
    tb.add("free_clone", packet="c1")
    complete = tb.add("inject_complete", packet="c1", status=OK)
    result = tb.check(PI)
    assert result.fired("PI003") == [[inject, complete]]
    assert result.fired("PI001") == []


def test_pi003_driver_never_frees_after_failed_inject(tb: TraceBuilder) -> None:
    clone = cloned(tb)
    inject = tb.add("inject", packet="c1", kind="network_send", status="0xC0220101")
    result = tb.check(PI)
    assert result.fired("PI003") == [[inject]]
    assert result.fired("PI001") == [[clone]]  # the same leak, seen by the clone rule


def test_pi003_completion_without_inject(tb: TraceBuilder) -> None:
    complete = tb.add("inject_complete", packet="c9", status=OK)
    assert tb.check(PI).fired("PI003") == [[complete]]


def test_pi003_near_miss_retry_after_failure_then_free(tb: TraceBuilder) -> None:
    cloned(tb)
    tb.add("inject", packet="c1", kind="transport_send", status="STATUS_FWP_TCPIP_NOT_READY")
    tb.add("inject", packet="c1", kind="transport_send", status=OK)
    tb.add("inject_complete", packet="c1", status=OK)
    tb.add("free_clone", packet="c1")
    cloned(tb, "c2", "p2")
    tb.add("inject", packet="c2", kind="transport_send", status="STATUS_FWP_TCPIP_NOT_READY")
    tb.add("free_clone", packet="c2")
    result = tb.check(PI)
    assert result.rules() == set()
    assert result.applicable("PI003")


# -- PI004 --------------------------------------------------------------------


def test_pi004_inject_after_free(tb: TraceBuilder) -> None:
    cloned(tb)
    free = tb.add("free_clone", packet="c1")
    inject = tb.add("inject", packet="c1", kind="transport_send", status=OK)
    tb.add("inject_complete", packet="c1", status=OK)
    result = tb.check(PI)
    assert result.fired("PI004") == [[free, inject]]
    assert result.fired("PI001") == []


@pytest.mark.parametrize("kind", ["queue", "complete_operation"])
def test_pi004_queue_or_complete_after_free(tb: TraceBuilder, kind: str) -> None:
    cloned(tb)
    free = tb.add("free_clone", packet="c1")
    extra = {"endpoint": 1} if kind == "queue" else {"ctx": "x1"}
    use = tb.add(kind, packet="c1", **extra)
    assert tb.check(PI).fired("PI004") == [[free, use]]


def test_pi004_near_miss_handle_reindicated_or_recloned(tb: TraceBuilder) -> None:
    cloned(tb)
    tb.add("free_clone", packet="c1")
    # the stack reuses the freed NBL for a new indication, which the driver queues
    k = tb.classify(layer="INBOUND_TRANSPORT_V4", endpoint=2, packet="c1")
    tb.add("reference", packet="c1")
    tb.done(k, action="BLOCK", absorb=True)
    tb.add("queue", packet="c1", endpoint=2)
    tb.add("dereference", packet="c1")
    # a fresh clone that gets a freed handle back
    cloned(tb, "c1", "p5")
    tb.add("inject", packet="c1", kind="transport_send", status=OK)
    tb.add("inject_complete", packet="c1", status=OK)
    tb.add("free_clone", packet="c1")
    result = tb.check(PI)
    assert result.rules() == set()
    assert result.applicable("PI004")


def test_pi004_not_applicable_without_packets(tb: TraceBuilder) -> None:
    tb.add("reference", packet="p1")
    tb.add("dereference", packet="p1")
    result = tb.check(PI)
    assert not result.applicable("PI004")
    assert not result.applicable("PI001")


# -- packet lives and bounded memory --------------------------------------------


def test_records_of_a_previous_life_do_not_leak_into_the_next(tb: TraceBuilder) -> None:
    cloned(tb)
    tb.add("inject", packet="c1", kind="transport_send", status="STATUS_FWP_TCPIP_NOT_READY")
    tb.add("free_clone", packet="c1")
    cloned(tb, "c1", "p2")  # the address comes back as a new clone
    tb.add("inject", packet="c1", kind="transport_send", status=OK)
    tb.add("inject_complete", packet="c1", status=OK)
    tb.add("free_clone", packet="c1")
    cloned(tb, "c1", "p3")
    stray = tb.add("inject_complete", packet="c1", status=OK)
    tb.add("free_clone", packet="c1")
    result = tb.check(PI)
    # the stray completion is not blamed on the failed inject nor counted as a
    # second completion of the earlier life's inject
    assert result.fired("PI003") == [[stray]]
    assert result.rules() == {"PI003"}


def test_double_free_after_reclone_is_still_seen(tb: TraceBuilder) -> None:
    cloned(tb)
    tb.add("free_clone", packet="c1")
    cloned(tb, "c1", "p2")
    first = tb.add("free_clone", packet="c1")
    second = tb.add("free_clone", packet="c1")
    assert tb.check(PI).fired("PI001") == [[first, second]]


def test_inject_without_status_owes_nothing(tb: TraceBuilder) -> None:
    cloned(tb)
    tb.add("inject", packet="c1", kind="transport_send")
    tb.add("free_clone", packet="c1")
    result = tb.check(PI)
    assert result.rules() == set()
    assert not result.applicable("PI003")


def test_window_keeps_at_least_its_limit_of_recent_entries() -> None:
    from harness.contract.pi import Window

    window: Window[int, int] = Window(limit=4)
    for n in range(10):
        window.put(n, n * 10)
    assert all(window.get(n) == n * 10 for n in range(6, 10))
    assert window.get(0) is None
    assert 7 in window and 0 not in window
    assert window.pop(9) == 90 and 9 not in window
    empty: Window[int, int] = Window()
    assert not empty and window
