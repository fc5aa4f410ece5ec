"""TX: BFE sessions and transactions, judged by harness.contract.tx.BfeMonitor."""

from __future__ import annotations

from typing import Any

import pytest

from harness.contract.tx import BfeMonitor
from tests.support.tracebuild import Result, TraceBuilder

OK = "S_OK"
FAMILY = [f"TX00{i}" for i in range(1, 10)] + [f"OB00{i}" for i in range(1, 7)]
LAYER = "ALE_AUTH_CONNECT_V4"


class Bfe:
    """A TraceBuilder that speaks policy-client calls."""

    def __init__(self) -> None:
        self.tb = TraceBuilder()

    def open(self, sid: object, *, dynamic: bool = False, wait: int = 0, kernel: bool = False,
             dt: float = 0.0, status: str = OK) -> int:
        return self.tb.add("session_open", session=sid, dynamic=dynamic, txn_wait_ms=wait,
                           kernel=kernel, status=status, dt=dt)

    def close(self, sid: object, dt: float = 0.0) -> int:
        return self.tb.add("session_close", session=sid, dt=dt)

    def begin(self, sid: object, *, status: str = OK, waited: float = 0, read_only: bool = False,
              dt: float = 0.0) -> int:
        return self.tb.add("txn_begin", session=sid, read_only=read_only, waited_ms=waited,
                           status=status, dt=dt)

    def commit(self, sid: object, status: str = OK, dt: float = 0.0) -> int:
        return self.tb.add("txn_commit", session=sid, status=status, dt=dt)

    def abort(self, sid: object, status: str = OK, dt: float = 0.0) -> int:
        return self.tb.add("txn_abort", session=sid, status=status, dt=dt)

    def forced(self, sid: object, dt: float = 0.0) -> int:
        return self.tb.add("txn_forced_abort", session=sid, dt=dt)

    def add(self, sid: object, otype: str, key: object, status: str = OK, dt: float = 0.0,
            **fields: Any) -> int:
        return self.tb.add("object_add", session=sid, type=otype, key=key, status=status, dt=dt,
                           **fields)

    def filter(self, sid: object, key: object, status: str = OK, **fields: Any) -> int:
        fields.setdefault("layer", LAYER)
        return self.add(sid, "filter", key, status, action="PERMIT", weight=1, **fields)

    def delete(self, sid: object, otype: str, key: object, status: str = OK,
               dt: float = 0.0) -> int:
        return self.tb.add("object_delete", session=sid, type=otype, key=key, status=status,
                           dt=dt)

    def change(self, layer: str = LAYER, dt: float = 0.0) -> int:
        return self.tb.add("policy_change", layer=layer, dt=dt)

    def check(self) -> Result:
        return self.tb.check(FAMILY)


def clean(r: Result) -> None:
    assert r.raw.violations == [], [(v.rule, v.message, v.events) for v in r.raw.violations]


# -- TX001 ---------------------------------------------------------------------


def test_tx001_second_begin_succeeding_fires() -> None:
    b = Bfe()
    b.open(1)
    b1 = b.begin(1)
    b2 = b.begin(1)
    b.commit(1)
    b.close(1)
    r = b.check()
    assert r.fired("TX001") == [[b1, b2]]
    assert "session 1" in r.messages("TX001")[0]


def test_tx001_second_begin_refused_is_clean() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    b.begin(1, status="FWP_E_TXN_IN_PROGRESS")
    b.commit(1)
    b.close(1)
    clean(b.check())


def test_tx001_in_progress_without_transaction_fires() -> None:
    b = Bfe()
    o = b.open(1)
    b2 = b.begin(1, status="FWP_E_TXN_IN_PROGRESS")
    r = b.check()
    assert r.fired("TX001") == [[o, b2]]


