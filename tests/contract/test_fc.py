"""Rule family FC: flow contexts and callout unregistration."""

from __future__ import annotations

from tests.support.tracebuild import TraceBuilder

FC_RULES = ["FC001", "FC002", "FC003", "FC004"]
OK = "STATUS_SUCCESS"
EXISTS = "STATUS_OBJECT_NAME_EXISTS"
BUSY = "STATUS_DEVICE_BUSY"


def associate(tb: TraceBuilder, flow: object, ctx: object, status: str = OK, **kw: object) -> int:
    fields = {"layer": "STREAM_V4", "callout": 9, **kw}
    return tb.add("flow_associate", flow=flow, ctx=ctx, status=status, **fields)


def test_clean_unload_breaks_no_fc_rule() -> None:
    tb = TraceBuilder()
    tb.add("callout_register", callout=9, status=OK)
    for flow in ("f1", "f2", "f3"):
        cid = tb.classify(layer="STREAM_V4", callout=9, flow=flow, packet=f"s{flow}")
        tb.add("alloc", obj=f"c{flow}")
        associate(tb, flow, f"c{flow}")
        tb.done(cid)
    tb.add("flow_delete", flow="f1", callout=9, ctx="cf1")  # the flow ended
    tb.add("flow_remove", flow="f2", layer="STREAM_V4", callout=9, status=OK)
    tb.add("flow_delete", flow="f2", callout=9, ctx="cf2")  # flowDeleteFn of that remove
    tb.add("alloc", obj="extra")
    associate(tb, "f3", "extra", status=EXISTS)
    tb.add("free", obj="extra")
    tb.add("callout_unregister", callout=9, status=BUSY)
    tb.add("flow_remove", flow="f3", layer="STREAM_V4", callout=9, status="STATUS_PENDING")
    tb.add("flow_delete", flow="f3", callout=9, ctx="cf3")
    tb.add("callout_unregister", callout=9, status=OK)
    result = tb.check()
    assert result.rules() & set(FC_RULES) == set()
    assert [r for r in FC_RULES if not result.applicable(r)] == []


# -- FC001 ---------------------------------------------------------------------------


def test_fc001_context_never_deleted() -> None:
    tb = TraceBuilder()
    a = associate(tb, "f1", "c1")
    associate(tb, "f2", "c2", status="STATUS_INVALID_PARAMETER")  # never attached
    assert tb.check().fired("FC001") == [[a]]


def test_fc001_deleted_twice() -> None:
    tb = TraceBuilder()
    associate(tb, "f1", "c1")
    d1 = tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    d2 = tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    assert tb.check().fired("FC001") == [[d1, d2]]


def test_fc001_delete_never_associated_and_remove_then_two_deletes() -> None:
    tb = TraceBuilder()
    stray = tb.add("flow_delete", flow="f9", callout=9, ctx="c9")
    associate(tb, "f1", "c1")
    tb.add("flow_remove", flow="f1", layer="STREAM_V4", callout=9, status=OK)
    tb.add("flow_delete", flow="f1", callout=9, ctx="c1")  # belongs to the remove
    extra = tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    assert tb.check().fired("FC001") == [[stray], [extra]]


def test_fc001_delete_with_the_wrong_context() -> None:
    tb = TraceBuilder()
    a = associate(tb, "f1", "c1")
    d = tb.add("flow_delete", flow="f1", callout=9, ctx="other")
    assert tb.check().fired("FC001") == [[a, d]]


def test_fc001_remove_succeeds_with_nothing_associated() -> None:
    tb = TraceBuilder()
    r = tb.add("flow_remove", flow="f1", layer="STREAM_V4", callout=9, status=OK)
    tb.add("flow_remove", flow="f2", layer="STREAM_V4", callout=9, status="STATUS_UNSUCCESSFUL")
    assert tb.check().fired("FC001") == [[r]]


