"""RA001-RA002: reauthorization after a policy change, and its synchronous decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tracebuild import TraceBuilder

RA = ["RA001", "RA002"]
OK = "STATUS_SUCCESS"


@pytest.fixture
def tb(tmp_path: Path) -> TraceBuilder:
    return TraceBuilder(tmp_path)


def connect(
    tb: TraceBuilder, endpoint: int = 1, flow: int | None = 10, layer: str = "ALE_AUTH_CONNECT_V4"
) -> None:
    """An authorized connection; with ``flow``, its ALE_FLOW_ESTABLISHED names the flow."""
    k = tb.classify(layer=layer, endpoint=endpoint, proto="tcp", dir="out")
    tb.done(k)
    if flow is not None:
        v = layer[-2:]
        k = tb.classify(layer=f"ALE_FLOW_ESTABLISHED_V{v[-1]}", endpoint=endpoint, flow=flow)
        tb.done(k)


def packet(tb: TraceBuilder, layer: str = "OUTBOUND_TRANSPORT_V4", **fields: object) -> int:
    k = tb.classify(layer=layer, **fields)
    tb.done(k)
    return tb.seq_of[k]


def reauth(tb: TraceBuilder, endpoint: int = 1, layer: str = "ALE_AUTH_CONNECT_V4") -> int:
    k = tb.classify(layer=layer, endpoint=endpoint, reauth=True, dir="in")
    tb.done(k, action="PERMIT")
    return tb.seq_of[k]


def close(tb: TraceBuilder, endpoint: int = 1, pend: bool = False) -> int:
    """Closure of ``endpoint``; returns the seq at which it is complete."""
    k = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=endpoint)
    if pend:
        tb.add("acquire_classify_handle", id=k, handle=f"c{endpoint}", status=OK)
        tb.add("pend_classify", id=k, handle=f"c{endpoint}", status=OK)
    done = tb.done(k, action="CONTINUE")
    if pend:
        done = tb.add("complete_classify", handle=f"c{endpoint}", action="PERMIT")
        tb.add("release_classify_handle", handle=f"c{endpoint}")
    return done


# -- RA001 --------------------------------------------------------------------


def test_ra001_next_packet_without_reauthorization(tb: TraceBuilder) -> None:
    connect(tb)
    change = tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    pkt = packet(tb, endpoint=1)
    packet(tb, endpoint=1)  # the debt is reported once
    result = tb.check(RA)
    assert result.fired("RA001") == [[change, pkt]]
    assert "endpoint 1" in result.messages("RA001")[0]


def test_ra001_packet_named_by_flow_only_inbound(tb: TraceBuilder) -> None:
    connect(tb, layer="ALE_AUTH_RECV_ACCEPT_V6")
    change = tb.add("policy_change", layer="ALE_AUTH_RECV_ACCEPT_V6")
    pkt = packet(tb, layer="STREAM_V6", flow=10, packet="d1", dir="in")
    assert tb.check(RA).fired("RA001") == [[change, pkt]]


def test_ra001_latest_unpaid_change_is_cited(tb: TraceBuilder) -> None:
    connect(tb)
    tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    reauth(tb)
    packet(tb, endpoint=1)
    second = tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    pkt = packet(tb, layer="INBOUND_IPPACKET_V4", endpoint=1, dir="in")
    assert tb.check(RA).fired("RA001") == [[second, pkt]]


def test_ra001_reauthorization_after_the_packet_is_too_late(tb: TraceBuilder) -> None:
    connect(tb)
    change = tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    pkt = packet(tb, layer="DATAGRAM_DATA_V4", endpoint=1)
    reauth(tb)
    assert tb.check(RA).fired("RA001") == [[change, pkt]]


def test_ra001_open_closure_still_owes(tb: TraceBuilder) -> None:
    connect(tb)
    k = tb.classify(layer="ALE_ENDPOINT_CLOSURE_V4", endpoint=1)
    tb.add("pend_classify", id=k, handle="c1", status=OK)
    tb.done(k, action="CONTINUE")
    change = tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    pkt = packet(tb, endpoint=1)  # the closure is pended, not complete
    tb.add("complete_classify", handle="c1", action="PERMIT")
    assert tb.check(RA).fired("RA001") == [[change, pkt]]


def test_ra001_near_miss(tb: TraceBuilder) -> None:
    connect(tb, endpoint=1, flow=10)
    connect(tb, endpoint=2, flow=20)
    connect(tb, endpoint=3, flow=30)
    connect(tb, endpoint=4, flow=40)
    tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    tb.add("policy_change", layer="ALE_AUTH_CONNECT_V6")  # other version: no debt
    tb.add("policy_change", layer="OUTBOUND_TRANSPORT_V4")  # not an auth layer
    # 1: reauthorized before its next packet (in the other direction)
    reauth(tb, 1)
    packet(tb, endpoint=1)
    packet(tb, layer="STREAM_V4", flow=10, packet="d1")
    # 2: closed without sending anything; 3: closure pended, completed, no packet
    close(tb, 2)
    close(tb, 3, pend=True)
    # 4: a packet at a layer that is not a packet layer of the convention
    packet(tb, layer="STREAM_PACKET_V4", flow=40)
    packet(tb, layer="INBOUND_TRANSPORT_DISCARD_V4", endpoint=4)
    reauth(tb, 4)
    packet(tb, endpoint=4)
    # 5: authorized after the change
    connect(tb, endpoint=5, flow=50)
    packet(tb, endpoint=5)
    result = tb.check(RA)
    assert result.fired("RA001") == []
    assert result.applicable("RA001")


def test_ra001_endpoint_handle_reused_after_closure(tb: TraceBuilder) -> None:
    connect(tb, endpoint=1, flow=10)
    close(tb, 1)
    tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    # flow 10 and endpoint 1 are gone: a packet naming them owes nothing
    packet(tb, layer="STREAM_V4", flow=10, packet="d1")
    connect(tb, endpoint=1, flow=11, layer="ALE_AUTH_RECV_ACCEPT_V4")
    packet(tb, endpoint=1)
    assert tb.check(RA).fired("RA001") == []


def test_ra001_not_applicable_without_policy_change(tb: TraceBuilder) -> None:
    connect(tb)
    packet(tb, endpoint=1)
    result = tb.check(RA)
    assert not result.applicable("RA001")
    assert not result.applicable("RA002")


# -- RA002 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "absorb"), [("BLOCK", True), ("NONE", False), ("NONE", True)]
)
def test_ra002_reauthorization_not_decided_synchronously(
    tb: TraceBuilder, action: str, absorb: bool
) -> None:
    connect(tb)
    k = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=1, reauth=True)
    done = tb.done(k, action=action, absorb=absorb)
    result = tb.check(RA)
    assert result.fired("RA002") == [[tb.seq_of[k], done]]


def test_ra002_near_miss(tb: TraceBuilder) -> None:
    for n, action in enumerate(("PERMIT", "BLOCK", "CONTINUE")):
        k = tb.classify(layer="ALE_AUTH_RECV_ACCEPT_V4", endpoint=n, reauth=True)
        tb.done(k, action=action)
    # without the write right the callout leaves the action as it found it (PC013)
    k = tb.classify(layer="ALE_AUTH_CONNECT_V6", endpoint=7, reauth=True, rights=False)
    tb.done(k, action="NONE")
    # an initial classify may absorb (a pend)
    k = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=8, can_pend=True)
    tb.done(k, action="BLOCK", absorb=True)
    result = tb.check(RA)
    assert result.fired("RA002") == []
    assert result.applicable("RA002")


def test_ra002_absorb_is_judged_even_without_write_right(tb: TraceBuilder) -> None:
    k = tb.classify(layer="ALE_AUTH_CONNECT_V6", endpoint=7, reauth=True, rights=False)
    done = tb.done(k, action="NONE", absorb=True)
    assert tb.check(RA).fired("RA002") == [[tb.seq_of[k], done]]


def test_ra001_flow_learned_from_a_packet_layer_classify(tb: TraceBuilder) -> None:
    connect(tb, flow=None)
    packet(tb, layer="INBOUND_TRANSPORT_V4", endpoint=1, flow=77, dir="in")
    change = tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    pkt = packet(tb, layer="STREAM_V4", flow=77, packet="d1", dir="in")
    assert tb.check(RA).fired("RA001") == [[change, pkt]]


def test_ra001_resource_release_ends_an_endpoint_without_closure(tb: TraceBuilder) -> None:
    connect(tb, endpoint=1, flow=10)
    k = tb.classify(layer="ALE_RESOURCE_RELEASE_V4", endpoint=1)
    tb.done(k)
    tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    packet(tb, layer="STREAM_V4", flow=10, packet="d1")
    packet(tb, endpoint=1)
    result = tb.check(RA)
    assert result.fired("RA001") == []
    assert result.applicable("RA001")


def test_a_new_authorization_after_the_change_settles_the_debt() -> None:
    """A RECV_ACCEPT pended across a policy change is authorized afresh by its
    reinjected clone's classify: its next packet owes no reauthorization."""
    from tests.support.tracebuild import TraceBuilder

    tb = TraceBuilder()
    c = tb.classify(layer="ALE_AUTH_RECV_ACCEPT_V4", endpoint=9, proto="tcp", dir="in",
                    can_pend=True)
    tb.done(c, "BLOCK", True)
    tb.add("policy_change", layer="ALE_AUTH_RECV_ACCEPT_V4")
    c = tb.classify(layer="ALE_AUTH_RECV_ACCEPT_V4", endpoint=9, proto="tcp", dir="in",
                    injection="self")
    tb.done(c, "PERMIT")
    c = tb.classify(layer="INBOUND_TRANSPORT_V4", endpoint=9, proto="tcp", dir="in")
    tb.done(c, "PERMIT")
    assert tb.check(["RA001"]).fired("RA001") == []