def test_tx001_kernel_status_name_is_the_same_error() -> None:
    b = Bfe()
    b.open(1, kernel=True)
    b.begin(1, status="STATUS_SUCCESS")
    b.begin(1, status="STATUS_FWP_TXN_IN_PROGRESS")
    b.abort(1, status="STATUS_SUCCESS")
    clean(b.check())


# -- TX002 ---------------------------------------------------------------------


def test_tx002_commit_without_transaction_succeeding_fires() -> None:
    b = Bfe()
    o = b.open(1)
    c = b.commit(1)
    r = b.check()
    assert r.fired("TX002") == [[o, c]]


def test_tx002_abort_after_commit_cites_the_commit() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    c = b.commit(1)
    a = b.abort(1, status="FWP_E_TIMEOUT")
    r = b.check()
    assert r.fired("TX002") == [[c, a]]


def test_tx002_no_txn_in_progress_is_clean() -> None:
    b = Bfe()
    b.open(1)
    b.commit(1, status="FWP_E_NO_TXN_IN_PROGRESS")
    b.abort(1, status="FWP_E_NO_TXN_IN_PROGRESS")
    b.close(1)
    r = b.check()
    clean(r)
    assert r.applicable("TX002")


def test_tx002_unmodelled_failure_is_not_judged() -> None:
    b = Bfe()
    b.open(1)
    b.commit(1, status="E_INVALIDARG")
    clean(b.check())


# -- TX003 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait", "waited", "status"),
    [
        (1000, 999, "FWP_E_TIMEOUT"),     # gave up early
        (1000, 1001, OK),                 # waited longer yet succeeded
        (0, 14000, "FWP_E_TIMEOUT"),      # 0 means 15000
        (4294967295, 60000, "FWP_E_TIMEOUT"),  # infinite never times out
    ],
)
def test_tx003_wait_breaking_the_timeout_fires(wait: int, waited: int, status: str) -> None:
    b = Bfe()
    o = b.open(1, wait=wait)
    bg = b.begin(1, waited=waited, status=status)
    r = b.check()
    assert r.fired("TX003") == [[o, bg]]


@pytest.mark.parametrize(
    ("wait", "waited", "status"),
    [
        (1000, 1000, "FWP_E_TIMEOUT"),    # exactly the timeout: either outcome is right
        (1000, 1000, OK),
        (1000, 1200, "FWP_E_TIMEOUT"),    # late timeouts are scheduling slack
        (0, 15000, "FWP_E_TIMEOUT"),
        (4294967295, 600000, OK),
    ],
)
def test_tx003_near_misses_are_clean(wait: int, waited: int, status: str) -> None:
    b = Bfe()
    b.open(1, wait=wait)
    b.begin(1, waited=waited, status=status)
    if status == OK:
        b.commit(1)
    r = b.check()
    assert r.fired("TX003") == []
    assert r.applicable("TX003")


def test_tx003_timeout_with_no_traced_holder_is_not_judged() -> None:
    # Another process may hold the lock: the trace cannot prove it was free.
    b = Bfe()
    b.open(1, wait=100)
    b.begin(1, waited=100, status="FWP_E_TIMEOUT")
    clean(b.check())


# -- TX004 ---------------------------------------------------------------------


def test_tx004_user_transaction_past_an_hour_without_forced_abort_fires() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    b.open(2)
    late = b.open(3, dt=3600.5)
    b.close(3, dt=1)   # reported once, not at every later event
    b.commit(1)
    r = b.check()
    assert r.fired("TX004") == [[bg, late]]


def test_tx004_overdue_seen_at_its_own_commit() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    c = b.commit(1, dt=3700)
    r = b.check()
    assert r.fired("TX004") == [[bg, c]]


def test_tx004_forced_abort_after_the_hour_is_clean() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    b.add(1, "provider", "p")
    b.forced(1, dt=3600.25)
    b.commit(1, status="FWP_E_TXN_ABORTED")
    b.abort(1)
    b.close(1)
    r = b.check()
    clean(r)
    assert r.applicable("TX004")


