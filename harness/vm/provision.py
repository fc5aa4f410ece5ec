"""Provisioning: a leased slot becomes a booted, snapshotted test machine.

:func:`leased_machine` is the entry point the pytest plugin uses (one call
per xdist worker)::

    with leased_machine(pool, run_id=run_id, worker_index=n, progress=echo) as machine:
        machine.prepare_golden(deploy_driver)     # once: deploy, then snapshot
        ...
        machine.reset()                           # between tests: revert to golden

Inside the block the slot's domain exists (defined by the lease), its qcow2
overlay sits over the read-only base, the guest has booted to ready and the
``clean`` snapshot (disk and RAM; internal or saved-state, see
:mod:`harness.vm.snapshots`) has been taken. Leaving the block
by any route (an exception, Ctrl-C, SIGTERM) destroys the domain, deletes the
overlay and undefines it with its snapshot metadata and NVRAM; a second
Ctrl-C during that teardown is held back until it is done. What a SIGKILL
leaves behind is a harness-tagged domain whose holder pid is gone, which
``callout-harness vm gc`` and the next lease of that slot reclaim.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import TargetError, VmError
from harness.vm.connection import libvirt_errors, libvirt_module
from harness.vm.images import ShellFactory, create_overlay, shell_for_uri
from harness.vm.lease import Lease, acquire, choose_host_ports, redefine, release, renew
from harness.vm.pool import Pool
from harness.vm.profile import LOOPBACK, Profile
from harness.vm.progress import Progress, report
from harness.vm.snapshots import SnapshotStore, store_for_lease
from harness.vm.wait import wait_http_answer, wait_ssh_banner

BOOT_TIMEOUT_S = 600.0
REVERT_TIMEOUT_S = 300.0
_PORT_RETRIES = 3

ReadyCheck = Callable[["Machine", float], None]
"""Blocks until the guest answers on its transport or raises after timeout_s."""


def default_ready(machine: Machine, timeout_s: float) -> None:
    """Ready when the profile's primary transport answers: an SSH banner, or
    an HTTP reply from WinRM. Transport-level logins are the guest layer's job."""
    transport = machine.profile.primary_transport
    host, port = machine.endpoint(transport.kind)
    if transport.kind == "ssh":
        wait_ssh_banner(host, port, timeout_s=timeout_s)
    else:
        wait_http_answer(host, port, timeout_s=timeout_s)


