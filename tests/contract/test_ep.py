"""Rule family EP: ALE endpoint lifetime, on small traces through the real reader."""

from __future__ import annotations

from tests.support.tracebuild import TraceBuilder

EP_RULES = [f"EP00{i}" for i in range(1, 10)]
OK = "STATUS_SUCCESS"


def ale(tb: TraceBuilder, layer: str, endpoint: object, **fields: object) -> int:
    """A classify at ``layer``_V4 that returns at once; returns the classify's seq."""
    cid = tb.classify(layer=f"{layer}_V4", endpoint=endpoint, **fields)
    tb.done(cid)
    return tb.seq_of[cid]


def closure(tb: TraceBuilder, endpoint: object, **fields: object) -> int:
    return ale(tb, "ALE_ENDPOINT_CLOSURE", endpoint, **fields)


def pended_closure(tb: TraceBuilder, endpoint: object, handle: str) -> tuple[int, object]:
    """Start a closure pended on ``handle``; returns (closure seq, classify id)."""
    cid = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=endpoint, can_pend=True)
    tb.add("acquire_classify_handle", id=cid, handle=handle, status=OK)
    tb.add("pend_classify", id=cid, handle=handle, status=OK)
    tb.done(cid, action="BLOCK")
    return tb.seq_of[cid], cid


def tcp_connection(tb: TraceBuilder, endpoint: object) -> dict[str, int]:
    """A complete, correct TCP connect: assignment, connect, closure, release."""
    return {
        "assign": ale(tb, "ALE_RESOURCE_ASSIGNMENT", endpoint, proto="tcp"),
        "connect": ale(tb, "ALE_AUTH_CONNECT", endpoint, proto="tcp", dir="out"),
        "closure": closure(tb, endpoint, proto="tcp"),
        "release": ale(tb, "ALE_RESOURCE_RELEASE", endpoint, proto="tcp"),
    }


# -- a realistic clean trace ------------------------------------------------------


def test_realistic_trace_breaks_no_endpoint_rule() -> None:
    tb = TraceBuilder()
    # TCP connect with a per-endpoint allocation freed in the closure.
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 1, proto="tcp")
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=1, proto="tcp", dir="out")
    tb.add("alloc", obj="state1", endpoint=1, tag="Clt1")
    tb.done(c)
    ale(tb, "ALE_FLOW_ESTABLISHED", 1, proto="tcp", flow="f1")
    tb.add("flow_associate", flow="f1", layer="STREAM_V4", callout=9, ctx="fc1", status=OK)
    tb.add("flow_delete", flow="f1", callout=9, ctx="fc1")
    c = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=1, proto="tcp")
    tb.add("free", obj="state1", endpoint=1)
    tb.done(c)
    ale(tb, "ALE_RESOURCE_RELEASE", 1, proto="tcp")
    # A UDP endpoint talking to three peers: one closure, one release.
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 2, proto="udp")
    for peer in ("10.0.0.1:53", "10.0.0.2:53"):
        ale(tb, "ALE_AUTH_CONNECT", 2, proto="udp", remote=peer, dir="out")
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 2, proto="udp", remote="10.0.0.3:53", dir="in")
    ale(tb, "ALE_AUTH_CONNECT", 2, proto="udp", remote="10.0.0.1:53", reauth=True)
    closure(tb, 2, proto="udp")
    ale(tb, "ALE_RESOURCE_RELEASE", 2, proto="udp")
    # A listener with an accepted child (no assignment of its own).
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 3, proto="tcp")
    ale(tb, "ALE_AUTH_LISTEN", 3, proto="tcp")
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 4, parent=3, proto="tcp", dir="in")
    ale(tb, "ALE_FLOW_ESTABLISHED", 4, parent=3, proto="tcp")
    closure(tb, 4, proto="tcp")
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 4, parent=3, proto="tcp", dir="in")  # handle reused
    closure(tb, 4, proto="tcp")
    closure(tb, 3, proto="tcp")
    ale(tb, "ALE_RESOURCE_RELEASE", 3, proto="tcp")
    # A pended closure that drains the packets queued for its endpoint first.
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 5, proto="udp")
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=5, proto="udp", packet="n1")
    tb.add("clone", packet="q1", of="n1", status=OK)
    tb.add("clone", packet="q2", of="n1", status=OK)
    tb.add("queue", packet="q1", endpoint=5)
    tb.add("queue", packet="q2", endpoint=5)
    tb.done(c, action="BLOCK", absorb=True)
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=5, proto="udp", can_pend=True)
    tb.add("pend_operation", id=c, ctx="op5", status=OK)
    tb.done(c, action="BLOCK", absorb=True)
    tb.add("complete_operation", ctx="op5")
    pended_closure(tb, 5, "h5")
    tb.add("inject", packet="q1", kind="transport_send", endpoint=5, status=OK)
    tb.add("inject_complete", packet="q1", status=OK)
    tb.add("free_clone", packet="q1")
    tb.add("free_clone", packet="q2")
    tb.add("complete_classify", handle="h5", action="PERMIT")
    tb.add("release_classify_handle", handle="h5")
    ale(tb, "ALE_RESOURCE_RELEASE", 5, proto="udp")

    result = tb.check()
    assert result.rules() & set(EP_RULES) == set()
    assert [r for r in EP_RULES if not result.applicable(r)] == []


