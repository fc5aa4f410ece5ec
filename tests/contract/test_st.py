"""ST001-ST002: out-of-band processing of stream data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tracebuild import TraceBuilder

ST = ["ST001", "ST002"]
OK = "STATUS_SUCCESS"


@pytest.fixture
def tb(tmp_path: Path) -> TraceBuilder:
    return TraceBuilder(tmp_path)


def segment(
    tb: TraceBuilder,
    data: str,
    clone: str | None = None,
    absorb: bool | None = None,
    flow: int = 5,
    **fields: object,
) -> int:
    """A STREAM_V4 classify of ``data`` on ``flow``; cloned when ``clone`` is given,
    absorbed by default when cloned. Returns the classify's seq."""
    k = tb.classify(layer="STREAM_V4", flow=flow, packet=data, dir="out", **fields)
    if clone is not None:
        tb.add("clone", packet=clone, of=data, status=OK)
    if absorb is None:
        absorb = clone is not None
    tb.done(k, action="BLOCK" if absorb else "PERMIT", absorb=absorb)
    return tb.seq_of[k]


def inject(tb: TraceBuilder, clone: str, flow: int = 5, status: str = OK) -> int:
    return tb.add("inject", packet=clone, kind="stream", flow=flow, status=status)


# -- ST001 --------------------------------------------------------------------


def test_st001_inline_segment_while_out_of_band_data_pending(tb: TraceBuilder) -> None:
    first = segment(tb, "d1", clone="s1")
    second = segment(tb, "d2")
    inject(tb, "s1")
    result = tb.check(ST)
    assert result.fired("ST001") == [[first, second]]
    assert "flow 5" in result.messages("ST001")[0]


@pytest.mark.parametrize(
    ("clone", "absorb"), [("s2", False), (None, True)], ids=["clone-no-absorb", "absorb-no-clone"]
)
def test_st001_half_out_of_band_segment(
    tb: TraceBuilder, clone: str | None, absorb: bool
) -> None:
    first = segment(tb, "d1", clone="s1")
    second = segment(tb, "d2", clone=clone, absorb=absorb)
    assert tb.check(ST).fired("ST001") == [[first, second]]


def test_st001_oldest_pending_segment_is_cited(tb: TraceBuilder) -> None:
    segment(tb, "d1", clone="s1")
    second = segment(tb, "d2", clone="s2")
    inject(tb, "s1")
    third = segment(tb, "d3")
    assert tb.check(ST).fired("ST001") == [[second, third]]


def test_st001_near_miss_inline_again_after_injection(tb: TraceBuilder) -> None:
    segment(tb, "d1", clone="s1")
    segment(tb, "d2", clone="s2")
    segment(tb, "d9", flow=6)  # another flow may stay inline
    inject(tb, "s1")
    # the callout's own injected data comes back through the layer: inline is right
    segment(tb, "s1", injection="self")
    # without the right to write the action it may not absorb (PC013)
    segment(tb, "d2b", rights=False)
    inject(tb, "s2")
    segment(tb, "d3")
    # data dropped (freed without injection) no longer holds the flow out of band
    segment(tb, "d4", clone="s4")
    tb.add("free_clone", packet="s4")
    segment(tb, "d5")
    result = tb.check(ST)
    assert result.fired("ST001") == []
    assert result.applicable("ST001")


def test_st001_failed_injection_keeps_data_pending(tb: TraceBuilder) -> None:
    first = segment(tb, "d1", clone="s1")
    inject(tb, "s1", status="STATUS_FWP_INJECT_HANDLE_CLOSING")
    second = segment(tb, "d2")
    assert tb.check(ST).fired("ST001") == [[first, second]]


def test_st_not_applicable_without_stream_layer(tb: TraceBuilder) -> None:
    k = tb.classify(layer="OUTBOUND_TRANSPORT_V4", endpoint=1, packet="p1")
    tb.done(k)
    result = tb.check(ST)
    assert not result.applicable("ST001")
    assert not result.applicable("ST002")


# -- ST002 --------------------------------------------------------------------


def test_st002_injected_out_of_order(tb: TraceBuilder) -> None:
    first = segment(tb, "d1", clone="s1")
    second = segment(tb, "d2", clone="s2")
    late = inject(tb, "s2")
    inject(tb, "s1")
    result = tb.check(ST)
    assert result.fired("ST002") == [[first, second, late]]
    assert result.fired("ST001") == []


def test_st002_each_overtaking_injection_is_reported(tb: TraceBuilder) -> None:
    first = segment(tb, "d1", clone="s1")
    second = segment(tb, "d2", clone="s2")
    third = segment(tb, "d3", clone="s3")
    i3 = inject(tb, "s3")
    i2 = inject(tb, "s2")
    inject(tb, "s1")
    assert tb.check(ST).fired("ST002") == [[first, third, i3], [first, second, i2]]


