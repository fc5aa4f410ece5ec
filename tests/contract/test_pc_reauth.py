"""Rule family PC after a completion (PC006-PC009): harness.contract.pc_reauth.

Every rule has a trace that breaks it (with the exact evidence seqs), a
near-miss that must not fire, and a trace where it is not applicable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.test_pc import CLOSURE, CONNECT, OK, RECV, check, closure, pended, reauth
from tests.support.tracebuild import TraceBuilder


@pytest.fixture
def tb(tmp_path: Path) -> TraceBuilder:
    return TraceBuilder(tmp_path)


# -- PC006 ---------------------------------------------------------------------------------


def test_pc006_no_reauth_before_closure(tb: TraceBuilder) -> None:
    _, p, _ = pended(tb)
    c = tb.add("complete_operation", ctx="c1")
    closure(tb)
    r = check(tb)
    assert r.fired("PC006") == [[p, c]]
    assert "before its endpoint closed" in r.messages("PC006")[0]


def test_pc006_no_reauth_by_end_of_trace(tb: TraceBuilder) -> None:
    _, p, _ = pended(tb)
    c = tb.add("complete_operation", ctx="c1")
    r = check(tb)
    assert r.fired("PC006") == [[p, c]]
    assert "end of the trace" in r.messages("PC006")[0]


def test_pc006_pended_closure_ends_at_complete_classify(tb: TraceBuilder) -> None:
    _, p, _ = pended(tb)
    c = tb.add("complete_operation", ctx="c1")
    cl = tb.classify(layer=CLOSURE, endpoint=7)
    tb.add("acquire_classify_handle", id=cl, handle="h1", status=OK)
    tb.add("pend_classify", id=cl, handle="h1", status=OK)
    tb.done(cl, action="BLOCK", absorb=True)
    tb.add("complete_classify", handle="h1", action="PERMIT")
    tb.add("release_classify_handle", handle="h1")
    assert check(tb).fired("PC006") == [[p, c]]


def test_pc006_reauth_for_another_callout_does_not_answer(tb: TraceBuilder) -> None:
    _, p, _ = pended(tb, callout="A")
    c = tb.add("complete_operation", ctx="c1")
    reauth(tb, callout="B")
    closure(tb)
    assert check(tb).fired("PC006") == [[p, c]]


def test_pc006_near_miss_reauth_follows(tb: TraceBuilder) -> None:
    pended(tb, callout="A")
    tb.add("complete_operation", ctx="c1")
    reauth(tb, callout="B")
    reauth(tb, callout="A", layer="ALE_AUTH_CONNECT_V6")
    closure(tb)
    r = check(tb)
    assert r.fired("PC006") == []
    assert r.applicable("PC006")


def test_pc006_near_miss_endpoint_closed_before_the_completion(tb: TraceBuilder) -> None:
    # The connection was torn down while the decision was pending: nothing can
    # reauthorize a closed endpoint, so the engine owes no reauthorization.
    pended(tb)
    closure(tb)
    tb.add("complete_operation", ctx="c1")
    r = check(tb)
    assert r.fired("PC006") == []
    assert r.applicable("PC006")


def test_pc006_not_applicable_without_connect_completion(tb: TraceBuilder) -> None:
    pended(tb, layer=RECV)
    tb.add("complete_operation", ctx="c1")
    assert not check(tb).applicable("PC006")


# -- PC007 ---------------------------------------------------------------------------------


def test_pc007_reauth_must_return_a_final_verdict(tb: TraceBuilder) -> None:
    pended(tb)
    c = tb.add("complete_operation", ctx="c1")
    k, d = reauth(tb, action="CONTINUE")
    assert check(tb).fired("PC007") == [[c, k, d]]


def test_pc007_reauth_must_match_the_decision(tb: TraceBuilder) -> None:
    pended(tb)
    dec = tb.add("decision", ctx="c1", action="PERMIT")
    c = tb.add("complete_operation", ctx="c1")
    k, d = reauth(tb, action="BLOCK")
    r = check(tb)
    assert r.fired("PC007") == [[dec, c, k, d]]
    assert "PERMIT" in r.messages("PC007")[0]


def test_pc007_reauth_must_not_pend_again(tb: TraceBuilder) -> None:
    pended(tb)
    c = tb.add("complete_operation", ctx="c1")
    k = tb.classify(layer=CONNECT, endpoint=7, reauth=True, can_pend=True)
    p = tb.add("pend_operation", id=k, ctx="c2", status="STATUS_FWP_CANNOT_PEND")
    tb.done(k, action="PERMIT")
    r = check(tb)
    assert r.fired("PC007") == [[c, tb.seq_of[k], p]]
    assert r.fired("PC004") == []


def test_pc007_near_miss_reauth_returns_the_decision(tb: TraceBuilder) -> None:
    pended(tb)
    tb.add("decision", ctx="c1", action="BLOCK")
    tb.add("complete_operation", ctx="c1")
    reauth(tb, action="BLOCK")
    r = check(tb)
    assert r.fired("PC007") == []
    assert r.applicable("PC007")


def test_pc007_not_applicable_without_reauth(tb: TraceBuilder) -> None:
    pended(tb)
    tb.add("complete_operation", ctx="c1")
    assert not check(tb).applicable("PC007")


# -- PC008 ---------------------------------------------------------------------------------


def test_pc008_recv_accept_completion_causes_reauth(tb: TraceBuilder) -> None:
    pended(tb, layer=RECV)
    c = tb.add("complete_operation", ctx="c1")
    k, _ = reauth(tb, layer=RECV)
    assert check(tb).fired("PC008") == [[c, k]]


def test_pc008_reported_once_per_completion(tb: TraceBuilder) -> None:
    pended(tb, layer=RECV)
    c = tb.add("complete_operation", ctx="c1")
    k, _ = reauth(tb, layer=RECV, callout="A")
    reauth(tb, layer=RECV, callout="B")
    assert check(tb).fired("PC008") == [[c, k]]


def test_pc008_near_miss_after_policy_change_and_self_reinjection(tb: TraceBuilder) -> None:
    pended(tb, layer=RECV)
    tb.add("complete_operation", ctx="c1")
    tb.done(tb.classify(layer=RECV, endpoint=7, injection="self", packet="n1"))
    tb.add("policy_change", layer="ALE_AUTH_RECV_ACCEPT_V6")
    reauth(tb, layer=RECV)
    r = check(tb)
    assert r.fired("PC008") == []
    assert r.applicable("PC008")


def test_pc008_not_applicable_without_recv_accept_completion(tb: TraceBuilder) -> None:
    pended(tb)
    tb.add("complete_operation", ctx="c1")
    reauth(tb)
    assert not check(tb).applicable("PC008")


# -- PC009 ---------------------------------------------------------------------------------


def recv_pended(tb: TraceBuilder, ctx: object = "c1") -> tuple[int, int | None]:
    _, p, cl = pended(tb, layer=RECV, ctx=ctx, packet="n1", clone="n2")
    return p, cl


def test_pc009_clone_neither_injected_nor_freed(tb: TraceBuilder) -> None:
    p, cl = recv_pended(tb)
    c = tb.add("complete_operation", ctx="c1")
    r = check(tb)
    assert cl is not None
    assert r.fired("PC009") == [sorted([p, cl, c])]
    assert "'n2'" in r.messages("PC009")[0]


def test_pc009_clone_made_after_the_pend_counts(tb: TraceBuilder) -> None:
    k = tb.classify(layer=RECV, endpoint=7, can_pend=True, packet="n1")
    p = tb.add("pend_operation", id=k, ctx="c1", status=OK)
    cl = tb.add("clone", packet="n2", of="n1", status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    c = tb.add("complete_operation", ctx="c1")
    tb.add("inject", packet="n1", kind="transport_recv", status=OK)  # the original, not the clone
    assert check(tb).fired("PC009") == [[p, cl, c]]


def test_pc009_packet_handed_to_complete_must_be_judged(tb: TraceBuilder) -> None:
    p, _ = recv_pended(tb)
    c = tb.add("complete_operation", ctx="c1", packet="n3")
    tb.add("inject", packet="n2", kind="transport_recv", status=OK)
    assert check(tb).fired("PC009") == [[p, c]]


def test_pc009_injected_with_wrong_kind(tb: TraceBuilder) -> None:
    recv_pended(tb)
    c = tb.add("complete_operation", ctx="c1")
    i = tb.add("inject", packet="n2", kind="network_recv", status=OK)
    assert check(tb).fired("PC009") == [[c, i]]


def test_pc009_injected_although_denied(tb: TraceBuilder) -> None:
    recv_pended(tb)
    dec = tb.add("decision", ctx="c1", action="BLOCK")
    c = tb.add("complete_operation", ctx="c1")
    i = tb.add("inject", packet="n2", kind="transport_recv", status=OK)
    assert check(tb).fired("PC009") == [[dec, c, i]]


def test_pc009_freed_although_allowed(tb: TraceBuilder) -> None:
    recv_pended(tb)
    dec = tb.add("decision", ctx="c1", action="PERMIT")
    c = tb.add("complete_operation", ctx="c1")
    f = tb.add("free_clone", packet="n2")
    assert check(tb).fired("PC009") == [[dec, c, f]]


def test_pc009_injected_before_completion(tb: TraceBuilder) -> None:
    recv_pended(tb)
    i = tb.add("inject", packet="n2", kind="transport_recv", status=OK)
    c = tb.add("complete_operation", ctx="c1")
    assert check(tb).fired("PC009") == [[i, c]]


def test_pc009_near_miss_allow_and_deny_paths(tb: TraceBuilder) -> None:
    recv_pended(tb, ctx="c1")
    tb.add("decision", ctx="c1", action="PERMIT")
    tb.add("complete_operation", ctx="c1")
    tb.add("inject", packet="n2", kind="transport_recv", status=OK)
    tb.add("inject_complete", packet="n2", status=OK)
    tb.add("free_clone", packet="n2")
    _, _, _ = pended(tb, layer=RECV, ep=8, ctx="c2", packet="m1", clone="m2")
    tb.add("decision", ctx="c2", action="BLOCK")
    tb.add("complete_operation", ctx="c2")
    tb.add("free_clone", packet="m2")
    # deny by freeing before completion drops the packet just as well
    _, _, _ = pended(tb, layer=RECV, ep=9, ctx="c3", packet="o1", clone="o2")
    tb.add("free_clone", packet="o2")
    tb.add("complete_operation", ctx="c3")
    r = check(tb)
    assert r.fired("PC009") == []
    assert r.applicable("PC009")


def test_pc009_not_applicable_without_a_packet(tb: TraceBuilder) -> None:
    pended(tb, layer=RECV)
    tb.add("complete_operation", ctx="c1")
    assert not check(tb).applicable("PC009")