# -- EP001 ---------------------------------------------------------------------------


def test_ep001_assignment_never_released() -> None:
    tb = TraceBuilder()
    a = ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="udp")
    assert tb.check().fired("EP001") == [[a]]


def test_ep001_release_without_assignment() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    closure(tb, 7)
    r = ale(tb, "ALE_RESOURCE_RELEASE", 7)
    r2 = ale(tb, "ALE_RESOURCE_RELEASE", 8)
    assert tb.check().fired("EP001") == [[r], [r2]]


def test_ep001_second_release() -> None:
    tb = TraceBuilder()
    seqs = tcp_connection(tb, 7)
    again = ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.fired("EP001") == [[seqs["release"], again]]
    assert result.fired("EP006") == []  # a release is never a stray classify


def test_ep001_near_miss_release_delivered_to_two_callouts_and_reuse() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp", callout=1)
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp", callout=2)
    ale(tb, "ALE_RESOURCE_RELEASE", 7, callout=3)
    ale(tb, "ALE_RESOURCE_RELEASE", 7, callout=4)
    tcp_connection(tb, 7)  # the handle is free again after the release
    result = tb.check()
    assert result.fired("EP001") == []
    assert result.fired("EP005") == []


def test_ep001_applicability() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    closure(tb, 7)
    assert not tb.check().applicable("EP001")
    tb2 = TraceBuilder()
    tcp_connection(tb2, 7)
    assert tb2.check().applicable("EP001")


# -- EP002 ---------------------------------------------------------------------------


def test_ep002_released_without_closure() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    c = ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp")
    r = ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.fired("EP002") == [[c, r]]
    assert result.fired("EP001") == []


def test_ep002_accepted_connection_never_closed() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_LISTEN", 3, proto="tcp")
    closure(tb, 3)
    acc = ale(tb, "ALE_AUTH_RECV_ACCEPT", 4, proto="tcp")
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 4, proto="tcp", injection="self")
    assert tb.check().fired("EP002") == [[acc]]


def test_ep002_second_closure_while_the_first_is_pended() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp")
    first, _ = pended_closure(tb, 7, "h")
    second = closure(tb, 7)  # the first has not completed: EP002, not EP006
    tb.add("complete_classify", handle="h", action="PERMIT")
    tb.add("release_classify_handle", handle="h")
    result = tb.check()
    assert result.fired("EP002") == [[first, second]]
    assert result.fired("EP006") == []


def test_ep002_near_miss_reauth_and_self_injection_are_not_new_connections() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=7, proto="tcp")
    tb.done(c, action="BLOCK")  # counted once whatever its verdict
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp", reauth=True)
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp", injection="self")
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 7, proto="tcp", reauth=True, dir="in")
    closure(tb, 7)
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.rules() & set(EP_RULES) == set()
    assert result.applicable("EP002")


def test_ep002_applicability() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    closure(tb, 7)
    assert not tb.check().applicable("EP002")


# -- EP003 ---------------------------------------------------------------------------


def test_ep003_udp_released_without_closure() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="udp")
    first = ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp", remote="10.0.0.1:53")
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp", remote="10.0.0.2:53")
    r = ale(tb, "ALE_RESOURCE_RELEASE", 7)
    assert tb.check().fired("EP003") == [[first, r]]


def test_ep003_second_closure_is_also_ep006() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="udp")
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    c1 = closure(tb, 7)
    c2 = closure(tb, 7)
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.fired("EP003") == [[c1, c2]]
    assert result.fired("EP006") == [[c1, c2]]


def test_ep003_second_closure_after_release() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    c1 = closure(tb, 7)
    c2 = closure(tb, 7)  # no assignment: the endpoint was finished at c1
    result = tb.check()
    assert result.fired("EP003") == [[c1, c2]]
    assert result.fired("EP006") == [[c1, c2]]


