"""The ``sim`` target: a scenario on the embedded WFP engine model, in-process.

Each step becomes an application, remote peer or policy-client process on
the engine's scheduler; steps of one ``concurrent`` group start together and
interleave as the seed decides. When the steps are done the applications
exit (sockets close, BFE sessions end, as at process exit) and the engine
runs until idle. The trace is the engine's own.
"""

from __future__ import annotations

import traceback
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

from harness.callouts.settings import CalloutSettings
from harness.callouts.spec import resolve
from harness.engine.bfe import Session
from harness.engine.callout_api import callout_key
from harness.engine.endpoints import Endpoint, address
from harness.engine.model import Engine
from harness.engine.objects import (
    BfeObject,
    CalloutObject,
    Condition,
    Filter,
    FilterAction,
    Provider,
    ProviderContext,
    Sublayer,
)
from harness.errors import DriverCrashed, EngineError, HarnessError, TargetError, UsageError
from harness.scenario.model import Scenario, Step
from harness.scenario.output import RunOutput, StepResult
from harness.targets.base import trace_name

Process = Generator[object, object, object]
StepProcess = Generator[object, object, StepResult | None]
Void = Generator[object, object, None]

SEGMENT_BYTES = 512
#: A bound on one scenario's work, so a broken engine or callout cannot hang a run.
MAX_STEPS = 2_000_000
#: Remote hosts: 10.0.1.N for the N-th connection step, 10.0.2.N for inbound peers.
OUT_HOSTS, IN_HOSTS = 0x100, 0x200


class SimTarget:
    """Runs scenarios on a fresh engine model per run (see the module docstring)."""

    def __init__(self, callout: str = "reference", faults: tuple[str, ...] = ()) -> None:
        self.name = "sim"
        self.callout_spec = callout
        self.faults = tuple(faults)
        # Fail on a bad spec now, with a usage error, not in the first test.
        _, client_mutant = resolve(callout)
        if client_mutant is not None:
            raise UsageError(
                f"mutant {client_mutant!r} is a policy-client mutant; scenarios script their "
                "own policy clients, so run it with 'callout-harness simulate'"
            )

    def run(
        self, scenario: Scenario, *, seed: int, out_dir: Path, attempt: int = 0
    ) -> RunOutput:
        path = Path(out_dir) / trace_name(scenario, self.name, seed, attempt)
        callout, _ = resolve(self.callout_spec)
        with path.open("wb") as out:
            try:
                engine = Engine(seed=seed, faults=self.faults, out=out)
            except UsageError:
                raise
            engine.writer.header(
                ends=True, target=self.name, scenario=scenario.name, seed=seed,
                callout=self.callout_spec, faults=list(self.faults),
            )
            runner = _Runner(engine, callout, scenario)
            try:
                runner.start()
                setup_events = engine.writer.count  # DriverEntry and the installer's policy
                engine.run(max_steps=MAX_STEPS)
                if not engine.idle():
                    raise TargetError(
                        f"scenario {scenario.name!r} did not settle within {MAX_STEPS} engine "
                        "steps (a callout or the engine keeps scheduling work)"
                    )
                engine.writer.end()  # the trace is whole: only now the end marker
            except EngineError as exc:
                raise TargetError(f"scenario {scenario.name!r}: engine error: {exc}") from exc
            except HarnessError:
                raise
            except Exception as exc:  # the callout's own code raised
                raise DriverCrashed(
                    f"scenario {scenario.name!r}: the callout raised {type(exc).__name__}: "
                    f"{str(exc)[:200]} ({_where(exc)}); trace up to it: {path}"
                ) from exc
        return RunOutput(self.name, seed, path, runner.results,
                         {"events": engine.writer.count, "virtual_s": engine.now,
                          "setup_events": setup_events})

    def close(self) -> None:
        pass


