"""The fwpsk calls: what each returns where, and what the engine does after."""

from __future__ import annotations

from harness.callouts.reference import ReferenceCallout
from harness.engine.callout_api import ClassifyIn, ClassifyOut
from tests.engine.netkit import Probe, classifies, engine_with, events, run


def connect_and_close(engine, remote: str = "10.0.1.5:80"):  # type: ignore[no-untyped-def]
    ep = yield engine.tcp_connect(remote)
    if ep is not None:
        yield 0.2
        yield engine.close(ep)
    return ep


def pend_everything(p: Probe, ci: ClassifyIn, out: ClassifyOut) -> None:
    result = p.api.pend_operation(ci)
    if result.ok:
        out.block(absorb=True)
        p.api.call_later(0.1, lambda: p.api.complete_operation(result.handle or 0))
    else:
        out.permit()


def test_completing_a_connect_pend_reauthorizes_the_same_endpoint() -> None:
    probe = Probe(hooks={"ALE_AUTH_CONNECT": pend_everything})
    engine = engine_with(probe)
    ep = run(engine, connect_and_close(engine))
    first, again = probe.at("ALE_AUTH_CONNECT")
    assert (first.reauth, first.can_pend) == (False, True)
    # the completion handle is present on the reauthorization too; a pend is refused
    assert (again.reauth, again.can_pend) == (True, True)
    assert first.endpoint == again.endpoint == ep.handle
    statuses = [ev["status"] for ev in events(engine, "pend_operation")]
    assert statuses == ["STATUS_SUCCESS", "STATUS_FWP_CANNOT_PEND"]  # no pend in a reauth


def test_completing_a_recv_accept_pend_does_not_reauthorize() -> None:
    ref = ReferenceCallout()
    engine = engine_with(ref)

    def app():  # type: ignore[no-untyped-def]
        listener = yield engine.tcp_listen(8000)
        conn = yield engine.peer_connect(listener, "10.0.3.1:50000")
        yield engine.close(conn)
        yield engine.close(listener)
        return conn

    conn = run(engine, app())
    accepts = classifies(engine, "ALE_AUTH_RECV_ACCEPT")
    assert [(a["reauth"], a["injection"]) for a in accepts] == [(False, "none"), (False, "self")]
    assert {a["endpoint"] for a in accepts} == {conn.handle}
    (clone,) = events(engine, "clone")
    (inject,) = events(engine, "inject")
    assert inject["packet"] == clone["packet"] and inject["kind"] == "transport_recv"
    assert accepts[1]["packet"] == clone["packet"]


def test_pend_operation_cannot_pend_outside_the_pendable_layers() -> None:
    def try_pend(p: Probe, ci: ClassifyIn, out: ClassifyOut) -> None:
        p.api.pend_operation(ci)

    probe = Probe(hooks={"ALE_FLOW_ESTABLISHED": try_pend, "STREAM": try_pend})
    engine = engine_with(probe)

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.tcp_connect("10.0.1.5:80")
        engine.send(ep, 10)
        yield engine.close(ep)

    run(engine, app())
    statuses = {ev["status"] for ev in events(engine, "pend_operation")}
    assert statuses == {"STATUS_FWP_CANNOT_PEND"}


def test_pend_classify_only_at_closure_and_redirect_layers() -> None:
    def pend_classify(p: Probe, ci: ClassifyIn, out: ClassifyOut) -> None:
        got = p.api.acquire_classify_handle(ci)
        assert got.handle is not None
        if p.api.pend_classify(got.handle, ci) == "STATUS_SUCCESS":
            p.api.call_later(0.5, lambda: (p.api.complete_classify(got.handle or 0, "PERMIT"),
                                           p.api.release_classify_handle(got.handle or 0)))
        else:
            p.api.release_classify_handle(got.handle)

    probe = Probe(hooks={"ALE_ENDPOINT_CLOSURE": pend_classify, "STREAM": pend_classify})
    engine = engine_with(probe)

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.tcp_connect("10.0.1.5:80")
        engine.send(ep, 10)
        start = engine.now
        yield engine.close(ep)
        return engine.now - start

    took = run(engine, app())
    by_layer = {
        classifies(engine, "STREAM")[0]["id"]: "STREAM",
        classifies(engine, "ALE_ENDPOINT_CLOSURE")[0]["id"]: "CLOSURE",
    }
    result = {by_layer[ev["id"]]: ev["status"] for ev in events(engine, "pend_classify")}
    assert result == {"STREAM": "STATUS_FWP_CANNOT_PEND", "CLOSURE": "STATUS_SUCCESS"}
    assert took >= 0.5  # the closure waited for complete_classify
    release = classifies(engine, "ALE_RESOURCE_RELEASE")[0]["seq"]
    assert events(engine, "complete_classify")[0]["seq"] < release


def test_injection_after_the_endpoint_is_gone_fails_without_completion() -> None:
    kept: list[int] = []

    def keep_clone(p: Probe, ci: ClassifyIn, out: ClassifyOut) -> None:
        if ci.packet is not None and ci.injection == "none" and not kept:
            made = p.api.clone(ci.packet)
            kept.append(made.handle or 0)

    probe = Probe(hooks={"OUTBOUND_TRANSPORT": keep_clone})
    engine = engine_with(probe)
    ep = run(engine, connect_and_close(engine))
    status = probe.api.inject("transport_send", kept[0], endpoint=ep.handle)
    engine.run()
    assert status == "STATUS_FWP_INJECT_HANDLE_CLOSING"
    assert not events(engine, "inject_complete")


def test_second_flow_associate_is_refused_and_unregister_is_busy_meanwhile() -> None:
    statuses: list[str] = []

    def associate_twice(p: Probe, ci: ClassifyIn, out: ClassifyOut) -> None:
        assert ci.flow is not None
        for ctx in (1, 2):
            statuses.append(p.api.flow_associate(ci.flow, "STREAM_V4", ctx))

    probe = Probe(hooks={"ALE_FLOW_ESTABLISHED": associate_twice})
    engine = engine_with(probe)
    busy: list[str] = []

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.tcp_connect("10.0.1.5:80")
        busy.append(engine.unregister(probe))
        yield engine.close(ep)
        busy.append(engine.unregister(probe))

    run(engine, app())
    assert statuses == ["STATUS_SUCCESS", "STATUS_OBJECT_NAME_EXISTS"]
    assert busy == ["STATUS_DEVICE_BUSY", "STATUS_SUCCESS"]
    (deleted,) = probe.deleted
    assert deleted[1] == 1


def test_no_classify_after_a_successful_unregister() -> None:
    probe = Probe()
    engine = engine_with(probe)
    assert engine.unregister(probe) == "STATUS_SUCCESS"
    seen = len(probe.seen)
    run(engine, connect_and_close(engine))
    assert len(probe.seen) == seen


def test_self_injected_packets_are_marked_and_reference_permits_them() -> None:
    ref = ReferenceCallout()
    engine = engine_with(ref)

    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.udp_open()
        engine.send(ep, 10, "10.0.2.1:53")
        yield 0.5
        engine.send(ep, 10, "10.0.2.1:53")
        yield 0.5
        yield engine.close(ep)

    run(engine, app())
    selfs = [ev for ev in classifies(engine, "OUTBOUND_TRANSPORT") if ev["injection"] == "self"]
    assert selfs
    done = {ev["id"]: ev for ev in events(engine, "classify_done")}
    assert {done[ev["id"]]["action"] for ev in selfs} == {"PERMIT"}
