"""The embedded WFP engine: scheduler, BFE, filter engine, callout API and stack in one.

:class:`Engine` is what a scenario runner or a workload drives::

    engine = Engine(seed=7, callouts=[ReferenceCallout()])
    engine.spawn(app(engine))          # generator processes: yield delays or futures
    engine.run()                       # until idle

Applications use the socket calls (``tcp_listen``, ``tcp_connect``,
``udp_open``, ``send``, ``close``) and play remote peers with ``peer_connect``
and ``peer_send``; policy clients open BFE sessions (``open_session``) or use
the ``add_filter``/``delete_filter`` processes. Everything is written to one
trace by the parts that do it; nothing here logs by hand.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import IO, Any

from harness.engine.bfe import Bfe, Session
from harness.engine.callout_api import Callout, callout_key
from harness.engine.clock import Future, Scheduler, spawn
from harness.engine.endpoints import Endpoint
from harness.engine.faults import parse_faults
from harness.engine.filters import FilterEngine
from harness.engine.kernel import Kernel
from harness.engine.objects import BfeObject, CalloutObject, Filter, Sublayer
from harness.engine.stack import Stack
from harness.errors import EngineError
from harness.trace.writer import TraceWriter

#: Where a callout's filters go unless told otherwise: below every built-in sublayer.
CALLOUT_SUBLAYER_WEIGHT = 0x0800
CALLOUT_FILTER_WEIGHT = 0x10

Process = Generator[object, object, object]


def callout_objects(
    callout: Callout, *, sublayer_weight: int = CALLOUT_SUBLAYER_WEIGHT,
    filter_weight: int = CALLOUT_FILTER_WEIGHT, action: str = "CALLOUT_TERMINATING",
    flags: frozenset[str] = frozenset({"PERMIT_IF_CALLOUT_UNREGISTERED"}),
) -> list[BfeObject]:
    """The BFE objects a driver's installer adds: its sublayer, one FWPM callout and
    one callout filter per layer it registered for."""
    sub = f"{callout.name}.sublayer"
    objs: list[BfeObject] = [Sublayer(key=sub, weight=sublayer_weight)]
    for layer in callout.layers:
        key = callout_key(callout.name, layer)
        objs.append(CalloutObject(key=key, layer=layer))
        objs.append(Filter(
            key=f"{key}.filter", layer=layer, sublayer=sub, weight=filter_weight,
            action=action, callout=key, flags=flags,  # type: ignore[arg-type]
        ))
    return objs


class Engine:
    """The whole model on one scheduler; see the module docstring.

    ``writer`` defaults to an in-memory writer that keeps its events
    (``engine.events``); pass ``out`` to stream JSON Lines instead.
    """

    def __init__(
        self, seed: int = 0, callouts: Iterable[Callout] = (), faults: Iterable[str] = (),
        writer: TraceWriter | None = None, *, out: IO[bytes] | None = None,
        keep: bool | None = None, shuffle: bool = True,
    ) -> None:
        self.seed = seed
        self.faults = parse_faults(list(faults))
        self.sched = Scheduler(seed, shuffle=shuffle)
        self.rng = self.sched.rng
        if writer is None:
            writer = TraceWriter(
                out, self.sched.clock, keep=(out is None) if keep is None else keep
            )
        self.writer = writer
        self.bfe = Bfe(self.sched, writer, self.faults)
        self.kernel = Kernel(self.sched, writer, self.faults)
        self.kernel.bfe = self.bfe
        self.filters = FilterEngine(self.bfe, self.kernel)
        self.stack = Stack(self.sched, self.kernel, self.filters, self.faults)
        self.bfe.add_commit_listener(self._policy_changed)
        self.callouts: list[Callout] = []
        for callout in callouts:
            self.register(callout)

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.writer.events

    @property
    def now(self) -> float:
        return self.sched.now

    def _policy_changed(self, layers: set[str]) -> None:
        self.filters.policy_changed(layers)
        self.stack.policy_changed(layers)

    # -- running ----------------------------------------------------------------

    def spawn(self, process: Process, label: str = "") -> Future:
        """Run a generator process: it yields a delay in seconds or a Future."""
        return spawn(self.sched, process, label)

    def run(self, until_s: float | None = None, max_steps: int | None = None) -> None:
        """Run until nothing is left to do (or ``until_s`` / ``max_steps``)."""
        self.sched.run(until_s=until_s, max_steps=max_steps)

    # -- callouts ---------------------------------------------------------------

    def register(self, callout: Callout) -> None:
        """DriverEntry: register the callout's run-time callouts (FwpsCalloutRegister)."""
        if callout not in self.callouts:
            self.callouts.append(callout)
        self.kernel.register(callout)

    def unregister(self, callout: Callout) -> str:
        """DriverUnload: FwpsCalloutUnregisterByKey for each key; STATUS_DEVICE_BUSY
        while flow contexts exist (the keys that were busy stay registered)."""
        return self.kernel.unregister(callout)

    def install(self, session: Session, callout: Callout, **kw: Any) -> str:
        """Add the callout's sublayer, FWPM callouts and filters in one transaction.

        The BFE lock must be free (set-up time); processes that may contend
        use :meth:`add_objects` instead.
        """
        begin = session.txn_begin()
        if not begin.done:
            raise EngineError("install() needs the BFE lock free; use add_objects() in a process")
        if begin.value != "STATUS_SUCCESS":
            return str(begin.value)
        for obj in callout_objects(callout, **kw):
            session.add(obj)
        return session.txn_commit()

    def add_objects(self, session: Session, objs: Iterable[BfeObject]) -> Process:
        """A process: begin, add every object, commit; returns the commit status."""
        status = yield session.txn_begin()
        if status != "STATUS_SUCCESS":
            return status
        for obj in objs:
            session.add(obj)
        return session.txn_commit()

    def add_filter(self, session: Session, flt: Filter) -> Future:
        """Add one filter in an implicit transaction (waits for the lock)."""
        return session.add_wait(flt)

    def delete_filter(self, session: Session, key: str) -> Future:
        return session.delete_wait("filter", key)

    def open_session(
        self, dynamic: bool = False, txn_wait_ms: int = 0, kernel: bool = False
    ) -> Session:
        return self.bfe.open_session(dynamic=dynamic, txn_wait_ms=txn_wait_ms, kernel=kernel)

    # -- applications and peers -------------------------------------------------------

    def tcp_listen(self, port: int, family: str = "V4") -> Future:
        """listen(): resolves with the listening endpoint, or None."""
        return self.stack.tcp_listen(family, port)

    def tcp_connect(self, remote: str, family: str = "V4", local_port: int | None = None) -> Future:
        """connect(): resolves with the connected endpoint, or None (blocked, timed out)."""
        return self.stack.tcp_connect(family, remote, local_port)

    def udp_open(self, family: str = "V4", local_port: int | None = None) -> Future:
        return self.stack.udp_open(family, local_port)

    def send(self, ep: Endpoint, size: int, remote: str | None = None) -> bool:
        return self.stack.send(ep, size, remote)

    def close(self, ep: Endpoint) -> Future:
        """closesocket(): resolves when closure and resource release are done."""
        return self.stack.close(ep)

    def peer_connect(self, listener: Endpoint, remote: str) -> Future:
        """A remote peer connects to ``listener``; resolves with the accepted endpoint or None."""
        return self.stack.peer_connect(listener, remote)

    def peer_send(self, ep: Endpoint, size: int, remote: str | None = None) -> bool:
        return self.stack.peer_send(ep, size, remote)

    def idle(self) -> bool:
        return self.sched.pending() == 0
