"""A guest panic, reported by pvpanic, fails the test with evidence and a
reverted slot, on the BIOS guest and on the UEFI one (saved-state revert)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import GuestCrashed
from harness.vm.connection import libvirt_module
from harness.vm.crash import CrashWatch
from harness.vm.wait import wait_until
from tests.support.vm_guest import TcgGuest, ssh_run

pytestmark = pytest.mark.guest


def test_guest_panic_is_reported_with_dump_and_serial_log(
    any_guest: TcgGuest, tmp_path: Path
) -> None:
    tcg_guest = any_guest
    machine = tcg_guest.machine
    libvirt = libvirt_module()
    with CrashWatch(machine) as watch:
        assert watch.crashed() is None
        # detached, so the SSH command returns before the kernel goes down
        fired = ssh_run(tcg_guest, "setsid sh -c 'sleep 0.5; echo c > /proc/sysrq-trigger'"
                                   " >/dev/null 2>&1 < /dev/null &")
        assert fired.rc == 0
        assert "guest" in watch.wait_crashed(timeout_s=60)
        # the lifecycle event arrives through libvirt's event loop, not only by polling
        wait_until(lambda: (libvirt.VIR_DOMAIN_EVENT_CRASHED,
                            libvirt.VIR_DOMAIN_EVENT_CRASHED_PANICKED) in watch.events,
                   timeout_s=10, what="the crashed event")

        with pytest.raises(GuestCrashed, match="guest crashed") as caught:
            watch.check(tmp_path)

    message = str(caught.value)
    assert machine.name in message and "reverted" in message
    dumps = list(tmp_path.glob("*.core"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 4096, message
    serial = (tmp_path / f"{machine.name}-serial.log").read_text(errors="replace")
    assert "Kernel panic" in serial or "sysrq" in serial.lower()
    # the slot is usable again
    assert machine.is_running()
    assert ssh_run(tcg_guest, "echo back").stdout.strip() == "back"