def test_fc001_near_miss_remove_counted_once_in_either_order() -> None:
    tb = TraceBuilder()
    associate(tb, "f1", "c1")
    tb.add("flow_remove", flow="f1", layer="STREAM_V4", callout=9, status=OK)
    associate(tb, "f2", "c2")
    # flowDeleteFn runs inside the remove call, so it may be logged first.
    tb.add("flow_delete", flow="f2", callout=9, ctx="c2")
    tb.add("flow_remove", flow="f2", layer="STREAM_V4", callout=9, status=OK)
    associate(tb, "f1", "c3")  # the flow gets a context again after its remove
    tb.add("flow_delete", flow="f1", callout=9, ctx="c3")
    result = tb.check()
    assert result.fired("FC001") == []
    assert result.applicable("FC001")


def test_fc001_applicability() -> None:
    tb = TraceBuilder()
    tb.add("callout_register", callout=9, status=OK)
    assert not tb.check().applicable("FC001")


# -- FC002 ---------------------------------------------------------------------------


def test_fc002_engine_accepts_a_second_context() -> None:
    tb = TraceBuilder()
    a1 = associate(tb, "f1", "c1")
    a2 = associate(tb, "f1", "c2")
    tb.add("flow_delete", flow="f1", callout=9, ctx="c2")
    result = tb.check()
    assert result.fired("FC002") == [[a1, a2]]
    assert result.fired("FC001") == []


def test_fc002_driver_does_not_free_the_rejected_context() -> None:
    tb = TraceBuilder()
    associate(tb, "f1", "c1")
    alloc = tb.add("alloc", obj="c2")
    a2 = associate(tb, "f1", "c2", status=EXISTS)
    tb.add("alloc", obj="c3")
    associate(tb, "f1", "c3", status=EXISTS)
    tb.add("free", obj="c3")
    tb.add("free", obj="c1")  # frees the wrong one
    tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    result = tb.check()
    assert result.fired("FC002") == [[alloc, a2]]
    assert result.fired("FC001") == []


def test_fc002_engine_fails_with_another_status_and_driver_frees() -> None:
    tb = TraceBuilder()
    a1 = associate(tb, "f1", "c1")
    a2 = associate(tb, "f1", "c2", status="STATUS_UNSUCCESSFUL")
    tb.add("free", obj="c2")
    tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    assert tb.check().fired("FC002") == [[a1, a2]]


def test_fc002_near_miss_other_layer_callout_or_after_delete() -> None:
    tb = TraceBuilder()
    associate(tb, "f1", "c1")
    associate(tb, "f1", "c2", callout=8)
    associate(tb, "f2", "c3")
    tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    associate(tb, "f1", "c4")
    for flow, callout, ctx in (("f1", 8, "c2"), ("f2", 9, "c3"), ("f1", 9, "c4")):
        tb.add("flow_delete", flow=flow, callout=callout, ctx=ctx)
    result = tb.check()
    assert result.rules() & set(FC_RULES) == set()
    assert not result.applicable("FC002")


def test_fc002_near_miss_rejected_context_freed() -> None:
    tb = TraceBuilder()
    tb.add("alloc", obj="c1")
    associate(tb, "f1", "c1")
    tb.add("alloc", obj="c2")
    associate(tb, "f1", "c2", status=EXISTS)
    tb.add("free", obj="c2")
    tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    result = tb.check()
    assert result.fired("FC002") == []
    assert result.applicable("FC002")


# -- FC003 ---------------------------------------------------------------------------


def test_fc003_unregister_succeeds_with_live_contexts() -> None:
    tb = TraceBuilder()
    a = associate(tb, "f1", "c1")
    associate(tb, "f2", "c2")
    u = tb.add("callout_unregister", callout=9, status=OK)
    tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    tb.add("flow_delete", flow="f2", callout=9, ctx="c2")
    assert tb.check().fired("FC003") == [[a, u]]


