"""A real guest: overlay over a read-only base, boot to ready, SSH, Python,
snapshots that restore disk and RAM: internal snapshots on the BIOS guest,
saved states on the UEFI one (``any_guest`` runs a test on both)."""

from __future__ import annotations

import json
import subprocess
import zipapp
from pathlib import Path

import pytest

from tests.support.vm_guest import TcgGuest, ssh_client, ssh_run

pytestmark = pytest.mark.guest


def test_guest_boots_from_an_overlay_over_the_read_only_base(tcg_guest: TcgGuest) -> None:
    machine = tcg_guest.machine
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(machine.overlay)],
        capture_output=True, text=True, check=True,
    ).stdout)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(machine.profile.image.base)
    assert info["backing-filename-format"] == "qcow2"
    assert machine.is_running()
    assert machine.has_snapshot("clean")


def test_ssh_command_and_python_run_in_the_guest(tcg_guest: TcgGuest) -> None:
    result = ssh_run(tcg_guest, "uname -s && python3 -c 'import sys; print(1 + sys.version_info[0])'")
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == ["Linux", "4"]


@pytest.mark.uefi
def test_uefi_guest_runs_on_ovmf_from_a_fresh_overlay_over_its_frozen_state(
    uefi_guest: TcgGuest,
) -> None:
    machine = uefi_guest.machine
    assert machine.snapshots.kind == "saved-state"
    efi = ssh_run(uefi_guest, "test -d /sys/firmware/efi/efivars && echo uefi")
    assert efi.stdout.strip() == "uefi", efi.stderr
    chain = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", "--output=json", str(machine.overlay)],
        capture_output=True, text=True, check=True,
    ).stdout)
    frozen = machine.lease.record.states / "clean.qcow2"
    assert [image["filename"] for image in chain] == [
        str(machine.overlay), str(frozen), str(machine.profile.image.base)]
    states = machine.lease.record.states
    writable = {path.name: path.stat().st_mode & 0o222 for path in states.iterdir()}
    assert {"clean.save", "clean.qcow2", "clean.nvram.fd"} <= set(writable)
    assert not any(writable.values()), writable  # frozen: read-only
    assert machine.lease.rendered.nvram is not None and machine.lease.rendered.nvram.is_file()


def test_revert_restores_disk_and_memory(any_guest: TcgGuest) -> None:
    tcg_guest = any_guest
    machine = tcg_guest.machine
    prepared = ssh_run(tcg_guest, (
        "echo on-disk > /root/marker && sync"
        " && echo in-ram > /run/value"
        " && (setsid sleep 100000 >/dev/null 2>&1 < /dev/null & echo $! > /run/sleeper)"
        " && sleep 0.2 && cat /run/sleeper"
    ))
    assert prepared.rc == 0, prepared.stderr
    sleeper = prepared.stdout.strip()
    machine.take_snapshot("test-marked")
    try:
        changed = ssh_run(tcg_guest, (
            f"rm /root/marker && echo changed > /run/value && kill {sleeper}"
            f" && sleep 0.2 && ! kill -0 {sleeper}"
        ))
        assert changed.rc == 0, changed.stderr

        machine.revert("test-marked")

        after = ssh_run(tcg_guest, f"cat /root/marker /run/value && kill -0 {sleeper} && echo alive")
        assert after.stdout.split() == ["on-disk", "in-ram", "alive"], after.stderr
    finally:
        machine.delete_snapshot("test-marked")
        machine.revert(machine.profile.snapshots.clean)
    assert ssh_run(tcg_guest, "test -e /root/marker || echo gone").stdout.strip() == "gone"


def test_long_steps_reported_progress(tcg_guest: TcgGuest, progress_events: list) -> None:
    steps = {(event.step, event.done) for event in progress_events}
    assert {("overlay", True), ("boot", True), ("snapshot", True)} <= steps
    boot = next(e for e in progress_events if e.step == "boot" and e.done)
    assert boot.elapsed_s is not None and boot.elapsed_s > 0
    assert str(boot).startswith(f"[{tcg_guest.machine.name}] boot: ready (")


def test_golden_snapshot_after_deploy_is_what_reset_returns_to(any_guest: TcgGuest) -> None:
    tcg_guest = any_guest
    machine = tcg_guest.machine
    golden = machine.profile.snapshots.golden
    deployed: list[str] = []

    def deploy(target: object) -> None:
        # stands in for the driver deployment of a later issue
        assert target is machine
        ssh_run(tcg_guest, "echo driver-v1 > /root/driver && sync")
        deployed.append("yes")

    try:
        machine.prepare_golden(deploy)
        machine.prepare_golden(deploy)  # already there: not deployed twice
        assert deployed == ["yes"] and machine.has_snapshot(golden)
        ssh_run(tcg_guest, "rm /root/driver; echo dirt > /root/dirt")

        machine.reset()

        state = ssh_run(tcg_guest, "cat /root/driver; test -e /root/dirt || echo clean")
        assert state.stdout.split() == ["driver-v1", "clean"]
    finally:
        machine.delete_snapshot(golden)
        machine.revert(machine.profile.snapshots.clean)


def test_a_zipapp_copied_over_sftp_runs_on_the_guest_python(
    tcg_guest: TcgGuest, tmp_path: Path
) -> None:
    source = tmp_path / "app"
    source.mkdir()
    (source / "__main__.py").write_text("import sys\nprint('engine', sum(range(10)), sys.argv[1])\n")
    bundle = tmp_path / "engine.pyz"
    zipapp.create_archive(source, bundle)
    client = ssh_client(tcg_guest)
    try:
        with client.open_sftp() as sftp:
            sftp.put(str(bundle), "/tmp/engine.pyz")
    finally:
        client.close()
    result = ssh_run(tcg_guest, f"{tcg_guest.python} /tmp/engine.pyz ok")
    assert (result.rc, result.stdout.strip()) == (0, "engine 45 ok"), result.stderr
