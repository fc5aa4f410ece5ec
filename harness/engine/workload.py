"""The built-in seeded workload: every layer, API call and BFE path, scaled by size.

``run_workload("mixed", seed=7, events=20000, callout="reference")`` runs
applications (TCP clients and servers, V4 and V6; UDP sockets talking to
several peers), remote peers, a firewall policy with soft and hard filters in
a sublayer above the callout's, a policy changer that adds and deletes
filters while flows are live (reauthorization), BFE clients with contention,
lock-wait timeouts and a forced abort, object-rule probes that BFE must
refuse, an unregister attempt while flow contexts exist, and a driver reload
at a quiet point. It runs in epochs until about ``events`` events were
written. The same seed gives a byte-identical trace.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import IO, Any

from harness.engine.bfe import Bfe, clients
from harness.engine.callout_api import Callout, callout_key
from harness.engine.clock import Future
from harness.engine.endpoints import Endpoint, address
from harness.engine.model import Engine
from harness.engine.objects import Condition, Filter, Sublayer
from harness.errors import UsageError

Process = Generator[object, object, object]
WORKLOADS = ("mixed",)

FIREWALL = "firewall.sublayer"
FIREWALL_WEIGHT = 0x9000  # above the callout's sublayer: its hard decisions bind the callout
PORTS = (80, 443, 8080, 23, 4444, 25, 8081)
BLOCKED_BY_CALLOUT = (23,)
JOIN_TIMEOUT_S = 60.0  # longer than any app's own timeouts; only a hung callout hits it


@dataclass(frozen=True)
class WorkloadResult:
    """What a run produced: how many events, over how much virtual time."""

    workload: str
    seed: int
    events: int
    end_s: float
    callout: str
    faults: tuple[str, ...]


def firewall_filters() -> list[Any]:
    """A firewall above the callout: a hard block (rights false below it), a hard
    permit (the callout runs without the write right) and a soft block."""
    objs: list[Any] = [Sublayer(key=FIREWALL, weight=FIREWALL_WEIGHT)]
    for v in ("V4", "V6"):
        layer = f"ALE_AUTH_CONNECT_{v}"
        port = [Condition("remote_port", 4444)]
        objs.append(Filter(key=f"fw.hard_block.{v}", layer=layer, sublayer=FIREWALL,
                           weight=10, action="BLOCK", conditions=tuple(port),
                           flags=frozenset({"CLEAR_ACTION_RIGHT"})))
        objs.append(Filter(key=f"fw.hard_permit.{v}", layer=layer, sublayer=FIREWALL,
                           weight=9, action="PERMIT", conditions=(Condition("remote_port", 443),),
                           flags=frozenset({"CLEAR_ACTION_RIGHT"})))
        objs.append(Filter(key=f"fw.soft_block.{v}", layer=layer, sublayer=FIREWALL,
                           weight=8, action="BLOCK", conditions=(Condition("remote_port", 25),)))
    return objs


class MixedWorkload:
    """The ``mixed`` workload's processes, on one engine."""

    def __init__(
        self, engine: Engine, callout: Callout, target_events: int,
        client_fns: dict[str, Callable[..., Process]],
    ) -> None:
        self.engine = engine
        self.callout = callout
        self.target = target_events
        self.rng = random.Random(engine.seed * 7919 + 1)
        self.clients = client_fns
        self.stop = False
        self.epoch = 0
        self._port = 8000
        self._host = 0

    # -- helpers ------------------------------------------------------------------

    @property
    def bfe(self) -> Bfe:
        return self.engine.bfe

    def remote(self, family: str, port: int) -> str:
        self._host = self._host % 250 + 1
        return address(family, 0x100 + self._host, port)

    def family(self) -> str:
        return "V4" if self.rng.random() < 0.6 else "V6"

    def join(self, futures: Iterable[Future], timeout_s: float = JOIN_TIMEOUT_S) -> Process:
        """Wait for processes, but not forever: a broken callout may hang an app."""
        pending = [f for f in futures if not f.done]
        if not pending:
            return None
        done = Future()
        left = [len(pending)]

        def one(_value: object) -> None:
            left[0] -= 1
            if left[0] == 0 and not done.done:
                timer.cancel()
                done.resolve(True)

        timer = self.engine.sched.call_later(
            timeout_s, lambda: None if done.done else done.resolve(False), "join timeout")
        for fut in pending:
            fut.add_done_callback(one)
        yield done
        return None

    # -- applications -------------------------------------------------------------

    def tcp_client(self) -> Process:
        eng, rng = self.engine, self.rng
        family = self.family()
        ep = yield eng.tcp_connect(self.remote(family, rng.choice(PORTS)), family)
        if not isinstance(ep, Endpoint):
            return None
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.7:
                eng.send(ep, rng.randint(1, 1460))
            if rng.random() < 0.5:
                eng.peer_send(ep, rng.randint(1, 1460))
            yield rng.uniform(0.0, 0.04)
        yield rng.choice((0.0, rng.uniform(0.0, 0.2)))
        yield eng.close(ep)
        return None

    def tcp_server(self) -> Process:
        eng, rng = self.engine, self.rng
        family = self.family()
        self._port += 1
        listener = yield eng.tcp_listen(self._port, family)
        if not isinstance(listener, Endpoint):
            return None
        peers = [eng.spawn(self.accepted(listener, family)) for _ in range(rng.randint(1, 4))]
        yield from self.join(peers)
        yield eng.close(listener)
        return None

    def accepted(self, listener: Endpoint, family: str) -> Process:
        eng, rng = self.engine, self.rng
        yield rng.uniform(0.0, 0.1)
        port = rng.choice((50000, 50001, 8080, 23))
        conn = yield eng.peer_connect(listener, self.remote(family, port))
        if not isinstance(conn, Endpoint):
            return None
        for _ in range(rng.randint(1, 5)):
            eng.peer_send(conn, rng.randint(1, 1460))
            yield rng.uniform(0.0, 0.03)
            eng.send(conn, rng.randint(1, 1460))
        yield rng.uniform(0.0, 0.1)
        yield eng.close(conn)
        return None

    def udp_app(self) -> Process:
        eng, rng = self.engine, self.rng
        family = self.family()
        ep = yield eng.udp_open(family)
        if not isinstance(ep, Endpoint):
            return None
        peers = [self.remote(family, rng.choice((53, 123, 5353, 23))) for _ in range(3)]
        for _ in range(rng.randint(2, 8)):
            if rng.random() < 0.6:
                eng.send(ep, rng.randint(20, 512), rng.choice(peers))
            else:
                eng.peer_send(ep, rng.randint(20, 512), rng.choice(peers))
            yield rng.uniform(0.0, 0.08)
        # closing right after a send leaves datagrams queued: the closure drains them
        yield rng.choice((0.0, rng.uniform(0.1, 0.3)))
        yield eng.close(ep)
        return None

    def prologue(self) -> Process:
        """Fixed moves every run makes whatever the seed: sockets closed with data
        still queued or absorbed (the closure must drain them), and a live flow's
        next packet after a policy change (its reauthorization)."""
        eng = self.engine
        wait = self.wait
        session = eng.open_session()
        for family in ("V4", "V6"):
            udp = yield from wait(eng.udp_open(family))
            if isinstance(udp, Endpoint):
                peer = self.remote(family, 53)
                eng.send(udp, 64, peer)
                yield 0.5  # authorized by now: the next datagrams are queued at once
                eng.send(udp, 64, peer)
                eng.peer_send(udp, 64, peer)
                yield from wait(eng.close(udp))
            conn = yield from wait(eng.tcp_connect(self.remote(family, 8080), family))
            if isinstance(conn, Endpoint):
                for size in (100, 200, 300):
                    eng.send(conn, size)
                yield from wait(eng.close(conn))
            conn = yield from wait(eng.tcp_connect(self.remote(family, 80), family))
            if isinstance(conn, Endpoint):
                key = f"prologue.{family}"
                yield from wait(eng.add_filter(session, Filter(
                    key=key, layer=f"ALE_AUTH_CONNECT_{family}", sublayer=FIREWALL,
                    action="PERMIT", conditions=(Condition("remote_port", 9999),))))
                eng.send(conn, 10)
                eng.peer_send(conn, 10)
                yield 0.1
                yield from wait(eng.delete_filter(session, key))
                yield from wait(eng.close(conn))
        session.close()
        return None

    def wait(self, fut: Future) -> Generator[object, object, object]:
        """``yield from self.wait(f)``: f's value, or None when a broken callout hangs it."""
        yield from self.join([fut])
        return fut.value if fut.done else None

    # -- policy ---------------------------------------------------------------------

    def install(self) -> None:
        session = self.engine.open_session()
        self.engine.install(session, self.callout)
        begin = session.txn_begin()
        if begin.done and begin.value == "STATUS_SUCCESS":
            for obj in firewall_filters():
                session.add(obj)
            session.txn_commit()
        self.admin = session

    def policy_changer(self) -> Process:
        """Add and delete filters at the ALE authorization layers while flows are live."""
        eng, rng = self.engine, self.rng
        session = eng.open_session()
        n = 0
        while not self.stop:
            yield rng.uniform(0.3, 1.5)
            n += 1
            layer = rng.choice(("ALE_AUTH_CONNECT", "ALE_AUTH_RECV_ACCEPT")) + "_" + (
                rng.choice(("V4", "V6")))
            blocking = rng.random() < 0.3
            flt = Filter(
                key=f"churn.{n}", layer=layer, sublayer=FIREWALL, weight=rng.randint(1, 7),
                action="BLOCK" if blocking else "PERMIT",
                conditions=(Condition("remote_port", 8081 if blocking else 9999),),
            )
            status = yield eng.add_filter(session, flt)
            if status != "STATUS_SUCCESS":
                continue
            yield rng.uniform(0.2, 1.0)
            yield eng.delete_filter(session, flt.key)
        session.close()
        return None

    def object_probes(self) -> Process:
        """Calls BFE must refuse or undo, each checked by a later call that shows it did:
        built-in, duplicate, missing and in-use objects, lifetimes, other sessions'
        dynamic objects, nested and missing transactions, aborts and dynamic closes."""
        eng = self.engine
        dyn = eng.open_session(dynamic=True)
        other = eng.open_session(dynamic=True)
        static = eng.open_session()
        made = yield from clients.in_transaction(dyn, [Sublayer(key="probe.dyn", weight=5)])
        if made == "STATUS_SUCCESS":
            yield static.add_wait(Filter(key="probe.bad_lifetime", layer="ALE_AUTH_CONNECT_V4",
                                         sublayer="probe.dyn", action="PERMIT"))
            yield other.delete_wait("sublayer", "probe.dyn")  # another session's: refused
        yield other.delete_wait("sublayer", FIREWALL)  # not dynamic: refused
        yield static.delete_wait("sublayer", "FWPM_SUBLAYER_UNIVERSAL")
        yield static.add_wait(Sublayer(key=FIREWALL, weight=1))
        yield static.delete_wait("sublayer", FIREWALL)
        yield static.add_wait(Filter(key="probe.no_callout", layer="ALE_AUTH_CONNECT_V4",
                                     action="CALLOUT_TERMINATING", callout="nobody.callout"))
        yield static.delete_wait("filter", "probe.never_added")
        static.txn_commit()  # no transaction in progress
        begun = yield static.txn_begin(True)
        if begun == "STATUS_SUCCESS":
            yield static.txn_begin()  # one is in progress already
            static.add(Sublayer(key="probe.read_only", weight=3))
            static.txn_commit()
        # an aborted add leaves nothing behind: adding the key again succeeds
        begun = yield static.txn_begin()
        if begun == "STATUS_SUCCESS":
            static.add(Sublayer(key="probe.aborted", weight=4))
            static.txn_abort()
        yield static.add_wait(Sublayer(key="probe.aborted", weight=4))
        yield static.delete_wait("sublayer", "probe.aborted")
        # a dynamic session's objects go with it: the key is free again afterwards
        dyn.close()
        yield static.add_wait(Sublayer(key="probe.dyn", weight=5))
        yield static.delete_wait("sublayer", "probe.dyn")
        other.close()
        static.close()
        return None

    def timeout_probe(self) -> Process:
        """While the forced-abort client holds the lock, a short wait times out (TX003)."""
        yield 30.0
        session = self.engine.open_session(txn_wait_ms=1000)
        status = yield session.txn_begin()
        if status == "STATUS_SUCCESS":
            session.txn_abort()
        session.close()
        return None

    # -- the driver ------------------------------------------------------------------

    def unregister_busy(self) -> bool:
        """The driver tries to drop its stream callouts while flows still hold contexts
        (FC003); False when no flow has one right now, to try again later."""
        kernel = self.engine.kernel
        busy = [layer for layer in self.callout.layers
                if kernel.contexts_of(callout_key(self.callout.name, layer))]
        if not busy:
            return False
        kernel.unregister_layers(self.callout, busy)
        kernel.register_layers(self.callout, [
            layer for layer in busy
            if callout_key(self.callout.name, layer) not in kernel.callouts
        ])
        return True

    def reload(self) -> Process:
        """Unload at a quiet point, run some traffic unfiltered, load again."""
        eng = self.engine
        outstanding = getattr(self.callout, "outstanding", None)
        for _ in range(20):
            if outstanding is None or outstanding() == 0:
                break
            yield 0.5
        if eng.unregister(self.callout) != "STATUS_SUCCESS":
            return None
        yield from self.join([eng.spawn(self.tcp_client()), eng.spawn(self.udp_app())])
        eng.register(self.callout)
        return None

    # -- the run ---------------------------------------------------------------------

    def main(self) -> Process:
        eng, rng = self.engine, self.rng
        self.install()
        background = [
            eng.spawn(self.policy_changer(), "policy changer"),
            eng.spawn(self.object_probes(), "object probes"),
            eng.spawn(self.clients["contention"](self.bfe, hold_s=1.5, peer_delay_s=0.5),
                      "contention"),
            eng.spawn(self.clients["policy_client"](
                self.bfe, clients.Policy(name="tenant", layers=("ALE_AUTH_RECV_ACCEPT_V6",)),
                start_s=1.0, keep_s=3.0), "tenant"),
        ]
        yield from self.prologue()
        forced = busy_due = False
        writer = eng.writer
        max_epochs = 100 + self.target // 20  # a callout that silences the engine ends too
        while writer.count < self.target and self.epoch < max_epochs:
            self.epoch += 1
            apps = []
            for _ in range(rng.randint(3, 8)):
                pick = rng.random()
                app = (self.tcp_client() if pick < 0.5 else
                       self.tcp_server() if pick < 0.75 else self.udp_app())
                apps.append(eng.spawn(app))
                yield rng.uniform(0.0, 0.05)
            if self.epoch % 6 == 2:
                busy_due = True
            if busy_due:
                yield 0.08  # connections are up by now, with their flow contexts
                busy_due = not self.unregister_busy()
            yield from self.join(apps)
            if self.epoch % 12 == 5:
                yield from self.reload()
            if not forced and writer.count >= self.target * 0.7:
                forced = True
                background.append(eng.spawn(
                    self.clients["forced_abort_client"](self.bfe, hold_s=3700.0),
                    "forced abort"))
                background.append(eng.spawn(self.timeout_probe(), "timeout probe"))
        self.stop = True
        yield from self.join(background, timeout_s=7200.0)
        self.admin.close()
        return None


