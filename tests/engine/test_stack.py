"""Sockets and endpoints: which layers are indicated, how often, with which handles."""

from __future__ import annotations

from collections import Counter

from harness.callouts.reference import ReferenceCallout
from harness.engine.model import Engine
from tests.engine.netkit import Probe, classifies, engine_with, events, run


def tcp_session(engine: Engine, port: int = 80, family: str = "V4"):  # type: ignore[no-untyped-def]
    remote = "10.0.1.5" if family == "V4" else "[fd00::105]"
    ep = yield engine.tcp_connect(f"{remote}:{port}", family)
    engine.send(ep, 100)
    engine.peer_send(ep, 50)
    yield 0.5
    yield engine.close(ep)
    return ep


def test_tcp_connect_crosses_the_layers_in_order() -> None:
    probe = Probe()
    engine = engine_with(probe)
    run(engine, tcp_session(engine))
    order = [ci.layer[:-3] for ci in probe.seen]
    assert order[:5] == [
        "ALE_RESOURCE_ASSIGNMENT", "ALE_AUTH_CONNECT", "OUTBOUND_TRANSPORT",
        "ALE_FLOW_ESTABLISHED", "STREAM",
    ]
    assert order[-2:] == ["ALE_ENDPOINT_CLOSURE", "ALE_RESOURCE_RELEASE"]
    assert {ci.endpoint for ci in probe.seen if ci.endpoint is not None} == {
        probe.seen[0].endpoint}


def test_v6_uses_v6_layers() -> None:
    probe = Probe()
    engine = engine_with(probe)
    run(engine, tcp_session(engine, family="V6"))
    assert all(ci.layer.endswith("_V6") for ci in probe.seen)


def test_one_closure_per_udp_endpoint_whatever_the_peers() -> None:
    probe = Probe()
    engine = engine_with(probe)

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.udp_open()
        for host in range(1, 5):
            engine.send(ep, 10, f"10.0.2.{host}:53")
        engine.peer_send(ep, 10, "10.0.2.9:53")
        yield 0.5
        yield engine.close(ep)

    run(engine, app())
    assert len(probe.at("ALE_AUTH_CONNECT")) == 4
    assert len(probe.at("ALE_AUTH_RECV_ACCEPT")) == 1
    assert len(probe.at("ALE_ENDPOINT_CLOSURE")) == 1
    assert len(probe.at("ALE_RESOURCE_RELEASE")) == 1


def test_listener_and_accepted_connections_close_once_each() -> None:
    probe = Probe()
    engine = engine_with(probe)

    def app():  # type: ignore[no-untyped-def]
        listener = yield engine.tcp_listen(8000)
        conns = []
        for n in range(3):
            conns.append((yield engine.peer_connect(listener, f"10.0.3.{n + 1}:50000")))
        for conn in conns:
            yield engine.close(conn)
        yield engine.close(listener)
        return listener, conns

    listener, conns = run(engine, app())
    closures = Counter(ci.endpoint for ci in probe.at("ALE_ENDPOINT_CLOSURE"))
    assert closures == Counter({listener.handle: 1, **{c.handle: 1 for c in conns}})
    accepts = probe.at("ALE_AUTH_RECV_ACCEPT")
    assert {ci.parent for ci in accepts} == {listener.handle}
    # accepted connections had no resource assignment, so no release either
    assert [ci.endpoint for ci in probe.at("ALE_RESOURCE_RELEASE")] == [listener.handle]
    (listen,) = probe.at("ALE_AUTH_LISTEN")
    assert listen.endpoint == listener.handle


def test_first_inbound_packet_of_a_new_flow_needs_ale_classification() -> None:
    probe = Probe()
    engine = engine_with(probe)

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.udp_open()
        engine.peer_send(ep, 10, "10.0.2.9:53")
        yield 0.1
        engine.peer_send(ep, 10, "10.0.2.9:53")
        yield 0.1
        yield engine.close(ep)

    run(engine, app())
    inbound = probe.at("INBOUND_TRANSPORT")
    assert [ci.ale_required for ci in inbound] == [True, False]
    assert inbound[0].endpoint is None and inbound[1].endpoint is not None


def test_blocked_tcp_connection_still_gets_its_closure() -> None:
    ref = ReferenceCallout(block_ports=[23])
    engine = engine_with(ref)

    def app():  # type: ignore[no-untyped-def]
        return (yield engine.tcp_connect("10.0.1.5:23"))

    assert run(engine, app()) is None
    assert len(classifies(engine, "ALE_ENDPOINT_CLOSURE")) == 1
    assert len(classifies(engine, "ALE_RESOURCE_RELEASE")) == 1


def test_handles_are_unique_while_live_and_reused_only_after_release() -> None:
    probe = Probe()
    engine = engine_with(probe)

    def app():  # type: ignore[no-untyped-def]
        for _ in range(6):
            eps = []
            for _ in range(4):
                eps.append((yield engine.udp_open()))
            assert len({ep.handle for ep in eps}) == 4  # unique among the live
            for ep in eps:
                yield engine.close(ep)

    run(engine, app())
    holder: dict[int, str] = {}  # handle -> "live" or "released"
    reused = 0
    for ev in engine.events:
        if ev["ev"] != "classify":
            continue
        family, handle = ev["layer"][:-3], ev.get("endpoint")
        if family == "ALE_RESOURCE_ASSIGNMENT":
            assert holder.get(handle) != "live"  # never handed out while live
            reused += holder.get(handle) == "released"
            holder[handle] = "live"
        elif family == "ALE_RESOURCE_RELEASE":
            holder[handle] = "released"
    assert reused > 0  # handles do come back, after their release


def test_flow_delete_comes_before_the_closure() -> None:
    ref = ReferenceCallout()
    engine = engine_with(ref)
    run(engine, tcp_session(engine))
    kinds = [(ev["ev"], ev.get("layer", "")) for ev in engine.events]
    delete = kinds.index(("flow_delete", ""))
    closure = next(
        i for i, k in enumerate(kinds)
        if k[0] == "classify" and k[1].startswith("ALE_ENDPOINT_CLOSURE")
    )
    assert delete < closure
    assert events(engine, "flow_associate")[0]["ctx"] == events(engine, "flow_delete")[0]["ctx"]


def test_udp_datagram_pended_at_connect_is_flushed_and_retransmitted() -> None:
    ref = ReferenceCallout(inspect_udp=False)
    engine = engine_with(ref)

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.udp_open()
        engine.send(ep, 42, "10.0.2.1:53")
        yield 1.0
        yield engine.close(ep)

    run(engine, app())
    (first,) = classifies(engine, "ALE_AUTH_CONNECT", reauth=False)
    out = classifies(engine, "OUTBOUND_TRANSPORT")
    assert len(out) == 1 and out[0]["packet"] != first["packet"]
    assert engine.stack.delivered_out == 42