def test_ep003_near_miss_many_peers_one_closure_and_two_callouts() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="udp")
    for n in range(5):
        ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp", remote=f"10.0.0.{n}:53")
    closure(tb, 7, callout=1)
    closure(tb, 7, callout=2)  # the same indication delivered to a second callout
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.rules() & set(EP_RULES) == set()
    assert result.applicable("EP003")


def test_ep003_applicability() -> None:
    tb = TraceBuilder()
    tcp_connection(tb, 7)
    assert not tb.check().applicable("EP003")


# -- EP004 ---------------------------------------------------------------------------


def test_ep004_listener_never_closed() -> None:
    tb = TraceBuilder()
    a = ale(tb, "ALE_RESOURCE_ASSIGNMENT", 3, proto="tcp")
    listen = ale(tb, "ALE_AUTH_LISTEN", 3, proto="tcp")
    result = tb.check()
    assert result.fired("EP004") == [[listen]]
    assert result.fired("EP001") == [[a]]


def test_ep004_near_miss_listener_closed_once() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 3, proto="tcp")
    ale(tb, "ALE_AUTH_LISTEN", 3, proto="tcp")
    closure(tb, 3)
    ale(tb, "ALE_RESOURCE_RELEASE", 3)
    result = tb.check()
    assert result.fired("EP004") == []
    assert result.applicable("EP004")


def test_ep004_applicability() -> None:
    tb = TraceBuilder()
    tcp_connection(tb, 7)
    assert not tb.check().applicable("EP004")


# -- EP005 ---------------------------------------------------------------------------


def test_ep005_handle_assigned_twice_while_live() -> None:
    tb = TraceBuilder()
    a1 = ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="udp")
    a2 = ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="udp")
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    assert tb.check().fired("EP005") == [[a1, a2]]


def test_ep005_handle_reused_after_closure_before_release() -> None:
    tb = TraceBuilder()
    a1 = ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp")
    c = closure(tb, 7)
    a2 = ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.fired("EP005") == [[a1, a2]]
    assert result.fired("EP006") == [[c, a2]]


def test_ep005_parent_never_seen() -> None:
    tb = TraceBuilder()
    child = ale(tb, "ALE_AUTH_RECV_ACCEPT", 4, parent=99, proto="tcp")
    ale(tb, "ALE_FLOW_ESTABLISHED", 4, parent=99, proto="tcp")  # same fault, once
    closure(tb, 4, parent=99)
    assert tb.check().fired("EP005") == [[child]]


def test_ep005_near_miss_reuse_after_release_or_unassigned_closure() -> None:
    tb = TraceBuilder()
    tcp_connection(tb, 7)
    tcp_connection(tb, 7)
    ale(tb, "ALE_AUTH_LISTEN", 3, proto="tcp")
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 4, parent=3, proto="tcp")
    closure(tb, 4)
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 4, parent=3, proto="tcp")
    closure(tb, 4)
    closure(tb, 3)
    ale(tb, "ALE_AUTH_RECV_ACCEPT", 5, parent=3, proto="tcp")  # parent seen, now closed
    closure(tb, 5)
    result = tb.check()
    assert result.rules() & set(EP_RULES) == set()
    assert result.applicable("EP005")


def test_ep005_applicability() -> None:
    tb = TraceBuilder()
    tb.add("alloc", obj="a")
    tb.add("free", obj="a")
    assert not tb.check().applicable("EP005")


# -- EP006 ---------------------------------------------------------------------------


def test_ep006_classify_after_closure() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp")
    c = closure(tb, 7)
    stray = ale(tb, "ALE_FLOW_ESTABLISHED", 7, proto="tcp")
    reauth = ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp", reauth=True)
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.fired("EP006") == [[c, stray], [c, reauth]]
    assert result.fired("EP005") == []  # a reauthorization introduces no endpoint


def test_ep006_after_pended_closure_completes() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp")
    c, _ = pended_closure(tb, 7, "h")
    during = ale(tb, "ALE_FLOW_ESTABLISHED", 7)  # closure not complete yet: fine
    tb.add("complete_classify", handle="h", action="PERMIT")
    tb.add("release_classify_handle", handle="h")
    after = ale(tb, "ALE_FLOW_ESTABLISHED", 7)
    assert during and tb.check().fired("EP006") == [[c, after]]


def test_ep006_near_miss_release_and_new_endpoint_after_release() -> None:
    tb = TraceBuilder()
    tcp_connection(tb, 7)
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="udp")
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    closure(tb, 7)
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.fired("EP006") == []
    assert result.applicable("EP006")


def test_ep006_applicability() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    assert not tb.check().applicable("EP006")