def test_tx004_forced_abort_too_early_fires() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    f = b.forced(1, dt=3599)
    b.abort(1)
    r = b.check()
    assert r.fired("TX004") == [[bg, f]]


def test_tx004_kernel_transactions_are_never_forced() -> None:
    b = Bfe()
    b.open(1, kernel=True)
    bg = b.begin(1)
    b.open(2, dt=5000)          # no overdue report for a kernel hold
    f = b.forced(1)
    b.abort(1)
    r = b.check()
    assert r.fired("TX004") == [[bg, f]]


def test_tx004_implicit_transactions_are_never_forced() -> None:
    b = Bfe()
    o = b.open(1)
    b.add(1, "provider", "p")
    f = b.forced(1, dt=4000)
    r = b.check()
    assert r.fired("TX004") == [[o, f]]


def test_tx004_call_after_forced_abort_must_return_txn_aborted() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    f = b.forced(1, dt=3601)
    a = b.add(1, "provider", "p")
    c = b.commit(1)
    b.abort(1)
    r = b.check()
    assert r.fired("TX004") == [[f, a], [f, c]]


# -- TX005 ---------------------------------------------------------------------


def test_tx005_write_in_read_only_transaction_succeeding_fires() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1, read_only=True)
    a = b.add(1, "provider", "p")
    d = b.delete(1, "provider", "q", status="FWP_E_PROVIDER_NOT_FOUND")
    b.commit(1)
    r = b.check()
    assert r.fired("TX005") == [[bg, a], [bg, d]]


def test_tx005_incompatible_txn_is_clean() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1, read_only=True)
    b.add(1, "provider", "p", status="FWP_E_INCOMPATIBLE_TXN")
    b.commit(1)
    b.add(1, "provider", "p")      # outside the transaction: fine
    r = b.check()
    clean(r)
    assert r.applicable("TX005")


# -- TX006 ---------------------------------------------------------------------


def test_tx006_abort_that_kept_an_add_fires() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    a1 = b.add(1, "provider", "p")
    ab = b.abort(1)
    a2 = b.add(1, "provider", "p", status="FWP_E_ALREADY_EXISTS")
    r = b.check()
    assert r.fired("TX006") == [[a1, ab, a2]]
    assert r.fired("OB004") == []


def test_tx006_policy_change_at_an_aborted_layer_fires() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    f = b.filter(1, "f1")
    ab = b.abort(1)
    pc = b.change()
    b.change()                       # one report per layer
    r = b.check()
    assert r.fired("TX006") == [[f, ab, pc]]


def test_tx006_policy_change_owed_to_an_earlier_commit_is_clean() -> None:
    b = Bfe()
    b.open(1)
    b.filter(1, "f0")                # implicit transaction: policy_change still due
    b.begin(1)
    b.filter(1, "f1")
    b.abort(1)
    b.change()
    b.change("ALE_AUTH_RECV_ACCEPT_V4")   # a layer the transaction never touched
    clean(b.check())


def test_tx006_commit_that_lost_an_add_fires() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    a1 = b.add(1, "provider", "p")
    c = b.commit(1)
    a2 = b.add(1, "provider", "p")
    r = b.check()
    assert r.fired("TX006") == [[a1, c, a2]]
    assert r.fired("OB004") == [[a1, a2]]


def test_tx006_commit_that_lost_a_referenced_object_fires() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    a1 = b.add(1, "sublayer", "s")
    c = b.commit(1)
    f = b.filter(1, "f", status="FWP_E_SUBLAYER_NOT_FOUND", sublayer="s")
    r = b.check()
    assert r.fired("TX006") == [[a1, c, f]]


def test_tx006_failed_call_that_ended_the_transaction_fires() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    b.add(1, "provider", "p")
    bad = b.filter(1, "f", status="FWP_E_CALLOUT_NOT_FOUND", callout="missing")
    c = b.commit(1, status="FWP_E_NO_TXN_IN_PROGRESS")
    r = b.check()
    assert r.fired("TX006") == [[bg, bad, c]]