def test_st002_near_miss_in_order_per_flow(tb: TraceBuilder) -> None:
    segment(tb, "a1", clone="x1", flow=1)
    segment(tb, "b1", clone="y1", flow=2)
    segment(tb, "a2", clone="x2", flow=1)
    inject(tb, "y1", flow=2)  # other flows interleave freely
    inject(tb, "x1", flow=1)
    inject(tb, "x2", flow=1)
    # a failed injection attempt out of order delivers nothing
    segment(tb, "a3", clone="x3", flow=1)
    segment(tb, "a4", clone="x4", flow=1)
    inject(tb, "x4", flow=1, status="STATUS_FWP_INJECT_HANDLE_CLOSING")
    inject(tb, "x3", flow=1)
    inject(tb, "x4", flow=1)
    # a dropped segment does not hold back the next one
    segment(tb, "a5", clone="x5", flow=1)
    segment(tb, "a6", clone="x6", flow=1)
    tb.add("free_clone", packet="x5")
    inject(tb, "x6", flow=1)
    result = tb.check(ST)
    assert result.rules() == set()
    assert result.applicable("ST002")


# -- PK, PI, ST and RA together -------------------------------------------------

MINE = [
    "PK001", "PK002", "PK003", "PI001", "PI002", "PI003", "PI004",
    "ST001", "ST002", "RA001", "RA002",
]


def test_clean_connection_through_all_four_families(tb: TraceBuilder) -> None:
    """A TCP connection whose callout inspects its stream out of band, holds an
    outbound packet, is reauthorized after a policy change and pends the
    endpoint's closure to flush what it queued."""
    k = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=1, proto="tcp", dir="out",
                    can_pend=True, local="10.0.0.2:50000", remote="10.0.0.9:443", dt=0.01)
    tb.done(k)
    k = tb.classify(layer="ALE_FLOW_ESTABLISHED_V4", endpoint=1, flow=10, proto="tcp")
    tb.done(k)
    # stream data inspected out of band, reinjected in order
    segment(tb, "d1", clone="s1", flow=10)
    segment(tb, "d2", clone="s2", flow=10)
    for clone in ("s1", "s2"):
        inject(tb, clone, flow=10)
    segment(tb, "s1", flow=10, injection="self")
    segment(tb, "s2", flow=10, injection="self")
    for clone in ("s1", "s2"):
        tb.add("inject_complete", packet=clone, status=OK, dt=0.001)
        tb.add("free_clone", packet=clone)
    # an outbound packet held for later, queued on its endpoint
    k = tb.classify(layer="OUTBOUND_TRANSPORT_V4", endpoint=1, flow=10, packet="p1")
    tb.add("reference", packet="p1")
    tb.add("clone", packet="c1", of="p1", status=OK)
    tb.done(k, action="BLOCK", absorb=True)
    tb.add("dereference", packet="p1")
    tb.add("queue", packet="c1", endpoint=1)
    # a filter change at the connect layer: reauthorized before its next packet
    tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4", dt=0.5)
    k = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=1, proto="tcp", dir="in",
                    reauth=True)
    tb.done(k, action="PERMIT")
    k = tb.classify(layer="INBOUND_TRANSPORT_V4", endpoint=1, flow=10, packet="p2", dir="in")
    tb.done(k, action="CONTINUE")
    segment(tb, "d3", flow=10)
    # closure pended until the queued packet is reinjected
    k = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=1, proto="tcp")
    tb.add("acquire_classify_handle", id=k, handle="h1", status=OK)
    tb.add("pend_classify", id=k, handle="h1", status=OK)
    tb.done(k, action="CONTINUE")
    tb.add("inject", packet="c1", kind="transport_send", endpoint=1, status=OK)
    tb.add("inject_complete", packet="c1", status=OK, dt=0.001)
    tb.add("free_clone", packet="c1")
    tb.add("complete_classify", handle="h1", action="PERMIT")
    tb.add("release_classify_handle", handle="h1")
    k = tb.classify(layer="ALE_RESOURCE_RELEASE_V4", endpoint=1)
    tb.done(k)
    result = tb.check(MINE)
    assert result.raw.violations == []
    assert result.raw.not_applicable == []


def test_st_failed_clone_or_missing_absorb_are_not_out_of_band(tb: TraceBuilder) -> None:
    k = tb.classify(layer="STREAM_V4", flow=5, packet="d1")
    tb.add("clone", packet="s1", of="d1", status="STATUS_NO_MEMORY")
    tb.done(k, action="PERMIT", absorb=False)
    k = tb.classify(layer="STREAM_V4", flow=5, packet="d2")
    tb.add("clone", packet="s2", of="d2", status=OK)
    tb.add("classify_done", id=k, action="BLOCK")  # absorb not recorded: not judged
    segment(tb, "d3")
    tb.add("free_clone", packet="s2")
    result = tb.check(ST)
    assert result.rules() == set()