# -- EP007 ---------------------------------------------------------------------------


def test_ep007_alloc_not_freed_by_closure() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    a = tb.add("alloc", obj="m1", endpoint=7)
    c = closure(tb, 7)
    tb.add("free", obj="m1")  # too late, and reported only once
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    assert tb.check().fired("EP007") == [[a, c]]


def test_ep007_pended_closure_judged_at_complete_classify() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp")
    a1 = tb.add("alloc", obj="m1", endpoint=7)
    a2 = tb.add("alloc", obj="m2", endpoint=7)
    c, _ = pended_closure(tb, 7, "h")
    tb.add("free", obj="m1")  # freed while pended: in time
    tb.add("complete_classify", handle="h", action="PERMIT")
    tb.add("release_classify_handle", handle="h")
    assert a1 and tb.check().fired("EP007") == [[a2, c]]


def test_ep007_unbound_alloc_never_freed_and_alloc_after_closure() -> None:
    tb = TraceBuilder()
    a = tb.add("alloc", obj="g1", tag="Glob")
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    c = closure(tb, 7)
    late = tb.add("alloc", obj="m9", endpoint=7)
    tb.add("free", obj="m9")
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    assert tb.check().fired("EP007") == [[a], [c, late]]


def test_ep007_near_miss_freed_in_closure() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_RESOURCE_ASSIGNMENT", 7, proto="tcp")
    tb.add("alloc", obj="m1", endpoint=7)
    tb.add("alloc", obj="g1")
    cid = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=7)
    tb.add("free", obj="m1")
    tb.done(cid)
    tb.add("free", obj="g1")
    ale(tb, "ALE_RESOURCE_RELEASE", 7)
    result = tb.check()
    assert result.fired("EP007") == []
    assert result.applicable("EP007")


def test_ep007_applicability() -> None:
    tb = TraceBuilder()
    tcp_connection(tb, 7)
    assert not tb.check().applicable("EP007")


# -- EP008 ---------------------------------------------------------------------------


def test_ep008_queued_packet_left_at_pended_closure_completion() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    q1 = tb.add("queue", packet="p1", endpoint=7)
    q2 = tb.add("queue", packet="p2", endpoint=7)
    c, _ = pended_closure(tb, 7, "h")
    tb.add("inject", packet="p1", kind="transport_send", status="STATUS_FWP_TCPIP_NOT_READY")
    tb.add("complete_classify", handle="h", action="PERMIT")
    tb.add("release_classify_handle", handle="h")
    assert tb.check().fired("EP008") == [[q1, c], [q2, c]]


def test_ep008_near_miss_drained_before_completion() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    tb.add("queue", packet="p1", endpoint=7)
    tb.add("queue", packet="p2", endpoint=7)
    tb.add("queue", packet="p3", endpoint=7)
    pended_closure(tb, 7, "h")
    tb.add("inject", packet="p1", kind="transport_send", endpoint=7, status=OK)
    tb.add("free_clone", packet="p2")
    tb.add("dereference", packet="p3")
    tb.add("complete_classify", handle="h", action="PERMIT")
    tb.add("release_classify_handle", handle="h")
    result = tb.check()
    assert result.fired("EP008") == []
    assert result.applicable("EP008")


def test_ep008_near_miss_unpended_closure_is_not_judged() -> None:
    # The rule speaks of pended closures; a synchronous closure is not judged.
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    tb.add("queue", packet="p1", endpoint=7)
    closure(tb, 7)
    assert tb.check().fired("EP008") == []


def test_ep008_applicability() -> None:
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="udp")
    pended_closure(tb, 7, "h")
    tb.add("complete_classify", handle="h", action="PERMIT")
    assert not tb.check().applicable("EP008")


# -- EP009 ---------------------------------------------------------------------------


def test_ep009_pend_outlives_closure_is_a_warning() -> None:
    tb = TraceBuilder()
    cid = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=7, proto="tcp", can_pend=True)
    p = tb.add("pend_operation", id=cid, ctx="op", status=OK)
    tb.done(cid, action="BLOCK", absorb=True)
    c = closure(tb, 7)
    tb.add("complete_operation", ctx="op")
    result = tb.check()
    assert result.fired("EP009") == [[p, c]]
    assert [v.severity for v in result.raw.violations if v.rule == "EP009"] == ["warning"]