def test_tx006_abort_and_commit_that_behave_are_clean() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    b.add(1, "provider", "p")
    b.filter(1, "f", status="FWP_E_CALLOUT_NOT_FOUND", callout="missing")
    b.abort(1)
    b.add(1, "provider", "p")        # the abort undid it: adding again works
    b.begin(1)
    b.filter(1, "f", status="FWP_E_CALLOUT_NOT_FOUND", callout="missing")
    b.filter(1, "f2")
    b.commit(1)                      # the failure did not end the transaction
    b.change()
    b.add(1, "provider", "p", status="FWP_E_ALREADY_EXISTS")
    b.filter(1, "f2", status="FWP_E_ALREADY_EXISTS")
    r = b.check()
    clean(r)
    assert r.applicable("TX006")


def test_tx006_abort_that_kept_a_delete_fires() -> None:
    b = Bfe()
    b.open(1)
    a1 = b.add(1, "provider", "p")
    b.begin(1)
    d = b.delete(1, "provider", "p")
    ab = b.abort(1)
    a2 = b.add(1, "provider", "p")
    r = b.check()
    assert r.fired("TX006") == [[d, ab, a2]]
    assert r.fired("OB004") == [[a1, a2]]


# -- TX007 ---------------------------------------------------------------------


def test_tx007_dynamic_objects_surviving_close_fire() -> None:
    b = Bfe()
    b.open(1, dynamic=True)
    b.open(2)
    a1 = b.add(1, "provider", "p")
    cl = b.close(1)
    a2 = b.add(2, "provider", "p", status="FWP_E_ALREADY_EXISTS")
    r = b.check()
    assert r.fired("TX007") == [[a1, cl, a2]]


def test_tx007_reference_to_a_closed_sessions_object_fires() -> None:
    b = Bfe()
    b.open(1, dynamic=True)
    b.open(2)
    s = b.add(1, "sublayer", "s")
    cl = b.close(1)
    f = b.filter(2, "f", sublayer="s")
    r = b.check()
    assert r.fired("TX007") == [[s, cl, f]]
    assert r.fired("OB006") == [[f]]


def test_tx007_close_that_let_a_transaction_through_fires() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    f = b.filter(1, "f")
    cl = b.close(1)
    pc = b.change()
    b.open(2)
    a2 = b.filter(2, "f", status="FWP_E_ALREADY_EXISTS")
    r = b.check()
    assert r.fired("TX007") == [[f, cl, pc], [f, cl, a2]]
    assert r.fired("TX008") == [[bg, cl]]


def test_tx007_close_that_behaves_is_clean() -> None:
    b = Bfe()
    b.open(1, dynamic=True)
    b.open(2)
    b.filter(1, "f")
    b.close(1)
    b.change()                     # the deleted dynamic filter: a legitimate change
    b.filter(2, "f", lifetime="static")
    b.add(2, "provider", "p")
    b.close(2)                     # not dynamic: its objects stay
    b.open(3)
    b.add(3, "provider", "p", status="FWP_E_ALREADY_EXISTS")
    r = b.check()
    clean(r)
    assert r.applicable("TX007")


# -- TX008 ---------------------------------------------------------------------


def test_tx008_close_with_open_transaction_fires() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    cl = b.close(1)
    r = b.check()
    assert r.fired("TX008") == [[bg, cl]]


def test_tx008_open_at_end_of_trace_fires() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    r = b.check()
    assert r.fired("TX008") == [[bg]]


def test_tx008_call_after_txn_aborted_fires_once() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    b.forced(1, dt=3601)
    got = b.add(1, "provider", "p", status="FWP_E_TXN_ABORTED")
    again = b.commit(1, status="FWP_E_TXN_ABORTED")
    b.add(1, "provider", "p", status="FWP_E_TXN_ABORTED")
    b.abort(1)
    r = b.check()
    assert r.fired("TX008") == [[got, again]]
    assert r.fired("TX004") == []


