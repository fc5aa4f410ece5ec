"""Ctrl-C in the middle of provisioning leaves nothing; what a SIGKILL
leaves is reclaimed by ``vm gc``, which never touches foreign domains. The
UEFI cases stop a slot whose snapshots are saved states (save files, frozen
overlays and NVRAM copies in the lease's ``.states`` folder)."""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.vm import cli
from harness.vm.connection import connection, libvirt_module
from tests.support.vm_guest import REPO, TcgGuest
from tests.support.vm_libvirtd import SessionDaemon

pytestmark = pytest.mark.guest
CHILD = REPO / "tests" / "support" / "vm_child.py"
UEFI = "linux-tcg-uefi"


class Child:
    """A vm_child.py process whose output lines we can wait for."""

    def __init__(self, daemon: SessionDaemon, slot: str, overlay_dir: Path,
                 guest_dir: Path, profile: str) -> None:
        env = dict(os.environ, CALLOUT_HARNESS_GUEST=str(guest_dir))
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), daemon.uri, slot, str(overlay_dir), daemon.user,
             profile],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )

    def wait_line(self, prefix: str, timeout_s: float = 120.0) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip())
            if line.startswith(prefix):
                return
        raise AssertionError(f"child never printed {prefix!r}: {self.lines}")

    def finish(self, timeout_s: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout_s)
        assert self.proc.stdout is not None
        self.lines.extend(self.proc.stdout.read().splitlines())
        self.proc.stdout.close()
        return code


Spawn = Callable[..., Child]


@pytest.fixture
def spawn(vm_daemon: SessionDaemon, guest_dir: Path) -> Iterator[Spawn]:
    """Start vm_child.py processes; any still running at the end are killed."""
    children: list[Child] = []

    def start(slot: str, overlay_dir: Path, profile: str = "linux-tcg") -> Child:
        children.append(Child(vm_daemon, slot, overlay_dir, guest_dir, profile))
        return children[-1]

    yield start
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
        if child.proc.stdout is not None:
            child.proc.stdout.close()


@pytest.fixture
def overlay_dir(vm_daemon: SessionDaemon, request: pytest.FixtureRequest) -> Path:
    return vm_daemon.workdir(f"overlays-{request.node.name[:40]}")


@pytest.fixture
def guest_dir(guest_image: Any) -> Path:
    return Path(guest_image.directory)


def domain_names(uri: str) -> set[str]:
    with connection(uri) as conn:
        return {d.name() for d in conn.listAllDomains(0)}


@pytest.fixture
def foreign_domain(vm_daemon: SessionDaemon) -> Iterator[str]:
    """A domain the harness did not create (no metadata), defined on the daemon."""
    xml = ("<domain type='qemu'><name>someone-elses-vm</name><memory unit='MiB'>64</memory>"
           "<os><type arch='x86_64'>hvm</type></os></domain>")
    with connection(vm_daemon.uri) as conn:
        conn.defineXML(xml)
    yield "someone-elses-vm"
    with connection(vm_daemon.uri) as conn:
        conn.lookupByName("someone-elses-vm").undefine()


@pytest.mark.parametrize(("signum", "profile", "at"), [
    (signal.SIGINT, "linux-tcg", "boot: waiting"),   # QEMU is running now
    (signal.SIGTERM, "linux-tcg", "boot: waiting"),
    # while the clean state is being saved and frozen
    pytest.param(signal.SIGINT, UEFI, "snapshot: taking", marks=pytest.mark.uefi),
], ids=["SIGINT", "SIGTERM", "uefi-SIGINT-saving"])
def test_interrupt_during_boot_leaves_no_domain_and_no_overlay(
    vm_daemon: SessionDaemon, overlay_dir: Path, spawn: Spawn,
    signum: signal.Signals, profile: str, at: str,
) -> None:
    child = spawn("ch-sigint", overlay_dir, profile)
    child.wait_line("overlay: created")
    assert "ch-sigint" in domain_names(vm_daemon.uri)
    assert any(overlay_dir.iterdir())
    child.wait_line(at)
    child.proc.send_signal(signum)
    code = child.finish()

    assert code != 0
    assert any(line.startswith("teardown: done") for line in child.lines), child.lines
    assert "ch-sigint" not in domain_names(vm_daemon.uri)
    assert list(overlay_dir.iterdir()) == []


def run_cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = cli.run(parser.parse_args(["vm", *argv]), out=out, err=out)
    return code, out.getvalue()


@pytest.mark.parametrize("profile", [
    "linux-tcg", pytest.param(UEFI, marks=pytest.mark.uefi),
])
def test_gc_reclaims_a_sigkilled_holder_and_nothing_else(
    vm_daemon: SessionDaemon, overlay_dir: Path, spawn: Spawn,
    foreign_domain: str, tcg_guest: TcgGuest, profile: str,
) -> None:
    child = spawn("ch-killed", overlay_dir, profile)
    # the UEFI holder dies with its clean state saved: a save file, a frozen
    # overlay and an NVRAM copy for gc to find
    child.wait_line("HOLDING" if profile == UEFI else "boot: waiting", timeout_s=300)
    child.proc.send_signal(signal.SIGKILL)
    child.finish()
    assert "ch-killed" in domain_names(vm_daemon.uri)
    assert any(overlay_dir.iterdir())
    if profile == UEFI:
        states = next(overlay_dir.glob("*.states"))
        assert {p.name for p in states.iterdir()} == {"clean.save", "clean.qcow2",
                                                      "clean.nvram.fd"}

    code, listing = run_cli("list", "--uri", vm_daemon.uri)
    assert code == 0
    lines = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert "is gone" in lines["ch-killed"]
    assert "live" in lines[tcg_guest.machine.name]
    assert foreign_domain not in lines

    code, output = run_cli("gc", "--uri", vm_daemon.uri)
    assert code == 0, output
    assert "removed ch-killed" in output
    remaining = domain_names(vm_daemon.uri)
    assert "ch-killed" not in remaining
    assert {foreign_domain, tcg_guest.machine.name} <= remaining
    assert list(overlay_dir.iterdir()) == []
    assert tcg_guest.machine.state()[0] == libvirt_module().VIR_DOMAIN_RUNNING