def test_ep009_near_miss_completed_before_closure() -> None:
    tb = TraceBuilder()
    cid = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=7, proto="tcp", can_pend=True)
    tb.add("pend_operation", id=cid, ctx="op", status=OK)
    tb.done(cid, action="BLOCK", absorb=True)
    cid = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=7, proto="tcp", can_pend=True)
    tb.add("pend_operation", id=cid, ctx="op2", status="STATUS_FWP_CANNOT_PEND")
    tb.done(cid)
    tb.add("complete_operation", ctx="op")
    closure(tb, 7)
    result = tb.check()
    assert result.fired("EP009") == []
    assert result.applicable("EP009")


def test_ep009_applicability() -> None:
    tb = TraceBuilder()
    tcp_connection(tb, 7)
    assert not tb.check().applicable("EP009")


def test_missing_fields_are_skipped() -> None:
    tb = TraceBuilder()
    tb.add("classify", id="x", layer="ALE_ENDPOINT_CLOSURE_V4")
    tb.add("classify", id="y", endpoint=3)
    tb.add("classify_done", id="y")
    tb.add("alloc", endpoint=3)
    tb.add("queue", packet="p")
    tb.add("pend_operation", ctx="c", status=OK)
    tb.add("complete_classify")
    result = tb.check()
    assert result.rules() & set(EP_RULES) == set()


def test_ep006_closure_pended_without_its_own_handle_ends_at_classify_done() -> None:
    # pend_classify on a handle not acquired in the closure classify does not pend it.
    tb = TraceBuilder()
    ale(tb, "ALE_AUTH_CONNECT", 7, proto="tcp")
    other = tb.classify(layer="ALE_CONNECT_REDIRECT_V4", endpoint=8)
    tb.add("acquire_classify_handle", id=other, handle="h", status=OK)
    tb.done(other)
    cid = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=7, can_pend=True)
    tb.add("pend_classify", id=cid, handle="h", status=OK)
    tb.done(cid, action="BLOCK")
    stray = ale(tb, "ALE_FLOW_ESTABLISHED", 7)
    tb.add("complete_classify", handle="h", action="PERMIT")
    assert tb.check().fired("EP006") == [[tb.seq_of[cid], stray]]


def test_state_is_bounded_by_live_endpoints() -> None:
    from harness.contract import ep
    from harness.contract.checker import Checker

    checker = Checker(EP_RULES)
    monitor = next(m for m in checker.monitors if isinstance(m, ep.EndpointMonitor))
    seq = 0
    for n in range(3 * ep.GONE_LIMIT // 2):
        for layer in (
            "ALE_RESOURCE_ASSIGNMENT_V4",
            "ALE_AUTH_CONNECT_V4",
            "ALE_ENDPOINT_CLOSURE_V4",
            "ALE_RESOURCE_RELEASE_V4",
        ):
            seq += 1
            checker.feed(
                {
                    "seq": seq,
                    "t": 0,
                    "ev": "classify",
                    "id": seq,
                    "layer": layer,
                    "endpoint": n,
                    "proto": "tcp",
                }
            )
            seq += 1
            checker.feed({"seq": seq, "t": 0, "ev": "classify_done", "id": seq - 1})
    result = checker.finish()
    assert result.violations == []
    assert not monitor._live and not monitor._open and not monitor._closures
    assert len(monitor._gone) == ep.GONE_LIMIT


def test_unregistered_closure_callout_owes_no_closure() -> None:
    """After the closure/release callouts are unregistered the engine cannot
    indicate closures to them: endpoints alive then owe none in the trace."""
    from tests.support.tracebuild import TraceBuilder

    tb = TraceBuilder()
    for key, layer in (("k.close", "ALE_ENDPOINT_CLOSURE_V4"), ("k.rel", "ALE_RESOURCE_RELEASE_V4")):
        tb.add("object_add", session=1, type="callout", key=key, layer=layer,
               lifetime="static", status="STATUS_SUCCESS")
    c = tb.classify(layer="ALE_RESOURCE_ASSIGNMENT_V4", endpoint=7, proto="tcp")
    tb.done(c)
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=7, proto="tcp")
    tb.done(c)
    tb.add("callout_unregister", callout="k.close", status="STATUS_SUCCESS")
    result = tb.check()
    assert "EP001" not in result.rules() and "EP002" not in result.rules()

    # near miss: a failed unregister hides nothing
    tb2 = TraceBuilder()
    tb2.add("object_add", session=1, type="callout", key="k.close",
            layer="ALE_ENDPOINT_CLOSURE_V4", lifetime="static", status="STATUS_SUCCESS")
    c = tb2.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=7, proto="tcp")
    tb2.done(c)
    tb2.add("callout_unregister", callout="k.close", status="STATUS_DEVICE_BUSY")
    assert tb2.check().fired("EP002") == [[tb2.seq_of[c]]]
