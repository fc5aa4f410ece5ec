"""Policy changes reauthorize live flows (RA001), in either direction."""

from __future__ import annotations

from harness.callouts.reference import ReferenceCallout
from harness.engine.objects import Condition, Filter, Sublayer
from tests.engine.netkit import classifies, engine_with, events, run

FW = "fw.sublayer"


def test_next_packet_after_a_policy_change_is_reauthorized_first() -> None:
    ref = ReferenceCallout()
    engine = engine_with(ref, extra=[Sublayer(key=FW, weight=0x9000)])
    session = engine.open_session()

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.tcp_connect("10.0.1.5:80")
        yield 0.1
        status = yield engine.add_filter(session, Filter(
            key="noop", layer="ALE_AUTH_CONNECT_V4", sublayer=FW, action="PERMIT",
            conditions=(Condition("remote_port", 9999),)))
        assert status == "STATUS_SUCCESS"
        engine.peer_send(ep, 10)  # inbound: the reauthorization still happens
        yield 0.1
        yield engine.close(ep)
        return ep

    ep = run(engine, app())
    change = events(engine, "policy_change", layer="ALE_AUTH_CONNECT_V4")[-1]["seq"]
    after = [ev for ev in engine.events if ev["seq"] > change and ev["ev"] == "classify"]
    assert after[0]["layer"] == "ALE_AUTH_CONNECT_V4"
    assert (after[0]["reauth"], after[0]["dir"], after[0]["endpoint"]) == (True, "in", ep.handle)
    assert after[1]["layer"] == "INBOUND_TRANSPORT_V4"


def test_a_policy_change_that_blocks_resets_the_connection() -> None:
    ref = ReferenceCallout()
    engine = engine_with(ref, extra=[Sublayer(key=FW, weight=0x9000)])
    session = engine.open_session()

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.tcp_connect("10.0.1.5:8081")
        yield engine.add_filter(session, Filter(
            key="block", layer="ALE_AUTH_CONNECT_V4", sublayer=FW, action="BLOCK",
            conditions=(Condition("remote_port", 8081),)))
        sent = engine.send(ep, 10)
        yield 0.1
        return sent

    assert run(engine, app()) is False or engine.stack.delivered_out == 0
    assert len(classifies(engine, "ALE_ENDPOINT_CLOSURE")) == 1
    assert not classifies(engine, "STREAM")


def test_without_the_fault_guarantee_no_reauthorization_happens() -> None:
    ref = ReferenceCallout()
    engine = engine_with(ref, faults=["no_reauth_after_policy_change"],
                         extra=[Sublayer(key=FW, weight=0x9000)])
    session = engine.open_session()

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.tcp_connect("10.0.1.5:80")
        yield engine.add_filter(session, Filter(
            key="noop", layer="ALE_AUTH_CONNECT_V4", sublayer=FW, action="PERMIT"))
        engine.send(ep, 10)
        yield engine.close(ep)

    run(engine, app())
    reauths = classifies(engine, "ALE_AUTH_CONNECT", reauth=True)
    assert len(reauths) == 1  # only the one after the pend's completion
