"""Policy-client processes: the correct ones and the client mutants."""

from __future__ import annotations

import pytest

from harness.callouts.client_mutants import CLIENT_MUTANTS, CORRECT_COUNTERPART
from harness.callouts.registry import Mutant, build_registry, lookup
from harness.engine.bfe.clients import (
    Policy,
    contention,
    forced_abort_client,
    guarantee_tour,
    policy_client,
)
from harness.engine.bfe.store import references
from harness.errors import UsageError
from harness.trace.events import Event, wait_timeout_ms
from tests.engine.bfe.helpers import ACCEPT, CONNECT, OK, Env, make_env


def open_at_close(events: list[Event]) -> list[int]:
    """Sessions closed while a transaction they began was neither committed nor aborted."""
    open_txn: set[object] = set()
    leaked = []
    for e in events:
        s = e.get("session")
        if e["ev"] == "txn_begin" and e["status"] == OK:
            open_txn.add(s)
        elif e["ev"] in ("txn_commit", "txn_abort") and e["status"] == OK:
            open_txn.discard(s)
        elif e["ev"] == "session_close" and s in open_txn:
            leaked.append(e["seq"])
    return leaked


def calls_after_aborted(events: list[Event]) -> list[int]:
    """Calls other than txn_abort made in a transaction after it returned FWP_E_TXN_ABORTED."""
    dead: set[object] = set()
    bad = []
    for e in events:
        s = e.get("session")
        if e["ev"] == "txn_abort":
            dead.discard(s)
        elif s in dead and e["ev"] in ("txn_begin", "txn_commit", "object_add", "object_delete"):
            bad.append(e["seq"])
        elif e.get("status") == "FWP_E_TXN_ABORTED":
            dead.add(s)
    return bad


def peer_timeouts(events: list[Event]) -> list[int]:
    return [e["seq"] for e in events if e["ev"] == "txn_begin" and e["status"] == "FWP_E_TIMEOUT"]


# -- correct clients ------------------------------------------------------------------


def test_policy_objects_come_before_what_refers_to_them() -> None:
    policy = Policy(layers=(CONNECT, ACCEPT), callouts={CONNECT: "probe.connect"})
    seen: set[tuple[str, str | None]] = set()
    for obj in policy.objects():
        for ref in references(obj):
            assert ref[0] == "layer" or ref in seen or ref[1] == "FWPM_SUBLAYER_UNIVERSAL", obj
        seen.add((obj.type, obj.key))


def test_policy_client_installs_keeps_and_removes_its_policy(env: Env) -> None:
    policy = Policy(layers=(CONNECT, ACCEPT), callouts={CONNECT: "probe.connect"})
    done = env.spawn(policy_client(env.bfe, policy, start_s=1.0, keep_s=5.0))
    env.sched.run(until_s=3.0)
    installed = {f.layer: f for f in [*env.bfe.committed_filters(CONNECT),
                                      *env.bfe.committed_filters(ACCEPT)]}
    assert installed[CONNECT].callout == "probe.connect"
    assert installed[CONNECT].action == "CALLOUT_TERMINATING"
    assert installed[ACCEPT].action == "PERMIT"
    env.sched.run()
    assert done.done
    assert env.bfe.committed_filters(CONNECT) == env.bfe.committed_filters(ACCEPT) == []
    assert all(e.get("status", OK) == OK for e in env.writer.events)
    assert open_at_close(env.writer.events) == []
    assert len(env.events("txn_commit")) == 2


def test_policy_client_gives_up_cleanly_when_the_lock_is_busy(env: Env) -> None:
    holder = env.bfe.open_session()
    assert env.begin_now(holder) == OK
    env.run(policy_client(env.bfe, txn_wait_ms=500))
    assert env.last("txn_begin")["status"] == "FWP_E_TIMEOUT"
    assert env.events("txn_commit") == env.events("txn_abort") == []
    assert env.last("session_close")["session"] != holder.handle


def test_a_client_aborts_after_a_failed_add(env: Env) -> None:
    assert env.bfe.open_session().add(Policy().objects()[0]) == OK  # its provider key, taken
    env.run(policy_client(env.bfe))
    assert env.last("txn_abort")["status"] == OK
    assert env.events("txn_commit") == []
    assert env.bfe.committed("sublayer", "policy.sublayer") is None


@pytest.mark.parametrize(("hold_s", "peer_wait_ms"), [(2.0, 5000), (14.0, 0)])
def test_contention_within_the_peer_timeout(env: Env, hold_s: float, peer_wait_ms: int) -> None:
    env.run(contention(env.bfe, hold_s=hold_s, peer_delay_s=0.5, peer_wait_ms=peer_wait_ms))
    begins = env.events("txn_begin")
    assert all(e["status"] == OK for e in begins)
    waited = max(e["waited_ms"] for e in begins)
    assert waited == pytest.approx((hold_s - 0.5) * 1000)
    assert waited < wait_timeout_ms(peer_wait_ms)
    assert open_at_close(env.writer.events) == []