def test_tx008_forced_abort_counts_as_ended() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    b.forced(1, dt=3601)
    b.add(1, "provider", "p", status="FWP_E_TXN_ABORTED")
    b.abort(1)
    b.begin(1)
    b.commit(1)
    b.begin(1)
    b.forced(1, dt=3601)
    b.close(1)
    r = b.check()
    clean(r)
    assert r.applicable("TX008")


# -- TX009 ---------------------------------------------------------------------


def test_tx009_hold_longer_than_a_peer_timeout_warns() -> None:
    b = Bfe()
    peer = b.open(1, wait=1000)
    b.open(2, wait=4294967295)
    b.open(3)                                      # 15000 ms: not the smallest
    bg = b.begin(2)
    c = b.commit(2, dt=1.5)
    r = b.check()
    assert r.fired("TX009") == [[peer, bg, c]]
    assert r.raw.violations[0].severity == "warning"


def test_tx009_peer_opened_during_the_hold_counts() -> None:
    b = Bfe()
    b.open(1)
    bg = b.begin(1)
    peer = b.open(2, wait=500, dt=0.1)
    b.close(2)
    ab = b.abort(1, dt=1)
    r = b.check()
    assert r.fired("TX009") == [[bg, peer, ab]]


def test_tx009_near_misses_are_clean() -> None:
    b = Bfe()
    b.open(1, wait=1000)
    b.open(2, wait=200)          # its own timeout does not count
    b.open(3, wait=4294967295)
    b.begin(2)
    b.commit(2, dt=1.0)          # exactly the peer's timeout
    b.close(1)
    b.begin(2)
    b.commit(2, dt=100)          # the only peer waits forever
    r = b.check()
    clean(r)
    assert r.applicable("TX009")


def test_tx009_without_peers_is_not_applicable() -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    b.commit(1, dt=100)
    assert not b.check().applicable("TX009")


# -- applicability -------------------------------------------------------------


def test_no_policy_events_leaves_the_family_not_applicable() -> None:
    tb = TraceBuilder()
    c = tb.classify(layer=LAYER, endpoint=1)
    tb.done(c)
    r = tb.check(FAMILY)
    assert all(not r.applicable(rule) for rule in FAMILY)


@pytest.mark.parametrize(
    ("rule", "present"),
    [("TX001", True), ("TX002", True), ("TX003", True), ("TX004", False),
     ("TX005", False), ("TX006", True), ("TX007", False), ("TX008", True), ("TX009", False)],
)
def test_applicability_of_a_plain_transaction(rule: str, present: bool) -> None:
    b = Bfe()
    b.open(1)
    b.begin(1)
    b.add(1, "provider", "p")
    b.commit(1)
    b.commit(1, status="FWP_E_NO_TXN_IN_PROGRESS")
    assert b.check().applicable(rule) is present


# -- a realistic scenario ------------------------------------------------------