def _where(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "no traceback"
    last = frames[-1]
    return f"{last.filename}:{last.lineno} in {last.name}"


class _Runner:
    """Turns steps into engine processes and records what each observed."""

    def __init__(self, engine: Engine, callout: Any, scenario: Scenario) -> None:
        self.engine = engine
        self.callout = callout
        self.scenario = scenario
        self.endpoints: dict[str, list[Endpoint]] = {}
        self.sessions: dict[str, Session] = {}
        self.filters: dict[str, str] = {}
        self.results: dict[str, StepResult] = {}
        self._policy: Session | None = None
        self.blocked_remotes: set[str] = set()
        self.remotes: dict[str, list[str]] = {}
        self._plan_remotes()

    # -- set-up ---------------------------------------------------------------

    def _plan_remotes(self) -> None:
        """Give each connection step its own remote host, so the callout's
        policy can block exactly the steps the scenario names."""
        for n, step in enumerate(self.scenario.steps, 1):
            family = self._family(step)
            if step.do == "tcp_connect":
                port = step.integer("remote_port")
                self.remotes[step.name] = [address(family, OUT_HOSTS + n, port)]
            elif step.do == "udp_send":
                peers = step.integer("peers")
                self.remotes[step.name] = [
                    address(family, OUT_HOSTS + n, 5000 + i) for i in range(peers)
                ]
            elif step.do == "udp_receive":
                peers = step.integer("peers")
                self.remotes[step.name] = [
                    address(family, IN_HOSTS + n, 6000 + i) for i in range(peers)
                ]
            elif step.do == "tcp_accept":
                self.remotes[step.name] = [address(family, IN_HOSTS + n, 50000 + n)]
        for name in self.scenario.callout.block:
            self.blocked_remotes.update(self.remotes.get(name, []))

    def settings(self) -> CalloutSettings:
        """The scenario's ``[callout]`` table resolved against its steps' remotes."""
        ports: set[int] = set()
        if self.scenario.callout.stream == "out_of_band":
            for remotes in self.remotes.values():
                ports.update(int(r.rpartition(":")[2]) for r in remotes)
        return CalloutSettings(self.scenario.callout, frozenset(self.blocked_remotes),
                               frozenset(ports))

    def start(self) -> None:
        engine, callout = self.engine, self.callout
        callout.configure(self.settings())
        engine.register(callout)
        installer = engine.open_session()
        status = engine.install(installer, callout)
        if status != "STATUS_SUCCESS":
            raise TargetError(f"installing the callout's filters failed: {status}")
        installer.close()
        engine.spawn(self._main(), "scenario")

    def _main(self) -> Void:
        for group in self.scenario.groups():
            running = [self.engine.spawn(self._step(step), step.name) for step in group]
            yield from running
        yield from self._exit()

    def _exit(self) -> Void:
        """Application exit: close what is still open, end BFE sessions."""
        for eps in self.endpoints.values():
            for ep in eps:
                if ep.live:
                    yield self.engine.close(ep)
        for session in list(self.sessions.values()):
            if not session.closed:
                session.close()
        if self._policy is not None and not self._policy.closed:
            self._policy.close()

    # -- steps ----------------------------------------------------------------

    def _step(self, step: Step) -> Void:
        if step.delay_ms:
            yield step.delay_ms / 1000.0
        handler = getattr(self, f"_do_{step.do}")
        result = yield from handler(step)
        if isinstance(result, StepResult):
            self.results[step.name] = result

    def _family(self, step: Step) -> str:
        """V4/V6 of a step, or of the socket step it acts on (accept, receive)."""
        ref = step.optional_text("listener") or step.optional_text("on")
        if ref is not None and "family" not in step.params:
            return self._family(self.scenario.step(ref))
        return "V6" if step.optional_text("family") == "v6" else "V4"

    def _session(self, step: Step) -> Session:
        name = step.optional_text("session")
        if name is not None:
            return self.sessions[name]
        if self._policy is None or self._policy.closed:
            self._policy = self.engine.open_session(dynamic=False)
        return self._policy

    def _outcome(self, step: Step, ok: bool, detail: str = "") -> StepResult:
        return StepResult(step.name, "allowed" if ok else "blocked", None, detail)

    def _do_tcp_listen(self, step: Step) -> StepProcess:
        port = step.integer("port") or 8000 + step.index
        ep = yield self.engine.tcp_listen(port, self._family(step))
        if isinstance(ep, Endpoint):
            self.endpoints[step.name] = [ep]
        return self._outcome(step, isinstance(ep, Endpoint))

    def _do_tcp_connect(self, step: Step) -> StepProcess:
        remote = self.remotes[step.name][0]
        ep = yield self.engine.tcp_connect(remote, self._family(step))
        if not isinstance(ep, Endpoint):
            return self._outcome(step, False)
        self.endpoints[step.name] = [ep]
        yield from self._exchange(ep, step.integer("segments"),
                                  step.integer("replies"), None)
        return self._outcome(step, True)

    def _do_tcp_accept(self, step: Step) -> StepProcess:
        listeners = self.endpoints.get(step.text("listener"), [])
        if not listeners or not listeners[0].live:
            return StepResult(step.name, "blocked", None, "listener is not open")
        remote = self.remotes[step.name][0]
        child = yield self.engine.peer_connect(listeners[0], remote)
        if not isinstance(child, Endpoint):
            return self._outcome(step, False)
        self.endpoints[step.name] = [child]
        # inbound first: the peer sends, the app replies
        yield from self._exchange(child, step.integer("replies"),
                                  step.integer("segments"), None)
        return self._outcome(step, True)

    def _do_udp_send(self, step: Step) -> StepProcess:
        ep = yield self.engine.udp_open(self._family(step))
        if not isinstance(ep, Endpoint):
            return self._outcome(step, False)
        self.endpoints[step.name] = [ep]
        packets = step.integer("packets")
        replies = step.integer("replies")
        for remote in self.remotes[step.name]:
            yield from self._exchange(ep, packets, replies, remote)
        yield from self._settle(ep, self.remotes[step.name])
        flows = [ep.flows.get(r) for r in self.remotes[step.name]]
        allowed = all(f is not None and f.authorized for f in flows)
        return self._outcome(step, allowed)

    def _do_udp_receive(self, step: Step) -> StepProcess:
        eps = self.endpoints.get(step.text("on"), [])
        if not eps or not eps[0].live:
            return StepResult(step.name, "blocked", None, "socket is not open")
        ep = eps[0]
        packets = step.integer("packets")
        for remote in self.remotes[step.name]:
            for _ in range(packets):
                if ep.live:
                    self.engine.peer_send(ep, SEGMENT_BYTES, remote)
                yield 0.001
        yield from self._settle(ep, self.remotes[step.name])
        flows = [ep.flows.get(r) for r in self.remotes[step.name]]
        return self._outcome(step, all(f is not None and f.authorized for f in flows))

    def _settle(self, ep: Endpoint, remotes: list[str], limit_s: float = 60.0) -> Void:
        """Wait until no flow of ``ep`` is still being authorized (a pended
        connect), polling in virtual time, at most ``limit_s``."""
        waited = 0.0
        while waited < limit_s and ep.live and any(
            (f := ep.flows.get(r)) is not None and f.state in ("new", "authorizing")
            for r in remotes
        ):
            yield 0.001
            waited += 0.001

    def _exchange(self, ep: Endpoint, out: int, back: int, remote: str | None) -> Void:
        for _ in range(out):
            if not ep.live:
                return None
            self.engine.send(ep, SEGMENT_BYTES, remote)
            yield 0.001
        for _ in range(back):
            if not ep.live:
                return None
            self.engine.peer_send(ep, SEGMENT_BYTES, remote)
            yield 0.001

    def _do_send(self, step: Step) -> StepProcess:
        eps = self.endpoints.get(step.text("on"), [])
        for ep in eps:
            remotes = self.remotes.get(step.text("on"), [None])
            for remote in remotes if ep.proto == "udp" else [None]:
                for _ in range(step.integer("segments")):
                    if step.text("direction") == "in":
                        self.engine.peer_send(ep, SEGMENT_BYTES, remote)
                    else:
                        self.engine.send(ep, SEGMENT_BYTES, remote)
                    yield 0.001
        return None

    def _do_close(self, step: Step) -> StepProcess:
        for ep in self.endpoints.get(step.text("of"), []):
            if ep.live:
                yield self.engine.close(ep)
        return None

    def _layer(self, step: Step) -> str:
        return f"{step.text('layer')}_{self._family(step)}"

    def _do_add_filter(self, step: Step) -> StepProcess:
        layer = self._layer(step)
        action = cast(FilterAction, step.text("action").upper())
        conditions: list[Condition] = []
        port, protocol = step.optional_integer("remote_port"), step.optional_text("protocol")
        if port is not None:
            conditions.append(Condition("remote_port", port))
        if protocol is not None:
            conditions.append(Condition("protocol", protocol))
        key = f"scenario.{step.name}"
        flt = Filter(
            key=key, layer=layer, weight=step.integer("weight"),
            action=action,
            callout=callout_key(self.callout.name, layer) if action.startswith("CALLOUT") else None,
            conditions=tuple(conditions),
            flags=frozenset({"CLEAR_ACTION_RIGHT"}) if step.flag("hard") else frozenset(),
        )
        self.filters[step.name] = key
        status = yield self.engine.add_filter(self._session(step), flt)
        return StepResult(step.name, None, str(status))

    def _do_delete_filter(self, step: Step) -> StepProcess:
        key = self.filters[step.text("filter")]
        status = yield self.engine.delete_filter(self._session(step), key)
        return StepResult(step.name, None, str(status))

    def _do_session_open(self, step: Step) -> StepProcess:
        session = self.engine.open_session(
            dynamic=step.flag("dynamic"), txn_wait_ms=step.integer("wait_ms"),
            kernel=step.flag("kernel"),
        )
        self.sessions[step.name] = session
        yield None
        return StepResult(step.name, None, "STATUS_SUCCESS")

    def _do_session_close(self, step: Step) -> StepProcess:
        session = self.sessions[step.text("session")]
        if not session.closed:
            session.close()
        yield None
        return None

    def _do_txn_begin(self, step: Step) -> StepProcess:
        status = yield self.sessions[step.text("session")].txn_begin(
            read_only=step.flag("read_only"))
        return StepResult(step.name, None, str(status))

    def _do_txn_commit(self, step: Step) -> StepProcess:
        yield None
        return StepResult(step.name, None, self.sessions[step.text("session")].txn_commit())

    def _do_txn_abort(self, step: Step) -> StepProcess:
        yield None
        return StepResult(step.name, None, self.sessions[step.text("session")].txn_abort())

    def _object(self, step: Step) -> BfeObject:
        common: dict[str, Any] = {
            "key": step.text("key"), "lifetime": step.text("lifetime"),
            "provider": step.optional_text("provider"),
        }
        kind = step.text("type")
        if kind == "provider":
            return Provider(**common)
        if kind == "provider_context":
            return ProviderContext(**common)
        if kind == "sublayer":
            return Sublayer(**common, weight=step.integer("weight"))
        if kind == "callout":
            return CalloutObject(**common, layer=step.optional_text("layer") or "",
                                 context=step.optional_text("context"))
        callout = step.optional_text("callout")
        return Filter(
            **common, layer=step.optional_text("layer") or "", sublayer=step.text("sublayer"),
            weight=step.integer("weight"),
            action="CALLOUT_TERMINATING" if callout else "BLOCK",
            callout=callout, context=step.optional_text("context"),
        )

    def _do_object_add(self, step: Step) -> StepProcess:
        session = self._session(step)
        obj = self._object(step)
        if session.in_transaction:
            yield None
            status: object = session.add(obj)
        else:
            status = yield session.add_wait(obj)
        return StepResult(step.name, None, str(status))

    def _do_object_delete(self, step: Step) -> StepProcess:
        session = self._session(step)
        kind, key = step.text("type"), step.text("key")
        if session.in_transaction:
            yield None
            status: object = session.delete(kind, key)
        else:
            status = yield session.delete_wait(kind, key)
        return StepResult(step.name, None, str(status))

    def _do_callout_unregister(self, step: Step) -> StepProcess:
        yield None
        status = self.engine.unregister(self.callout)
        if status == "STATUS_SUCCESS":
            self.callout.unloaded()
        return StepResult(step.name, None, status)

    def _do_callout_register(self, step: Step) -> StepProcess:
        yield None
        self.engine.register(self.callout)
        return StepResult(step.name, None, "STATUS_SUCCESS")

    def _do_wait(self, step: Step) -> StepProcess:
        yield step.number("seconds")
        return None
