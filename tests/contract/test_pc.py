"""Rule family PC: pend and complete an ALE operation (PC001-PC005, PC010-PC013).

Every rule has a trace that breaks it (with the exact evidence seqs), a
near-miss that must not fire, and a trace where it is not applicable. What
follows a completion (PC006-PC009) is in test_pc_reauth.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.contract.checker import Checker
from harness.contract.pc import DONE_LIMIT, PendMonitor
from tests.support.tracebuild import Result, TraceBuilder

PC = [f"PC{n:03d}" for n in range(1, 14)]
OK = "STATUS_SUCCESS"
CONNECT = "ALE_AUTH_CONNECT_V4"
RECV = "ALE_AUTH_RECV_ACCEPT_V4"
CLOSURE = "ALE_ENDPOINT_CLOSURE_V4"


@pytest.fixture
def tb(tmp_path: Path) -> TraceBuilder:
    return TraceBuilder(tmp_path)


def check(tb: TraceBuilder) -> Result:
    return tb.check(PC)


def pended(
    tb: TraceBuilder, layer: str = CONNECT, ep: object = 7, ctx: object = "c1",
    packet: object | None = None, clone: object | None = None, **fields: Any,
) -> tuple[object, int, int | None]:
    """A pendable classify that pends ``ctx`` (and clones ``packet``): (id, pend seq, clone seq)."""
    extra = {} if packet is None else {"packet": packet}
    cid = tb.classify(layer=layer, endpoint=ep, can_pend=True, proto="tcp", dir="out",
                      remote="10.0.0.2:443", **extra, **fields)
    clone_seq = None
    if clone is not None:
        clone_seq = tb.add("clone", packet=clone, of=packet, status=OK)
    p = tb.add("pend_operation", id=cid, ctx=ctx, status=OK)
    tb.done(cid, action="BLOCK", absorb=True)
    return cid, p, clone_seq


def closure(tb: TraceBuilder, ep: object = 7) -> int:
    cid = tb.classify(layer=CLOSURE, endpoint=ep)
    return tb.done(cid, action="PERMIT")


def reauth(tb: TraceBuilder, ep: object = 7, action: str = "PERMIT", **f: Any) -> tuple[int, int]:
    cid = tb.classify(layer=f.pop("layer", CONNECT), endpoint=ep, reauth=True, proto="tcp",
                      remote="10.0.0.2:443", **f)
    return tb.seq_of[cid], tb.done(cid, action=action)


# -- PC001 ---------------------------------------------------------------------------------


def test_pc001_leak_reported_at_end_with_the_pend(tb: TraceBuilder) -> None:
    _, p, _ = pended(tb)
    classify_seq = tb.events[0]["seq"]
    r = check(tb)
    assert r.fired("PC001") == [[classify_seq, p]]  # the classify that pended, and the pend
    assert "'c1'" in r.messages("PC001")[0]
    assert "at ALE_AUTH_CONNECT_V4, endpoint" in r.messages("PC001")[0]


def test_pc001_double_completion_cites_pend_and_both_completes(tb: TraceBuilder) -> None:
    _, p, _ = pended(tb)
    c1 = tb.add("complete_operation", ctx="c1")
    reauth(tb)
    c2 = tb.add("complete_operation", ctx="c1")
    assert check(tb).fired("PC001") == [[p, c1, c2]]


def test_pc001_completion_of_unknown_ctx(tb: TraceBuilder) -> None:
    c = tb.add("complete_operation", ctx=99)
    assert check(tb).fired("PC001") == [[c]]


def test_pc001_completion_of_a_failed_pend_is_unknown(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c1", status="STATUS_INSUFFICIENT_RESOURCES")
    tb.done(cid, action="BLOCK")
    c = tb.add("complete_operation", ctx="c1")
    assert check(tb).fired("PC001") == [[c]]


def test_pc001_near_miss_completed_once_and_failed_pend_left_alone(tb: TraceBuilder) -> None:
    pended(tb)
    tb.add("complete_operation", ctx="c1")
    reauth(tb)
    cid = tb.classify(layer=CONNECT, endpoint=8, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c2", status="STATUS_NO_MEMORY")
    tb.done(cid, action="BLOCK")
    assert check(tb).fired("PC001") == []


def test_pc001_ctx_may_be_reused_after_completion(tb: TraceBuilder) -> None:
    for ep in (7, 8):
        pended(tb, ep=ep, ctx="c1")
        tb.add("complete_operation", ctx="c1")
        reauth(tb, ep=ep)
    assert check(tb).fired("PC001") == []


def test_pc001_pend_without_status_is_not_a_leak_but_completing_it_is_fine(
    tb: TraceBuilder,
) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c1")
    tb.add("pend_operation", id=cid, ctx="c2")
    tb.done(cid, action="BLOCK", absorb=True)
    tb.add("complete_operation", ctx="c1")
    r = check(tb)
    assert r.fired("PC001") == []
    assert r.applicable("PC001")


def test_pc001_completed_ctx_forgotten_when_endpoint_closes(tb: TraceBuilder) -> None:
    # Documented choice: after the endpoint's closure a late second completion
    # is still PC001, reported as the completion of an unknown ctx.
    pended(tb)
    tb.add("complete_operation", ctx="c1")
    reauth(tb)
    closure(tb)
    c2 = tb.add("complete_operation", ctx="c1")
    r = check(tb)
    assert r.fired("PC001") == [[c2]]
    assert "never pended" in r.messages("PC001")[0]


@pytest.mark.parametrize("inside", [False, True])
def test_pc001_pended_closure_ends_at_the_later_of_complete_classify_and_done(
    tb: TraceBuilder, inside: bool
) -> None:
    _, p, _ = pended(tb)
    c1 = tb.add("complete_operation", ctx="c1")
    reauth(tb)
    k = tb.classify(layer=CLOSURE, endpoint=7)
    tb.add("pend_classify", id=k, handle="h1", status=OK)
    if inside:
        tb.add("complete_classify", handle="h1", action="PERMIT")
    tb.done(k, action="BLOCK", absorb=True)
    c2 = tb.add("complete_operation", ctx="c1")  # the closure is not over yet
    if not inside:
        tb.add("complete_classify", handle="h1", action="PERMIT")
    c3 = tb.add("complete_operation", ctx="c1")  # after it: the ctx is forgotten
    expected = [[c2], [c3]] if inside else [[p, c1, c2], [c3]]
    assert check(tb).fired("PC001") == expected


def test_pc001_not_applicable_without_pends(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7)
    tb.done(cid)
    assert not check(tb).applicable("PC001")


# -- PC002 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "absorb"), [("PERMIT", False), ("BLOCK", False),
                                                ("CONTINUE", True)])
def test_pc002_pended_classify_must_block_and_absorb(
    tb: TraceBuilder, action: str, absorb: bool
) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=True)
    p = tb.add("pend_operation", id=cid, ctx="c1", status=OK)
    d = tb.done(cid, action=action, absorb=absorb)
    assert check(tb).fired("PC002") == [[p, d]]


def test_pc002_near_miss_block_absorb_and_failed_pend(tb: TraceBuilder) -> None:
    pended(tb)
    cid = tb.classify(layer=CONNECT, endpoint=8, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c2", status="STATUS_FWP_CANNOT_PEND")
    tb.done(cid, action="PERMIT")
    r = check(tb)
    assert r.fired("PC002") == []
    assert r.applicable("PC002")


def test_pc002_not_applicable_without_successful_pend(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=8, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c2", status="STATUS_NO_MEMORY")
    tb.done(cid, action="PERMIT")
    assert not check(tb).applicable("PC002")


def test_pc002_skips_done_without_fields(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c1", status=OK)
    tb.add("classify_done", id=cid)
    assert check(tb).fired("PC002") == []


# -- PC003 ---------------------------------------------------------------------------------


def test_pc003_pend_at_a_layer_that_cannot_pend(tb: TraceBuilder) -> None:
    cid = tb.classify(layer="STREAM_V4", flow=3, can_pend=True)
    p = tb.add("pend_operation", id=cid, ctx="c1", status="STATUS_FWP_CANNOT_PEND")
    tb.done(cid, action="PERMIT")
    assert check(tb).fired("PC003") == [[tb.seq_of[cid], p]]


def test_pc003_pend_without_can_pend_and_at_wrong_layer_is_one_violation(
    tb: TraceBuilder,
) -> None:
    cid = tb.classify(layer="ALE_AUTH_CONNECT_V4_DISCARD", endpoint=7, can_pend=False)
    p = tb.add("pend_operation", id=cid, ctx="c1", status="STATUS_FWP_CANNOT_PEND")
    tb.done(cid, action="BLOCK")
    r = check(tb)
    assert r.fired("PC003") == [[tb.seq_of[cid], p]]
    assert "without can_pend" in r.messages("PC003")[0]


def test_pc003_pend_without_can_pend_at_connect(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=False)
    p = tb.add("pend_operation", id=cid, ctx="c1", status="STATUS_FWP_CANNOT_PEND")
    tb.done(cid, action="BLOCK")
    assert check(tb).fired("PC003") == [[tb.seq_of[cid], p]]


@pytest.mark.parametrize("layer", ["ALE_AUTH_LISTEN_V6", "ALE_RESOURCE_ASSIGNMENT_V4",
                                   "ALE_AUTH_RECV_ACCEPT_V6", "ALE_AUTH_CONNECT_V6"])
def test_pc003_near_miss_pendable_layers(tb: TraceBuilder, layer: str) -> None:
    pended(tb, layer=layer)
    tb.add("complete_operation", ctx="c1")
    r = check(tb)
    assert r.fired("PC003") == []
    assert r.applicable("PC003")


def test_pc003_not_applicable_without_pend(tb: TraceBuilder) -> None:
    tb.done(tb.classify(layer="STREAM_V4", flow=3))
    assert not check(tb).applicable("PC003")


# -- PC004 ---------------------------------------------------------------------------------


def test_pc004_pend_succeeds_in_reauth_classify(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, reauth=True, can_pend=True)
    p = tb.add("pend_operation", id=cid, ctx="c1", status=OK)
    tb.done(cid, action="BLOCK", absorb=True)
    tb.add("complete_operation", ctx="c1")
    assert check(tb).fired("PC004") == [[tb.seq_of[cid], p]]


@pytest.mark.parametrize("status", ["STATUS_FWP_CANNOT_PEND", "0xC0220103", 0xC0220103])
def test_pc004_near_miss_cannot_pend_in_any_spelling(tb: TraceBuilder, status: object) -> None:
    cid = tb.classify(layer=RECV, endpoint=7, reauth=True, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c1", status=status)
    tb.done(cid, action="PERMIT")
    r = check(tb)
    assert r.fired("PC004") == []
    assert r.applicable("PC004")


def test_pc004_not_applicable_outside_reauth(tb: TraceBuilder) -> None:
    pended(tb)
    assert not check(tb).applicable("PC004")


# -- PC005 ---------------------------------------------------------------------------------


def test_pc005_absorb_after_failed_pend(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=True)
    p = tb.add("pend_operation", id=cid, ctx="c1", status="STATUS_FWP_TCPIP_NOT_READY")
    d = tb.done(cid, action="BLOCK", absorb=True)
    assert check(tb).fired("PC005") == [[p, d]]


def test_pc005_near_miss_failed_pend_without_absorb(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c1", status="STATUS_FWP_TCPIP_NOT_READY")
    tb.done(cid, action="BLOCK", absorb=False)
    r = check(tb)
    assert r.fired("PC005") == []
    assert r.applicable("PC005")


def test_pc005_near_miss_retry_that_succeeded_may_absorb(tb: TraceBuilder) -> None:
    cid = tb.classify(layer=CONNECT, endpoint=7, can_pend=True)
    tb.add("pend_operation", id=cid, ctx="c1", status="STATUS_NO_MEMORY")
    tb.add("pend_operation", id=cid, ctx="c2", status=OK)
    tb.done(cid, action="BLOCK", absorb=True)
    tb.add("complete_operation", ctx="c2")
    reauth(tb)
    r = check(tb)
    assert r.fired("PC005") == []
    assert r.rules() == set()


def test_pc005_not_applicable_when_pends_succeed(tb: TraceBuilder) -> None:
    pended(tb)
    assert not check(tb).applicable("PC005")


# -- PC010 ---------------------------------------------------------------------------------


def self_classify(tb: TraceBuilder, injection: str = "self") -> object:
    return tb.classify(layer=RECV, endpoint=7, packet="n1", injection=injection)


@pytest.mark.parametrize(("action", "absorb"), [("BLOCK", False), ("PERMIT", True)])
def test_pc010_self_injected_must_permit_or_continue(
    tb: TraceBuilder, action: str, absorb: bool
) -> None:
    k = self_classify(tb, "prev_self")
    d = tb.done(k, action=action, absorb=absorb)
    assert check(tb).fired("PC010") == [[tb.seq_of[k], d]]


def test_pc010_no_clone_or_pend_of_self_injected(tb: TraceBuilder) -> None:
    k = self_classify(tb)
    c = tb.add("clone", packet="n9", of="n1", status=OK)
    p = tb.add("pend_operation", id=k, ctx="c1", status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    tb.add("complete_operation", ctx="c1")
    r = check(tb)
    ks = tb.seq_of[k]
    assert sorted(r.fired("PC010")) == [[ks, c], [ks, p], [ks, p + 1]]


def test_pc010_near_miss(tb: TraceBuilder) -> None:
    tb.done(self_classify(tb), action="CONTINUE")
    k = self_classify(tb, "other")
    tb.add("clone", packet="n9", of="n1", status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    r = check(tb)
    assert r.fired("PC010") == []
    assert r.applicable("PC010")


def test_pc010_not_applicable(tb: TraceBuilder) -> None:
    tb.done(self_classify(tb, "none"))
    assert not check(tb).applicable("PC010")


# -- PC011 ---------------------------------------------------------------------------------


def test_pc011_no_pend_or_absorb_at_flow_established(tb: TraceBuilder) -> None:
    k = tb.classify(layer="ALE_FLOW_ESTABLISHED_V6", endpoint=7, flow=1)
    p = tb.add("pend_classify", id=k, handle="h1", status="STATUS_FWP_CANNOT_PEND")
    d = tb.done(k, action="BLOCK", absorb=True)
    assert check(tb).fired("PC011") == [[tb.seq_of[k], p], [tb.seq_of[k], d]]


def test_pc011_near_miss_block_without_absorb(tb: TraceBuilder) -> None:
    tb.done(tb.classify(layer="ALE_FLOW_ESTABLISHED_V4", endpoint=7), action="BLOCK")
    r = check(tb)
    assert r.fired("PC011") == []
    assert r.applicable("PC011")


def test_pc011_not_applicable(tb: TraceBuilder) -> None:
    tb.done(tb.classify(layer="ALE_FLOW_ESTABLISHED_V4_DISCARD", endpoint=7), absorb=True)
    assert not check(tb).applicable("PC011")


# -- PC012 ---------------------------------------------------------------------------------


def transport(tb: TraceBuilder, ale_required: bool = True, layer: str = "") -> object:
    return tb.classify(layer=layer or "INBOUND_TRANSPORT_V4", packet="n1",
                       ale_required=ale_required)


def test_pc012_ale_required_packet_must_pass(tb: TraceBuilder) -> None:
    k = transport(tb)
    c = tb.add("clone", packet="n2", of="n1", status=OK)
    i = tb.add("inject", packet="n1", kind="transport_recv", status=OK)
    d = tb.done(k, action="BLOCK", absorb=True)
    ks = tb.seq_of[k]
    assert check(tb).fired("PC012") == [[ks, c], [ks, i], [ks, d]]


def test_pc012_near_miss(tb: TraceBuilder) -> None:
    tb.done(transport(tb), action="CONTINUE")
    k = transport(tb, ale_required=False)
    tb.add("clone", packet="n2", of="n1", status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    tb.add("inject", packet="n1", kind="transport_recv", status=OK)  # after the classify
    r = check(tb)
    assert r.fired("PC012") == []
    assert r.applicable("PC012")


def test_pc012_not_applicable(tb: TraceBuilder) -> None:
    tb.done(transport(tb, layer="INBOUND_TRANSPORT_V4_DISCARD"), action="BLOCK", absorb=True)
    assert not check(tb).applicable("PC012")


# -- PC013 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "absorb"), [("PERMIT", False), ("BLOCK", True)])
def test_pc013_without_rights_only_veto_or_unchanged(
    tb: TraceBuilder, action: str, absorb: bool
) -> None:
    k = tb.classify(layer="OUTBOUND_TRANSPORT_V4", rights=False, packet="n1")
    d = tb.done(k, action=action, absorb=absorb)
    assert check(tb).fired("PC013") == [[tb.seq_of[k], d]]


def test_pc013_no_pend_without_rights(tb: TraceBuilder) -> None:
    k = tb.classify(layer=CONNECT, endpoint=7, rights=False, can_pend=True)
    p = tb.add("pend_operation", id=k, ctx="c1", status="STATUS_NO_MEMORY")
    tb.done(k, action="CONTINUE")
    assert check(tb).fired("PC013") == [[tb.seq_of[k], p]]


@pytest.mark.parametrize("action", ["CONTINUE", "NONE", "BLOCK"])
def test_pc013_near_miss(tb: TraceBuilder, action: str) -> None:
    tb.done(tb.classify(layer="OUTBOUND_TRANSPORT_V4", rights=False), action=action)
    r = check(tb)
    assert r.fired("PC013") == []
    assert r.applicable("PC013")


def test_pc013_not_applicable(tb: TraceBuilder) -> None:
    tb.done(tb.classify(layer="OUTBOUND_TRANSPORT_V4", rights=True), action="PERMIT")
    assert not check(tb).applicable("PC013")


def test_one_fault_breaks_every_rule_that_holds(tb: TraceBuilder) -> None:
    k = tb.classify(layer="ALE_FLOW_ESTABLISHED_V4", endpoint=7, rights=False,
                    injection="self", packet="n1", can_pend=True)
    p = tb.add("pend_operation", id=k, ctx="c1", status="STATUS_FWP_CANNOT_PEND")
    d = tb.done(k, action="PERMIT", absorb=True)
    r = check(tb)
    ks = tb.seq_of[k]
    assert r.fired("PC003") == [[ks, p]]
    assert r.fired("PC005") == [[p, d]]
    for rule in ("PC010", "PC011", "PC013"):
        assert r.fired(rule) == [[ks, p], [ks, d]], rule


# -- whole family ----------------------------------------------------------------------------


def test_clean_combined_trace(tb: TraceBuilder) -> None:
    # Outbound TCP connect: pended, decided in user mode, completed, reauthorized.
    k = tb.classify(layer=CONNECT, endpoint=7, callout="insp", proto="tcp", dir="out",
                    local="10.0.0.1:50000", remote="10.0.0.2:443", can_pend=True)
    tb.add("pend_operation", id=k, ctx="c1", status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    tb.add("decision", ctx="c1", action="PERMIT", dt=0.01)
    tb.add("complete_operation", ctx="c1")
    k = tb.classify(layer=CONNECT, endpoint=7, callout="insp", proto="tcp", dir="out",
                    local="10.0.0.1:50000", remote="10.0.0.2:443", reauth=True)
    tb.done(k, action="PERMIT")
    tb.done(tb.classify(layer="ALE_FLOW_ESTABLISHED_V4", endpoint=7, flow=1), action="PERMIT")
    # Inbound TCP accept: ALE-required packet passed at transport, pended at
    # RECV_ACCEPT with its packet cloned, allowed, clone reinjected and
    # reclassified as self-injected.
    k = tb.classify(layer="INBOUND_TRANSPORT_V4", packet="n1", ale_required=True)
    tb.done(k, action="CONTINUE")
    k = tb.classify(layer=RECV, endpoint=8, callout="insp", proto="tcp", dir="in",
                    local="10.0.0.1:80", remote="10.0.0.3:40000", can_pend=True, packet="n1")
    tb.add("clone", packet="n2", of="n1", status=OK)
    tb.add("pend_operation", id=k, ctx="c2", status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    tb.add("decision", ctx="c2", action="PERMIT", dt=0.01)
    tb.add("complete_operation", ctx="c2")
    tb.add("inject", packet="n2", kind="transport_recv", endpoint=8, status=OK)
    k = tb.classify(layer=RECV, endpoint=8, callout="insp", proto="tcp", dir="in",
                    injection="self", packet="n2")
    tb.done(k, action="PERMIT")
    tb.add("inject_complete", packet="n2", status=OK)
    tb.add("free_clone", packet="n2")
    # A callout lower in the order without the write right leaves the verdict alone.
    tb.done(tb.classify(layer=RECV, endpoint=8, rights=False), action="CONTINUE")
    for ep in (7, 8):
        closure(tb, ep)
    r = check(tb)
    assert r.raw.violations == []
    assert r.raw.not_applicable == ["PC004", "PC005"]  # no reauth pend, no failed pend


def test_no_pc_rule_applicable_without_its_input(tb: TraceBuilder) -> None:
    tb.add("policy_change", layer=CONNECT)
    r = check(tb)
    assert set(r.raw.not_applicable) == set(PC)


def test_events_lacking_fields_are_skipped(tb: TraceBuilder) -> None:
    tb.add("classify")
    tb.add("classify_done")
    tb.add("pend_operation")
    tb.add("complete_operation")
    tb.add("clone")
    tb.add("inject")
    tb.add("free_clone")
    tb.add("decision")
    tb.add("pend_classify")
    tb.add("complete_classify")
    k = tb.classify(layer=RECV, endpoint=7, can_pend=True, packet="n1")
    tb.add("pend_operation", id=k, ctx="c1")
    tb.add("classify_done", id=k)
    tb.add("complete_operation", ctx="c1")
    tb.add("policy_change")
    assert check(tb).raw.violations == []


def test_rule_selection_runs_only_what_is_asked(tb: TraceBuilder) -> None:
    _, p, _ = pended(tb)
    k = tb.classify(layer="OUTBOUND_TRANSPORT_V4", rights=False)
    tb.done(k, action="PERMIT")
    r = tb.check(["PC001"])
    assert r.rules() == {"PC001"}
    assert r.fired("PC001") == [[1, p]]


def test_state_follows_live_handles_not_trace_length() -> None:
    checker = Checker(PC)
    seq = 0

    def ev(kind: str, /, **f: Any) -> None:
        nonlocal seq
        seq += 1
        checker.feed({"seq": seq, "t": 0.0, "ev": kind, **f})

    for n in range(1000):
        ep, ctx = f"e{n}", n
        ev("classify", id=f"a{n}", layer=CONNECT, endpoint=ep, can_pend=True, reauth=False)
        ev("pend_operation", id=f"a{n}", ctx=ctx, status=OK)
        ev("classify_done", id=f"a{n}", action="BLOCK", absorb=True)
        ev("complete_operation", ctx=ctx)
        ev("classify", id=f"r{n}", layer=CONNECT, endpoint=ep, reauth=True)
        ev("classify_done", id=f"r{n}", action="PERMIT", absorb=False)
        ev("classify", id=f"x{n}", layer=CLOSURE, endpoint=ep)
        ev("classify_done", id=f"x{n}", action="PERMIT", absorb=False)
        ep, ctx, pkt = f"i{n}", f"ic{n}", f"n{n}"
        ev("classify", id=f"t{n}", layer="INBOUND_TRANSPORT_V4", packet=pkt, ale_required=True)
        ev("classify_done", id=f"t{n}", action="CONTINUE", absorb=False)
        ev("classify", id=f"b{n}", layer=RECV, endpoint=ep, can_pend=True, packet=pkt)
        ev("clone", packet="c" + pkt, of=pkt, status=OK)
        ev("pend_operation", id=f"b{n}", ctx=ctx, status=OK)
        ev("classify_done", id=f"b{n}", action="BLOCK", absorb=True)
        ev("complete_operation", ctx=ctx)
        ev("inject", packet="c" + pkt, kind="transport_recv", status=OK)
        ev("classify", id=f"s{n}", layer=RECV, endpoint=ep, injection="self", packet="c" + pkt,
           can_pend=True, rights=False)
        ev("classify_done", id=f"s{n}", action="CONTINUE", absorb=False)
        ev("free_clone", packet="c" + pkt)
        ev("classify", id=f"y{n}", layer=CLOSURE, endpoint=ep)
        ev("pend_classify", id=f"y{n}", handle=f"h{n}", status=OK)
        ev("classify_done", id=f"y{n}", action="BLOCK", absorb=True)
        ev("complete_classify", handle=f"h{n}", action="PERMIT")
    pend = next(m for m in checker.monitors if isinstance(m, PendMonitor))
    sizes = [len(d) for d in vars(pend).values() if isinstance(d, dict)]
    sizes += [len(d) for d in vars(pend._after).values() if isinstance(d, dict)]
    assert max(sizes) == 0
    assert checker.finish().violations == []


def test_completed_ctxs_are_bounded_without_closure() -> None:
    checker = Checker(["PC001"])
    seq = 0
    for n in range(DONE_LIMIT + 10):
        seq += 2
        checker.feed({"seq": seq, "t": 0.0, "ev": "pend_operation", "ctx": n, "status": OK})
        checker.feed({"seq": seq + 1, "t": 0.0, "ev": "complete_operation", "ctx": n})
    pend = next(m for m in checker.monitors if isinstance(m, PendMonitor))
    assert len(pend._done) == DONE_LIMIT
    assert checker.finish().violations == []