def test_forced_abort_client_aborts_after_being_told(env: Env) -> None:
    result = env.run(forced_abort_client(env.bfe))
    assert isinstance(result, tuple)
    handle, status = result
    assert status == "FWP_E_TXN_ABORTED"
    assert len(env.events("txn_forced_abort", session=handle)) == 1
    assert env.last("txn_abort")["status"] == OK
    assert calls_after_aborted(env.writer.events) == []
    assert open_at_close(env.writer.events) == []


def test_kernel_forced_abort_client_is_never_forced(env: Env) -> None:
    result = env.run(forced_abort_client(env.bfe, kernel=True))
    assert isinstance(result, tuple)
    status = result[1]
    assert status == OK
    assert env.events("txn_forced_abort") == []


def test_the_guarantee_tour_meets_every_refusal_and_leaves_nothing(env: Env) -> None:
    env.run(guarantee_tour(env.bfe, forced_abort=True))
    statuses = {e["status"] for e in env.writer.events if "status" in e}
    assert statuses >= {
        "FWP_E_TXN_IN_PROGRESS", "FWP_E_NO_TXN_IN_PROGRESS", "FWP_E_INCOMPATIBLE_TXN",
        "FWP_E_TXN_ABORTED", "FWP_E_LIFETIME_MISMATCH", "FWP_E_IN_USE",
        "FWP_E_BUILTIN_OBJECT", "FWP_E_ALREADY_EXISTS", "FWP_E_WRONG_SESSION",
        "FWP_E_DYNAMIC_SESSION_IN_PROGRESS", "FWP_E_PROVIDER_NOT_FOUND",
        "FWP_E_SUBLAYER_NOT_FOUND", "FWP_E_CALLOUT_NOT_FOUND",
        "FWP_E_PROVIDER_CONTEXT_NOT_FOUND", "FWP_E_LAYER_NOT_FOUND",
    }
    assert "FWP_E_TIMEOUT" not in statuses
    assert not [obj for obj in env.bfe.store.committed.values() if obj.lifetime != "builtin"]
    assert env.bfe.lock.free and all(s.closed for s in env.bfe.sessions.values())


# -- mutants ----------------------------------------------------------------------------


def test_registry_is_well_formed() -> None:
    assert set(CLIENT_MUTANTS) == set(CORRECT_COUNTERPART)
    for name, mutant in CLIENT_MUTANTS.items():
        assert mutant.name == name
        assert set(mutant.rules) <= {"TX008", "TX009"}
    assert lookup(CLIENT_MUTANTS, "txn_left_open").rules == ("TX008",)
    with pytest.raises(UsageError, match="txn_left_open"):
        lookup(CLIENT_MUTANTS, "nope", "client mutant")


@pytest.mark.parametrize(
    ("name", "rules", "message"),
    [
        ("Bad-Name", ("TX008",), "snake_case"),
        ("ok", (), "names no rule"),
        ("ok", ("tx8",), "not a rule ID"),
    ],
)
def test_malformed_mutants_fail_where_defined(name: str, rules: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Mutant(name, rules, "described", lambda: None)


def test_duplicate_mutant_names_are_refused() -> None:
    m = Mutant("same", ("TX008",), "described", lambda: None)
    with pytest.raises(ValueError, match="twice"):
        build_registry([m, m])


FACTS = {
    "txn_left_open": open_at_close,
    "calls_after_txn_aborted": calls_after_aborted,
    "hold_past_peer_timeout": peer_timeouts,
}


@pytest.mark.parametrize("name", sorted(CLIENT_MUTANTS))
def test_each_mutant_shows_its_bug_and_its_counterpart_does_not(name: str) -> None:
    fact = FACTS[name]
    mutant_env, correct_env = make_env(), make_env()
    mutant_env.run(CLIENT_MUTANTS[name].factory(mutant_env.bfe))
    correct_env.run(CORRECT_COUNTERPART[name](correct_env.bfe))
    assert fact(mutant_env.writer.events)
    assert fact(correct_env.writer.events) == []


def test_txn_left_open_still_leaves_nothing_behind(env: Env) -> None:
    env.run(CLIENT_MUTANTS["txn_left_open"].factory(env.bfe, hold_s=1.0))
    assert env.bfe.committed_filters(CONNECT) == []
    assert env.bfe.lock.free  # the engine cleaned up after the client (TX007)
