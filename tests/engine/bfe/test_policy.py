"""What the filter engine sees: committed filters, sublayer weights, policy changes."""

from __future__ import annotations

from harness.engine.objects import Filter
from tests.engine.bfe.helpers import ACCEPT, CONNECT, OK, Env, add_ok, filt, provider, sublayer


def record(env: Env) -> list[tuple[set[str], list[str], int]]:
    """Listener calls: (layers, filter keys committed at CONNECT then, events so far)."""
    calls: list[tuple[set[str], list[str], int]] = []

    def listener(layers: set[str]) -> None:
        keys = [f.key for f in env.bfe.committed_filters(CONNECT)]
        calls.append((layers, keys, env.writer.count))

    env.bfe.add_commit_listener(listener)
    return calls


def test_commit_announces_each_changed_layer_once(env: Env) -> None:
    calls = record(env)
    s = env.bfe.open_session()
    assert env.begin_now(s) == OK
    add_ok(s, filt("a"), filt("b"), filt("c", layer=ACCEPT), provider())
    assert calls == [] and env.events("policy_change") == []
    assert s.txn_commit() == OK
    changes = env.events("policy_change")
    assert sorted(e["layer"] for e in changes) == sorted([ACCEPT, CONNECT])
    assert all(e["seq"] > env.last("txn_commit")["seq"] for e in changes)
    assert len(calls) == 1
    layers, keys, events_then = calls[0]
    assert layers == {CONNECT, ACCEPT}
    assert keys == ["a", "b"]  # the listener already sees the committed policy
    assert events_then == env.writer.count  # ... and every policy_change


def test_changes_without_filters_announce_nothing(env: Env) -> None:
    calls = record(env)
    s = env.bfe.open_session()
    add_ok(s, provider(), sublayer())
    assert env.begin_now(s, read_only=True) == OK
    assert s.txn_commit() == OK
    assert env.begin_now(s) == OK
    add_ok(s, filt())
    assert s.txn_abort() == OK
    assert env.begin_now(s) == OK
    add_ok(s, filt())
    assert s.delete("filter", "f") == OK  # added and removed: no net change
    assert s.txn_commit() == OK
    assert calls == [] and env.events("policy_change") == []


def test_implicit_adds_and_deletes_announce_their_layer(env: Env) -> None:
    calls = record(env)
    s = env.bfe.open_session()
    add_ok(s, filt(layer=ACCEPT))
    assert s.delete("filter", "f") == OK
    assert [e["layer"] for e in env.events("policy_change")] == [ACCEPT, ACCEPT]
    assert [c[0] for c in calls] == [{ACCEPT}, {ACCEPT}]


def test_failed_adds_announce_nothing(env: Env) -> None:
    calls = record(env)
    s = env.bfe.open_session()
    assert s.add(filt(sublayer="missing")) == "FWP_E_SUBLAYER_NOT_FOUND"
    assert calls == [] and env.events("policy_change") == []


def test_closing_a_dynamic_session_announces_its_filters_leaving(env: Env) -> None:
    calls = record(env)
    s = env.bfe.open_session(dynamic=True)
    add_ok(s, provider())
    s.close()
    add_ok(s2 := env.bfe.open_session(dynamic=True), filt())
    s2.close()
    assert [c[0] for c in calls] == [{CONNECT}, {CONNECT}]
    assert calls[-1][1] == []


def test_committed_filters_are_per_layer_in_commit_order(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, filt("z"), filt("y", layer=ACCEPT), filt("x"))
    got = env.bfe.committed_filters(CONNECT)
    assert [f.key for f in got] == ["z", "x"]
    assert all(isinstance(f, Filter) and f.layer == CONNECT for f in got)
    got.clear()  # a copy: callers cannot edit the committed policy
    assert len(env.bfe.committed_filters(CONNECT)) == 2
    assert env.bfe.committed_filters("ALE_AUTH_LISTEN_V6") == []


def test_sublayer_weight(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, sublayer("mine", weight=0x1234))
    assert env.bfe.sublayer_weight("mine") == 0x1234
    assert env.bfe.sublayer_weight("unknown") == 0
    assert env.begin_now(s) == OK
    add_ok(s, sublayer("staged", weight=5))
    assert env.bfe.sublayer_weight("staged") == 0