def test_fc003_device_busy_with_nothing_left() -> None:
    tb = TraceBuilder()
    associate(tb, "f1", "c1", callout=8)  # another callout's context
    tb.add("flow_delete", flow="f1", callout=8, ctx="c1")
    associate(tb, "f2", "c2", callout=8)
    u = tb.add("callout_unregister", callout=9, status=BUSY)
    tb.add("flow_delete", flow="f2", callout=8, ctx="c2")
    assert tb.check().fired("FC003") == [[u]]


def test_fc003_near_miss_busy_then_removed_then_unregistered() -> None:
    tb = TraceBuilder()
    associate(tb, "f1", "c1")
    tb.add("callout_unregister", callout=9, status=BUSY)
    tb.add("flow_remove", flow="f1", layer="STREAM_V4", callout=9, status=OK)
    tb.add("callout_unregister", callout=9, status=OK)
    tb.add("callout_unregister", callout=8, status="FWP_E_CALLOUT_NOT_FOUND")
    result = tb.check()
    assert result.rules() & set(FC_RULES) == set()
    assert result.applicable("FC003")


def test_fc003_applicability() -> None:
    tb = TraceBuilder()
    associate(tb, "f1", "c1")
    tb.add("flow_delete", flow="f1", callout=9, ctx="c1")
    assert not tb.check().applicable("FC003")


# -- FC004 ---------------------------------------------------------------------------


def test_fc004_classify_after_unregister() -> None:
    tb = TraceBuilder()
    tb.add("callout_register", callout=9, status=OK)
    u = tb.add("callout_unregister", callout=9, status=OK)
    cid = tb.classify(layer="STREAM_V4", callout=9, flow="f1")
    tb.done(cid)
    assert tb.check().fired("FC004") == [[u, tb.seq_of[cid]]]


def test_fc004_pending_work_outstanding_at_unregister() -> None:
    tb = TraceBuilder()
    cid = tb.classify(
        layer="ALE_AUTH_CONNECT_V4", callout=7, endpoint=1, proto="tcp", can_pend=True, packet="n1"
    )
    p = tb.add("pend_operation", id=cid, ctx="op", status=OK)
    c = tb.add("clone", packet="k1", of="n1", status=OK)
    tb.add("clone", packet="k2", of="n1", status=OK)
    h = tb.add("acquire_classify_handle", id=cid, handle="h1", status=OK)
    tb.done(cid, action="BLOCK", absorb=True)
    tb.add("free_clone", packet="k2")
    u1 = tb.add("callout_unregister", callout=7, status=OK)
    tb.add("callout_unregister", callout=8, status=OK)  # the same leftovers, not again
    result = tb.check()
    assert result.fired("FC004") == [[p, u1], [c, u1], [h, u1]]


def test_fc004_near_miss_all_work_done_and_reregistered() -> None:
    tb = TraceBuilder()
    cid = tb.classify(
        layer="ALE_AUTH_CONNECT_V4", callout=7, endpoint=1, proto="tcp", can_pend=True, packet="n1"
    )
    tb.add("pend_operation", id=cid, ctx="op", status=OK)
    tb.add("clone", packet="k1", of="n1", status=OK)
    tb.add("acquire_classify_handle", id=cid, handle="h1", status=OK)
    tb.done(cid, action="BLOCK", absorb=True)
    tb.add("complete_operation", ctx="op")
    tb.add("free_clone", packet="k1")
    tb.add("release_classify_handle", handle="h1")
    tb.add("callout_unregister", callout=7, status=OK)
    other = tb.classify(layer="STREAM_V4", callout=8, flow="f1")  # another callout
    tb.done(other)
    tb.add("callout_register", callout=7, status=OK)
    again = tb.classify(layer="ALE_AUTH_CONNECT_V4", callout=7, endpoint=2, proto="tcp")
    tb.done(again)
    result = tb.check()
    assert result.fired("FC004") == []
    assert result.applicable("FC004")


def test_fc004_applicability() -> None:
    tb = TraceBuilder()
    tb.add("callout_unregister", callout=7, status="FWP_E_CALLOUT_NOT_FOUND")
    result = tb.check()
    assert not result.applicable("FC004")
    assert result.applicable("FC003")
