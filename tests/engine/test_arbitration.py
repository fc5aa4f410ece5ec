"""Filter arbitration: the table, and the filter engine walking real BFE policy."""

from __future__ import annotations

import pytest

from harness.engine import arbitration as arb
from harness.engine.objects import Condition, Filter, Sublayer
from tests.engine.netkit import Probe, engine_with, run

HIGH = "test.high"
LOW = "test.low"


def policy(*filters: Filter) -> list[object]:
    return [Sublayer(key=HIGH, weight=0x9000), Sublayer(key=LOW, weight=0x0100), *filters]


def flt(key: str, action: str, sublayer: str = HIGH, *, weight: int = 5, hard: bool = False,
        port: int | None = None, layer: str = "ALE_AUTH_CONNECT_V4") -> Filter:
    return Filter(
        key=key, layer=layer, sublayer=sublayer, weight=weight, action=action,  # type: ignore[arg-type]
        conditions=(Condition("remote_port", port),) if port is not None else (),
        flags=frozenset({"CLEAR_ACTION_RIGHT"}) if hard else frozenset(),
    )


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        ([], "PERMIT"),  # nothing decided: the layer permits
        ([("PERMIT", False, True), ("BLOCK", False, True)], "BLOCK"),  # block overrides permit
        ([("BLOCK", False, True), ("PERMIT", False, True)], "BLOCK"),  # ... in either order
        ([("PERMIT", True, True), ("BLOCK", False, True)], "PERMIT"),  # a hard permit holds
        ([("PERMIT", True, True), ("BLOCK", True, True)], "PERMIT"),
        ([("PERMIT", True, True), ("BLOCK", False, False)], "BLOCK"),  # ... except a veto
        ([("BLOCK", True, True), ("PERMIT", True, True)], "BLOCK"),  # a hard block is final
        ([("BLOCK", False, True), ("PERMIT", True, True)], "PERMIT"),  # soft block, hard permit
    ],
)
def test_arbitration_table(decisions: list[tuple[str, bool, bool]], expected: str) -> None:
    assert arb.final_action(arb.arbitrate(decisions)) == expected


def test_table_is_total_and_hard_block_absorbs_everything() -> None:
    states = ("NONE", "SOFT_PERMIT", "HARD_PERMIT", "SOFT_BLOCK", "HARD_BLOCK")
    incoming = ("SOFT_PERMIT", "HARD_PERMIT", "SOFT_BLOCK", "HARD_BLOCK", "VETO")
    assert {(s, i) for s in states for i in incoming} == set(arb.TABLE)
    assert all(arb.TABLE[("HARD_BLOCK", i)] == "HARD_BLOCK" for i in incoming)
    assert not arb.WRITE_RIGHT["HARD_PERMIT"] and not arb.WRITE_RIGHT["HARD_BLOCK"]


def connect(engine, port: int):  # type: ignore[no-untyped-def]
    def app():  # type: ignore[no-untyped-def]
        ep = yield engine.tcp_connect(f"10.0.1.9:{port}")
        if ep is not None:
            yield engine.close(ep)
        return ep is not None

    return run(engine, app())


def test_callout_runs_without_write_right_below_a_hard_permit() -> None:
    probe = Probe()
    engine = engine_with(probe, extra=policy(flt("hp", "PERMIT", hard=True, port=443)))
    assert connect(engine, 443)
    (ci,) = probe.at("ALE_AUTH_CONNECT")
    assert ci.rights is False


def test_callout_veto_overrides_a_hard_permit() -> None:
    def veto(p, ci, out):  # type: ignore[no-untyped-def]
        out.block()

    probe = Probe(hooks={"ALE_AUTH_CONNECT": veto})
    engine = engine_with(probe, extra=policy(flt("hp", "PERMIT", hard=True, port=443)))
    assert not connect(engine, 443)


def test_soft_permit_above_does_not_save_from_a_lower_block() -> None:
    probe = Probe()
    engine = engine_with(probe, extra=policy(
        flt("sp", "PERMIT", port=80), flt("lb", "BLOCK", LOW, port=80)))
    assert not connect(engine, 80)
    assert probe.at("ALE_AUTH_CONNECT")[0].rights is True


def test_first_terminating_filter_in_a_sublayer_wins_by_weight() -> None:
    probe = Probe()
    engine = engine_with(probe, extra=policy(
        flt("heavy", "PERMIT", weight=9, port=80), flt("light", "BLOCK", weight=1, port=80)))
    assert connect(engine, 80)


def test_conditions_select_filters() -> None:
    probe = Probe()
    engine = engine_with(probe, extra=policy(flt("b81", "BLOCK", port=81)))
    assert connect(engine, 80)
    assert not connect(engine, 81)


def test_unregistered_callout_blocks_unless_the_filter_permits_it() -> None:
    blocked = Probe("gone")
    engine = engine_with(blocked)
    engine.unregister(blocked)
    assert connect(engine, 80)  # installed with PERMIT_IF_CALLOUT_UNREGISTERED
    strict = Probe("strict")
    engine = engine_with(strict, extra=[Sublayer(key=HIGH, weight=0x9000), Filter(
        key="strict.f", layer="ALE_AUTH_CONNECT_V4", sublayer=HIGH, weight=5,
        action="CALLOUT_TERMINATING", callout="strict.ALE_AUTH_CONNECT_V4")])
    engine.unregister(strict)
    assert not connect(engine, 80)
    assert not [ev for ev in engine.events[-40:] if ev["ev"] == "classify"]


def test_inspection_callout_cannot_decide() -> None:
    def block_when_inspecting(p, ci, out):  # type: ignore[no-untyped-def]
        if ci.filter is not None and ci.filter.action == "CALLOUT_INSPECTION":
            out.block()

    probe = Probe("insp", hooks={"ALE_AUTH_CONNECT": block_when_inspecting})
    engine = engine_with(probe, extra=[Sublayer(key=HIGH, weight=0x9000), Filter(
        key="insp.f", layer="ALE_AUTH_CONNECT_V4", sublayer=HIGH, weight=50,
        action="CALLOUT_INSPECTION", callout="insp.ALE_AUTH_CONNECT_V4")])
    assert connect(engine, 80)
    assert len(probe.at("ALE_AUTH_CONNECT")) == 2  # both filters called it
