"""Helpers for the network-side engine tests: a scriptable callout and a small engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.callouts.reference import ALL_LAYERS
from harness.engine.callout_api import CalloutApi, ClassifyIn, ClassifyOut
from harness.engine.model import Engine
from harness.engine.objects import Filter

Hook = Callable[["Probe", ClassifyIn, ClassifyOut], None]


class Probe:
    """A callout that records what it sees and runs a per-layer-family hook."""

    def __init__(
        self, name: str = "probe", hooks: dict[str, Hook] | None = None,
        layers: tuple[str, ...] = ALL_LAYERS,
    ) -> None:
        self.name = name
        self.layers = layers
        self.hooks = hooks or {}
        self.seen: list[ClassifyIn] = []
        self.deleted: list[tuple[int, object]] = []
        self.api: CalloutApi

    def attach(self, api: CalloutApi) -> None:
        self.api = api

    def classify(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        self.seen.append(ci)
        hook = self.hooks.get(ci.layer[:-3])
        if hook is not None:
            hook(self, ci, out)

    def notify(self, type: str, filter: Filter) -> str:
        return "STATUS_SUCCESS"

    def flow_delete(self, layer: str, callout: str, flow: int, ctx: object) -> None:
        self.deleted.append((flow, ctx))

    def at(self, family: str) -> list[ClassifyIn]:
        return [ci for ci in self.seen if ci.layer[:-3] == family]


def engine_with(callout: Any, *, seed: int = 0, faults: Iterable[str] = (),
                extra: Iterable[Any] = ()) -> Engine:
    """An engine with ``callout`` registered and installed, plus ``extra`` objects."""
    engine = Engine(seed=seed, callouts=[callout], faults=faults)
    session = engine.open_session()
    assert engine.install(session, callout) == "STATUS_SUCCESS"
    extra = list(extra)
    if extra:
        begin = session.txn_begin()
        assert begin.done and begin.value == "STATUS_SUCCESS"
        for obj in extra:
            assert session.add(obj) == "STATUS_SUCCESS", obj
        assert session.txn_commit() == "STATUS_SUCCESS"
    engine.admin = session  # type: ignore[attr-defined]
    return engine


def run(engine: Engine, process: Any) -> Any:
    """Run one process to the end of all work; its return value."""
    done = engine.spawn(process)
    engine.run()
    assert done.done, "the process did not finish"
    return done.value


def events(engine: Engine, kind: str, **match: Any) -> list[dict[str, Any]]:
    return [
        ev for ev in engine.events
        if ev["ev"] == kind and all(ev.get(k) == v for k, v in match.items())
    ]


def classifies(engine: Engine, family: str, **match: Any) -> list[dict[str, Any]]:
    return [ev for ev in events(engine, "classify", **match) if ev["layer"][:-3] == family]