def client_functions(client_mutant: str | None) -> dict[str, Callable[..., Process]]:
    """The policy-client processes the workload runs, one of them maybe a mutant."""
    fns: dict[str, Callable[..., Process]] = {
        "policy_client": clients.policy_client,
        "contention": clients.contention,
        "forced_abort_client": clients.forced_abort_client,
    }
    if client_mutant is not None:
        from harness.callouts.client_mutants import CLIENT_MUTANTS, CORRECT_COUNTERPART

        mutant = CLIENT_MUTANTS[client_mutant]
        counterpart = CORRECT_COUNTERPART[client_mutant]
        for name, fn in fns.items():
            if fn is counterpart:
                fns[name] = mutant.factory  # type: ignore[assignment]
    return fns


def run_workload(
    name: str = "mixed", seed: int = 0, events: int = 20000,
    callout: str | Callout | None = None, faults: Iterable[str] = (),
    out: IO[bytes] | None = None, *, keep: bool | None = None,
) -> tuple[WorkloadResult, Engine]:
    """Run a built-in workload; write the trace to ``out`` (and/or keep it in memory).

    ``callout`` is a spec (``reference``, ``mutant:NAME``, ``module:Class``)
    or a callout object. A client mutant (``mutant:txn_left_open``) runs the
    reference callout with that policy client in place of its correct twin.
    Left out, it is the reference, or for a fault that only a driver's call
    reveals (``pend_allowed_on_reauth``, ...) the mutant that makes that call.
    """
    if name not in WORKLOADS:
        raise UsageError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    from harness.callouts.mutants import callout_for_faults
    from harness.callouts.spec import resolve

    if callout is None:
        callout = callout_for_faults(faults)
    chosen, client_mutant = resolve(callout)
    fault_list = tuple(sorted(set(faults)))
    engine = Engine(seed=seed, faults=fault_list, out=out,
                    keep=out is None if keep is None else keep)
    engine.writer.header(ends=True, target="sim", workload=name, seed=seed,
                         callout=chosen.name, client=client_mutant or "clean",
                         faults=list(fault_list))
    engine.register(chosen)
    work = MixedWorkload(engine, chosen, events, client_functions(client_mutant))
    engine.spawn(work.main(), "workload")
    engine.run()
    engine.writer.end()
    result = WorkloadResult(name, seed, engine.writer.count, engine.now, chosen.name, fault_list)
    return result, engine


def simulate(
    path: str, *, workload: str = "mixed", seed: int = 0, events: int = 20000,
    callout: str | None = None, faults: Iterable[str] = (),
) -> WorkloadResult:
    """Run a workload into a JSON Lines file, or standard output for ``-``
    (the ``simulate`` command)."""
    if path == "-":
        import sys

        result, _ = run_workload(workload, seed, events, callout, faults, sys.stdout.buffer,
                                 keep=False)
        sys.stdout.buffer.flush()
        return result
    with open(path, "wb") as out:
        result, _ = run_workload(workload, seed, events, callout, faults, out, keep=False)
    return result



def describe_faults() -> list[dict[str, object]]:
    """The engine faults as data, for ``callout-harness faults --format json``: each
    with its rules and the callout a run uses to reveal it (see ``FAULT_CALLOUTS``)."""
    from harness.callouts.mutants import FAULT_CALLOUTS
    from harness.engine.faults import FAULTS

    return [
        {"name": f.name, "rules": list(f.rules), "description": f.description,
         "side": "bfe" if f.rules[0][:2] in ("TX", "OB") else "network",
         "callout": FAULT_CALLOUTS.get(f.name, "reference")}
        for f in sorted(FAULTS.values(), key=lambda f: f.name)
    ]
