"""Crash watch: a guest panic or bugcheck fails the current test, with evidence.

The guest reports a crash through pvpanic or the Hyper-V crash MSRs; QEMU
turns that into a guest-panicked event and libvirt (``on_crash=preserve``)
keeps the crashed guest in memory and emits a lifecycle event
``VIR_DOMAIN_EVENT_CRASHED``. :class:`CrashWatch` listens for it on libvirt's
event loop and, because an event can be missed (registered late, connection
hiccup), also polls the domain state (``VIR_DOMAIN_CRASHED`` or paused with
reason ``VIR_DOMAIN_PAUSED_CRASHED``) when asked.

:meth:`CrashWatch.check` is what the plugin calls after each test: if the
guest crashed it saves a memory dump (``virDomainCoreDumpWithFormat``) and
the serial log into the test's output directory, reverts the slot so the
next test starts clean, and raises :class:`~harness.errors.GuestCrashed`
with a message that says "guest crashed" and where the evidence is.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import GuestCrashed, VmError
from harness.vm.connection import libvirt_errors, libvirt_module
from harness.vm.provision import Machine
from harness.vm.wait import WaitTimeout, wait_until

__all__ = ["CrashEvidence", "CrashWatch", "dump_memory"]

DUMP_TIMEOUT_S = 600.0
_DUMP_FORMATS = {
    "elf": "VIR_DOMAIN_CORE_DUMP_FORMAT_RAW",
    "kdump-zlib": "VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB",
    "kdump-lzo": "VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_LZO",
    "kdump-snappy": "VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_SNAPPY",
    "win-dmp": "VIR_DOMAIN_CORE_DUMP_FORMAT_WIN_DMP",
}


@dataclass(frozen=True)
class CrashEvidence:
    """What was saved about one crash."""

    description: str
    dump: Path | None
    serial_log: Path | None
    dump_error: str | None


class CrashWatch:
    """Watches one machine for crashes; use as a context manager."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self._lock = threading.Lock()
        self._crash: str | None = None
        self._callback_id: int | None = None
        self.events: list[tuple[int, int]] = []
        """Every (event, detail) lifecycle pair libvirt delivered, in order."""

    def __enter__(self) -> CrashWatch:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        libvirt = libvirt_module()
        with libvirt_errors(f"watching {self.machine.name} for crashes"):
            self._callback_id = self.machine.lease.conn.domainEventRegisterAny(
                self.machine.domain, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None
            )

    def close(self) -> None:
        libvirt = libvirt_module()
        if self._callback_id is not None:
            # the connection may already be closed by the teardown
            with contextlib.suppress(libvirt.libvirtError):
                self.machine.lease.conn.domainEventDeregisterAny(self._callback_id)
            self._callback_id = None

    def _on_event(self, _conn: Any, _dom: Any, event: int, detail: int, _opaque: Any) -> None:
        libvirt = libvirt_module()
        self.events.append((event, detail))
        if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
            kind = "panicked" if detail == libvirt.VIR_DOMAIN_EVENT_CRASHED_PANICKED else "crashed"
            self._record(f"the guest {kind} (libvirt crash event)")
        elif (event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED
              and detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PANIC):
            self._record("the guest panicked (paused on panic)")

    def _record(self, description: str) -> None:
        with self._lock:
            if self._crash is None:
                self._crash = description

    def _poll_state(self) -> str | None:
        libvirt = libvirt_module()
        try:
            state, reason = self.machine.domain.state()
        except libvirt.libvirtError:
            return None
        if state == libvirt.VIR_DOMAIN_CRASHED:
            return "the guest crashed (domain state crashed)"
        if state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_CRASHED:
            return "the guest crashed (paused after a crash)"
        return None

    def crashed(self) -> str | None:
        """A description of the crash, or None if the guest is fine."""
        with self._lock:
            if self._crash is not None:
                return self._crash
        found = self._poll_state()
        if found is not None:
            self._record(found)
        return found

    def wait_crashed(self, timeout_s: float) -> str:
        """Block until the guest has crashed (for tests that provoke one)."""
        wait_until(lambda: self.crashed() is not None, timeout_s=timeout_s,
                   what=f"{self.machine.name} to crash", first_interval_s=0.1)
        return self.crashed() or ""

    def clear(self) -> None:
        with self._lock:
            self._crash = None

    def collect(self, output_dir: Path, *, timeout_s: float = DUMP_TIMEOUT_S) -> CrashEvidence:
        """Save a memory dump and the serial log into ``output_dir``."""
        description = self.crashed() or "no crash seen"
        machine = self.machine
        output_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        dump: Path | None = None
        dump_error: str | None = None
        fmt = machine.profile.crash.dump_format
        suffix = "dmp" if fmt == "win-dmp" else "core"
        remote = machine.overlay.with_name(f"{machine.name}-{machine.lease.record.token}"
                                           f"-{stamp}.{suffix}")
        started = time.monotonic()
        machine.report_step("dump", f"writing a {fmt} memory dump")
        try:
            dump_memory(machine, remote, fmt, timeout_s=timeout_s)
            saved = output_dir / f"{machine.name}-{stamp}.{suffix}"
            machine.lease.store.fetch(remote, saved)
            dump = saved
            machine.report_step("dump", f"saved {dump}", done=True,
                                elapsed_s=time.monotonic() - started)
        except VmError as exc:
            dump_error = str(exc)
        finally:
            with contextlib.suppress(VmError):
                machine.lease.store.remove([remote])
        serial_copy = output_dir / f"{machine.name}-serial.log"
        try:
            machine.lease.store.fetch(machine.serial_log, serial_copy)
            serial: Path | None = serial_copy
        except VmError:
            serial = None
        return CrashEvidence(description, dump, serial, dump_error)

    def check(self, output_dir: Path) -> None:
        """Raise GuestCrashed (after saving evidence and reverting) if the
        guest crashed; otherwise return."""
        description = self.crashed()
        if description is None:
            return
        evidence = self.collect(output_dir)
        try:
            self.machine.revert()
        finally:
            self.clear()
        parts = [f"guest crashed: slot {self.machine.name} (profile {self.machine.profile.name}):"
                 f" {evidence.description}"]
        if evidence.dump is not None:
            parts.append(f"memory dump: {evidence.dump}")
        else:
            parts.append(f"no memory dump ({evidence.dump_error})")
        if evidence.serial_log is not None:
            parts.append(f"serial log: {evidence.serial_log}")
        parts.append("the slot was reverted")
        raise GuestCrashed("; ".join(parts))


def dump_memory(machine: Machine, path: Path, fmt: str, *, timeout_s: float) -> None:
    """Write a memory-only dump of the (crashed, still loaded) guest to
    ``path`` on the hypervisor."""
    libvirt = libvirt_module()
    code = getattr(libvirt, _DUMP_FORMATS[fmt])
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            machine.domain.coreDumpWithFormat(str(path), code, libvirt.VIR_DUMP_MEMORY_ONLY)
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)
        finally:
            done.set()

    # libvirt's dump call blocks without a timeout; run it aside and bound the wait.
    threading.Thread(target=run, name=f"dump-{machine.name}", daemon=True).start()
    try:
        wait_until(done.is_set, timeout_s=timeout_s, what=f"the memory dump of {machine.name}",
                   first_interval_s=0.1)
    except WaitTimeout:
        with libvirt_errors("aborting the dump"):
            machine.domain.abortJob()
        raise
    if failure:
        exc = failure[0]
        if isinstance(exc, libvirt.libvirtError):
            raise VmError(f"memory dump of {machine.name}: {exc.get_error_message()}") from exc
        raise VmError(f"memory dump of {machine.name}: {exc}") from exc