class Machine:
    """A leased slot whose guest is running. Not thread-safe."""

    def __init__(
        self,
        lease: Lease,
        *,
        progress: Progress | None = None,
        ready: ReadyCheck = default_ready,
        ttl_s: float,
    ) -> None:
        self.lease = lease
        self.progress = progress
        self.ready = ready
        self.ttl_s = ttl_s
        self._snapshots: SnapshotStore | None = None
        #: remote port -> Tunnel, for slots on a remote hypervisor (closed at release)
        self._tunnels: dict[int, Any] = {}

    # -- facts -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.lease.name

    @property
    def uri(self) -> str:
        return self.lease.slot.uri

    @property
    def profile(self) -> Profile:
        return self.lease.slot.profile

    @property
    def domain(self) -> Any:
        """The ``libvirt.virDomain`` (for code that needs libvirt directly)."""
        return self.lease.domain

    @property
    def host_ports(self) -> Mapping[str, int]:
        return self.lease.rendered.host_ports

    @property
    def overlay(self) -> Path:
        return self.lease.record.overlay

    @property
    def serial_log(self) -> Path:
        return self.lease.record.serial_log

    def endpoint(self, transport_kind: str) -> tuple[str, int]:
        """(host, port) at which this machine's ``winrm`` or ``ssh`` listens."""
        transport = self.profile.transports.get(transport_kind)
        if transport is None:
            raise VmError(f"profile {self.profile.name} has no {transport_kind} transport")
        if transport.forward is not None:
            port = self.host_ports[transport.forward]
            opener = getattr(self.lease.shell, "open_tunnel", None)
            if callable(opener):
                # the forward listens on the remote hypervisor's loopback
                return LOOPBACK, self._tunnel(opener, port)
            return transport.host, port
        if transport.port is None:
            raise VmError(f"profile {self.profile.name}: {transport_kind} has no port")
        return transport.host, transport.port

    def _tunnel(self, opener: Callable[[int], Any], remote_port: int) -> int:
        """The local port of this slot's tunnel to ``remote_port`` on the hypervisor."""
        tunnel = self._tunnels.get(remote_port)
        if tunnel is None or tunnel.closed:
            tunnel = self._tunnels[remote_port] = opener(remote_port)
        return int(tunnel.local_port)

    def state(self) -> tuple[int, int]:
        """libvirt (state, reason) of the domain."""
        with libvirt_errors(f"reading the state of {self.name}"):
            state, reason = self.domain.state()
        return int(state), int(reason)

    def is_running(self) -> bool:
        return self.state()[0] == libvirt_module().VIR_DOMAIN_RUNNING

    # -- steps -----------------------------------------------------------
    def report_step(self, step: str, message: str, **kw: Any) -> None:
        """Report progress of a step on this slot to the progress callback."""
        report(self.progress, step, self.name, message, **kw)

    def create_overlay(self) -> None:
        image = self.profile.image
        create_overlay(self.lease.store, base=image.base, base_format=image.format,
                       overlay=self.overlay, progress=self.progress, slot=self.name)

    def boot(self, timeout_s: float = BOOT_TIMEOUT_S) -> float:
        """Start the domain and wait until it is ready; return seconds taken."""
        libvirt = libvirt_module()
        started = time.monotonic()
        self.report_step("boot", "starting")
        for attempt in range(_PORT_RETRIES):
            try:
                self.domain.create()
                break
            except libvirt.libvirtError as exc:
                message = exc.get_error_message() or str(exc)
                if "hostfwd" not in message and "host forwarding" not in message:
                    raise VmError(f"starting {self.name}: {message}") from exc
                if attempt == _PORT_RETRIES - 1:
                    raise VmError(f"starting {self.name}: {message}") from exc
                # another process took a chosen port between choice and start
                redefine(self.lease, choose_host_ports(self.lease.slot))
        self.wait_ready(timeout_s - (time.monotonic() - started), step="boot")
        elapsed = time.monotonic() - started
        self.report_step("boot", "ready", done=True, elapsed_s=elapsed)
        return elapsed

    def wait_ready(self, timeout_s: float, *, step: str = "ready") -> None:
        self.report_step(step, f"waiting up to {timeout_s:.0f} s for the guest to answer")
        self.ready(self, max(timeout_s, 1.0))

    @property
    def snapshots(self) -> SnapshotStore:
        """Internal or saved-state snapshots, as the profile asks
        (:mod:`harness.vm.snapshots`)."""
        if self._snapshots is None:
            self._snapshots = store_for_lease(self.lease)
        return self._snapshots

    def has_snapshot(self, name: str) -> bool:
        return self.snapshots.has(name)

    def take_snapshot(self, name: str) -> None:
        """A snapshot of disk and RAM of the running guest, which keeps running."""
        started = time.monotonic()
        self.report_step("snapshot", f"taking {name!r} ({self.snapshots.kind})")
        self.snapshots.take(name)
        self.report_step("snapshot", f"took {name!r}", done=True,
                         elapsed_s=time.monotonic() - started)

    def delete_snapshot(self, name: str) -> None:
        self.snapshots.delete(name)

    def revert(self, name: str | None = None, timeout_s: float = REVERT_TIMEOUT_S) -> float:
        """Revert disk and RAM to snapshot ``name`` (default: golden if taken,
        else clean), wait until ready; return seconds taken."""
        snapshots = self.profile.snapshots
        target = name or (snapshots.golden if self.has_snapshot(snapshots.golden)
                          else snapshots.clean)
        started = time.monotonic()
        self.report_step("revert", f"reverting to {target!r}")
        self.snapshots.revert(target)
        self.wait_ready(timeout_s - (time.monotonic() - started), step="revert")
        elapsed = time.monotonic() - started
        self.report_step("revert", f"at {target!r}", done=True, elapsed_s=elapsed)
        return elapsed

    def reset(self) -> float:
        """Between tests: renew the lease and revert to golden (or clean)."""
        renew(self.lease, self.ttl_s)
        return self.revert()

    def renew(self) -> None:
        renew(self.lease, self.ttl_s)

    def prepare_golden(self, deploy: Callable[[Machine], None]) -> None:
        """Run ``deploy`` (install the driver) on the clean guest, then take the
        golden snapshot that every test reverts to. Skipped if it exists."""
        golden = self.profile.snapshots.golden
        if self.has_snapshot(golden):
            return
        self.report_step("deploy", "deploying into the clean guest")
        deploy(self)
        self.wait_ready(REVERT_TIMEOUT_S, step="deploy")
        self.take_snapshot(golden)


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (teardown must finish)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def hold(signum: int, _frame: object) -> None:
        pending.append(signum)

    for sig in previous:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            signal.raise_signal(pending[0])


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so teardown runs (as for Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def leased_machine(
    pool: Pool,
    *,
    run_id: str,
    worker_index: int = 0,
    progress: Progress | None = None,
    ready: ReadyCheck = default_ready,
    boot_timeout_s: float = BOOT_TIMEOUT_S,
    lease_wait_s: float = 600.0,
    shell_factory: ShellFactory = shell_for_uri,
) -> Iterator[Machine]:
    """Lease a slot of ``pool``, boot it, take ``clean``; always clean up.

    Yields a :class:`Machine`. Raises LeaseError when no slot frees up within
    ``lease_wait_s``, VmError when provisioning fails (after cleaning up).
    """
    with sigterm_as_interrupt():
        lease = acquire(pool, run_id=run_id, worker_index=worker_index,
                        wait_timeout_s=lease_wait_s, shell_factory=shell_factory)
        try:
            machine = Machine(lease, progress=progress, ready=ready, ttl_s=pool.lease_ttl_s)
            machine.create_overlay()
            machine.boot(boot_timeout_s)
            machine.take_snapshot(lease.slot.profile.snapshots.clean)
            yield machine
        except BaseException as exc:
            # The first error is the one to report: a teardown that fails after it
            # is added to its message, never put in its place.
            try:
                _teardown(lease, progress)
            except Exception as cleanup:
                if isinstance(exc, TargetError) and len(exc.args) == 1:
                    exc.args = (f"{exc.args[0]} (cleaning up afterwards also failed: "
                                f"{cleanup})",)
                else:
                    exc.add_note(f"cleaning up afterwards also failed: {cleanup}")
            raise
        else:
            _teardown(lease, progress)


def _teardown(lease: Lease, progress: Progress | None) -> None:
    started = time.monotonic()
    report(progress, "teardown", lease.name, "destroying the domain and its overlay")
    with held_signals():
        release(lease)
    report(progress, "teardown", lease.name, "done", done=True,
           elapsed_s=time.monotonic() - started)
