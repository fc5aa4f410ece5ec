"""Helpers for the BFE tests: a BFE on a fresh scheduler, object builders."""

from __future__ import annotations

from dataclasses import dataclass

from harness.engine.bfe import Bfe, Session
from harness.engine.clock import Future, Scheduler, spawn
from harness.engine.objects import BfeObject, CalloutObject, Filter, Provider, Sublayer
from harness.trace.events import Event
from harness.trace.writer import TraceWriter

OK = "STATUS_SUCCESS"
CONNECT = "ALE_AUTH_CONNECT_V4"
ACCEPT = "ALE_AUTH_RECV_ACCEPT_V4"


@dataclass
class Env:
    sched: Scheduler
    writer: TraceWriter
    bfe: Bfe

    def events(self, ev: str | None = None, **match: object) -> list[Event]:
        return [
            e
            for e in self.writer.events
            if (ev is None or e["ev"] == ev) and all(e.get(k) == v for k, v in match.items())
        ]

    def last(self, ev: str) -> Event:
        found = self.events(ev)
        assert found, f"no {ev} event"
        return found[-1]

    def begin_now(self, session: Session, read_only: bool = False) -> str:
        """txn_begin that must be answered without waiting."""
        fut = session.txn_begin(read_only)
        assert fut.done, "txn_begin waited"
        return str(fut.value)

    def spawn(self, gen: object) -> Future:
        return spawn(self.sched, gen)

    def run(self, gen: object) -> object:
        fut = spawn(self.sched, gen)
        self.sched.run()
        assert fut.done
        return fut.value


def make_env(faults: frozenset[str] = frozenset(), seed: int = 0) -> Env:
    sched = Scheduler(seed)
    writer = TraceWriter(clock=sched.clock, keep=True)
    return Env(sched, writer, Bfe(sched, writer, faults))


def provider(key: str = "p", **kw: object) -> Provider:
    return Provider(key=key, **kw)  # type: ignore[arg-type]


def sublayer(key: str = "s", **kw: object) -> Sublayer:
    return Sublayer(key=key, **kw)  # type: ignore[arg-type]


def callout(key: str = "c", layer: str = CONNECT, **kw: object) -> CalloutObject:
    return CalloutObject(key=key, layer=layer, **kw)  # type: ignore[arg-type]


def filt(key: str = "f", layer: str = CONNECT, **kw: object) -> Filter:
    return Filter(key=key, layer=layer, **kw)  # type: ignore[arg-type]


def add_ok(session: Session, *objs: BfeObject) -> None:
    for obj in objs:
        assert session.add(obj) == OK, obj