def test_realistic_dynamic_session_scenario_is_clean() -> None:
    b = Bfe()
    b.open("drv", dynamic=True, wait=2000)
    b.begin("drv")
    b.add("drv", "provider", "P")
    b.add("drv", "sublayer", "S", provider="P")
    b.add("drv", "callout", "C", provider="P", layer="ALE_AUTH_CONNECT_V4")
    b.filter("drv", "F", provider="P", sublayer="S", callout="C", dt=0.01)
    b.filter("drv", "F6", provider="P", sublayer="FWPM_SUBLAYER_UNIVERSAL",
             layer="ALE_AUTH_CONNECT_V6", callout="C")
    b.commit("drv", dt=0.2)
    b.change("ALE_AUTH_CONNECT_V4")
    b.change("ALE_AUTH_CONNECT_V6")
    b.open("ui", wait=5000)
    b.begin("drv", dt=1)
    b.begin("ui", status="FWP_E_TIMEOUT", waited=5000, dt=5)
    b.delete("drv", "filter", "F6")
    b.commit("drv")
    b.change("ALE_AUTH_CONNECT_V6")
    b.begin("ui", read_only=True, waited=3)
    b.add("ui", "provider", "Q", status="FWP_E_INCOMPATIBLE_TXN")
    b.commit("ui")
    b.delete("ui", "provider", "P", status="FWP_E_IN_USE")
    b.delete("drv", "callout", "C", status="FWP_E_IN_USE")
    b.delete("drv", "filter", "F")
    b.change()
    b.delete("drv", "callout", "C")
    b.delete("drv", "sublayer", "S")
    b.close("drv")
    b.add("ui", "provider", "P")
    b.close("ui")
    r = b.check()
    clean(r)
    for rule in ("TX001", "TX003", "TX005", "TX006", "TX007", "TX008", "TX009",
                 "OB001", "OB002", "OB004", "OB005", "OB006"):
        assert r.applicable(rule), rule


def test_monitor_judges_both_families() -> None:
    assert set(BfeMonitor.RULES) == set(FAMILY)


def test_state_is_forgotten_when_sessions_and_transactions_end() -> None:
    """Memory follows what is open, not the length of the trace."""
    from harness.contract.checker import Checker

    checker = Checker(FAMILY)
    [monitor] = [m for m in checker.monitors if isinstance(m, BfeMonitor)]
    seq, t = 0, 0.0

    def feed(**ev: Any) -> None:
        nonlocal seq, t
        seq += 1
        t += 0.01
        checker.feed({"seq": seq, "t": t, **ev})

    for sid in range(3000):
        feed(ev="session_open", session=sid, dynamic=sid % 2 == 0, txn_wait_ms=1000,
             kernel=False, status=OK)
        feed(ev="txn_begin", session=sid, read_only=False, waited_ms=0, status=OK)
        feed(ev="object_add", session=sid, type="provider", key=f"p{sid}", status=OK)
        feed(ev="txn_commit", session=sid, status=OK)
        if sid % 2:
            feed(ev="object_delete", session=sid, type="provider", key=f"p{sid}", status=OK)
        feed(ev="session_close", session=sid)
    result = checker.finish()
    assert result.violations == []
    assert not monitor._sessions and not monitor._lock.held and not monitor._lock._user
    assert not monitor._store.objects and not monitor._store.by_session
    assert len(monitor._lock._waits) <= 2100     # stale entries are swept as they pile up


def test_staged_references_are_dropped_with_a_forced_abort() -> None:
    """After a forced abort the aborted transaction's staged references are gone:
    deleting the object they pointed at is judged without them (no crash)."""
    from tests.support.tracebuild import TraceBuilder

    tb = TraceBuilder()
    tb.add("session_open", session=1, dynamic=False, txn_wait_ms=0, kernel=False, status="STATUS_SUCCESS")
    tb.add("session_open", session=2, dynamic=False, txn_wait_ms=0, kernel=False, status="STATUS_SUCCESS")
    tb.add("object_add", session=1, type="provider", key="b", lifetime="static", status="STATUS_SUCCESS")
    tb.add("txn_begin", session=2, read_only=False, waited_ms=0, status="STATUS_SUCCESS")
    tb.add("object_add", session=2, type="provider_context", key="ctx", provider="b",
           lifetime="static", status="STATUS_SUCCESS")
    tb.add("txn_forced_abort", session=2, dt=3601)
    tb.add("object_delete", session=2, type="provider", key="b", status="FWP_E_TXN_ABORTED")
    tb.add("txn_abort", session=2, status="STATUS_SUCCESS")
    tb.add("object_delete", session=1, type="provider", key="b", status="STATUS_SUCCESS")
    result = tb.check()
    assert "OB002" not in result.rules() and "TX006" not in result.rules()
