"""A pool across two hypervisors: this machine's private libvirtd and a second
"host" in a network namespace, reached only over SSH (qemu+libssh://).

The remote slot's files go through libvirt's storage pool API, its guest's
forwarded port (bound to the namespace's own 127.0.0.1) through a paramiko
tunnel, and the namespace host's key is checked against known_hosts. The
remote slot runs linux-tcg-uefi, so its revert is a saved state written by
the remote hypervisor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import VmError
from harness.vm.connection import connection, libvirt_module
from harness.vm.hostssh import HypervisorSsh, hypervisor_address
from harness.vm.metadata import process_alive
from harness.vm.storage import PoolFiles
from tests.support.vm_guest import REPO
from tests.support.vm_libvirtd import SessionDaemon
from tests.support.vm_remote import RemoteHost, RemoteUnavailable, start_remote_host

pytestmark = [pytest.mark.guest, pytest.mark.remote]
HANDFUL = ("connect-pend-block", "recv-accept-reinject", "closure-udp-many-peers",
           "txn-wait-default-timeout", "stream-out-of-band")


@pytest.fixture(scope="module")
def remote_host() -> Iterator[RemoteHost]:
    try:
        host = start_remote_host()
    except RemoteUnavailable as exc:
        pytest.skip(f"cannot make the network-namespace hypervisor: {exc}")
    try:
        yield host
    finally:
        host.stop()


def test_the_hypervisor_host_key_is_checked_against_known_hosts(
    remote_host: RemoteHost, tmp_path: Path
) -> None:
    address = hypervisor_address(remote_host.uri)
    assert address is not None and address.known_hosts == remote_host.known_hosts
    ssh = HypervisorSsh(address)
    try:
        assert ssh.run(["id", "-un"]).strip() == "chhost"
    finally:
        ssh.close()

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(VmError, match="unknown host key"):
        HypervisorSsh(replace(address, known_hosts=empty)).run(["true"])
    other = tmp_path / "other_known_hosts"
    impostor = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                               str(tmp_path / "impostor")], check=True)
    assert impostor.returncode == 0
    blob = (tmp_path / "impostor.pub").read_text().split()[1]
    other.write_text(f"{remote_host.address} ssh-ed25519 {blob}\n")
    with pytest.raises(VmError, match="host key CHANGED"):
        HypervisorSsh(replace(address, known_hosts=other)).run(["true"])


def test_remote_files_go_through_the_storage_pool_api(
    remote_host: RemoteHost, guest_image: Any, tmp_path: Path
) -> None:
    address = hypervisor_address(remote_host.uri)
    assert address is not None
    work = remote_host.workdir("files") / "slot-a"
    ssh = HypervisorSsh(address)
    try:
        with connection(remote_host.uri) as conn:
            files = PoolFiles(conn, ssh)
            files.create_overlay(Path(guest_image.base), "qcow2", work / "o.qcow2")
            assert (work / "o.qcow2").stat().st_uid == 65534  # made by the remote daemon
            info = subprocess.run(["qemu-img", "info", "-U", str(work / "o.qcow2")],
                                  capture_output=True, text=True, check=True).stdout
            assert f"backing file: {guest_image.base}" in info
            files.make_dir(work / "o.states")
            files.copy(work / "o.qcow2", work / "o.states" / "copy.qcow2", mode=0o400)
            assert (work / "o.states" / "copy.qcow2").stat().st_mode & 0o777 == 0o400
            files.rename(work / "o.qcow2", work / "o.states" / "moved.qcow2")
            files.make_read_only([work / "o.states" / "moved.qcow2"])
            files.fetch(work / "o.states" / "moved.qcow2", tmp_path / "back.qcow2")
            assert (tmp_path / "back.qcow2").read_bytes()[:4] == b"QFI\xfb"
            files.remove([work / "o.states", work / "missing.qcow2"])
            assert list(work.iterdir()) == []
            libvirt = libvirt_module()
            names = [p.name() for p in conn.listAllStoragePools(
                libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)]
            assert len(names) == 1  # the .states folder's pool went with it
    finally:
        ssh.close()


def _env(guest_image: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CALLOUT_HARNESS_GUEST": str(guest_image.directory),
        "CALLOUT_HARNESS_SSH_USER": "root",
        "CALLOUT_HARNESS_SSH_KEY": str(guest_image.private_key),
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


@pytest.fixture(scope="module")
def two_host_pool(vm_daemon: SessionDaemon, remote_host: RemoteHost,
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A pool file: slot ch-two-a (linux-tcg) here, ch-two-b (linux-tcg-uefi) there."""
    local_dir = vm_daemon.workdir("two-host-a")
    remote_dir = remote_host.workdir("two-host-b")
    pool = tmp_path_factory.mktemp("pool") / "two-hosts.toml"
    pool.write_text(
        f'[pool]\nlease_ttl_s = 3600\noverlay_dir = "{local_dir}"\n\n'
        f'[[slot]]\nname = "ch-two-a"\nuri = "{vm_daemon.uri}"\nprofile = "linux-tcg"\n\n'
        f'[[slot]]\nname = "ch-two-b"\nuri = "{remote_host.uri}"\nprofile = "linux-tcg-uefi"\n'
        f'overlay_dir = "{remote_dir}"\n'
    )
    return {"pool": pool, "dirs": (local_dir, remote_dir),
            "uris": (vm_daemon.uri, remote_host.uri)}


def _domains(uri: str) -> set[str]:
    with connection(uri) as conn:
        return {d.name() for d in conn.listAllDomains(0)}


class Watch:
    """Polls both hypervisors while a run goes on: which slots ran where."""

    def __init__(self, uris: tuple[str, str]) -> None:
        self.uris = uris
        self.seen: list[set[str]] = [set(), set()]
        self.both_at_once = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            now = [_domains(uri) for uri in self.uris]
            for index, names in enumerate(now):
                self.seen[index] |= names
            self.both_at_once |= "ch-two-a" in now[0] and "ch-two-b" in now[1]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _pool_run(pool: Path, out: Path, guest_image: Any, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "scenarios", "-k", " or ".join(HANDFUL),
         "--vm-pool", str(pool), "-n", "2", "--harness-out", str(out),
         "-p", "no:cacheprovider", "-p", "no:randomly", "-q"],
        cwd=REPO, env=_env(guest_image), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, **kw,
    )


def test_a_pool_over_two_hosts_runs_scenarios_on_both_at_once(
    two_host_pool: dict[str, Any], guest_image: Any, vm_daemon: SessionDaemon
) -> None:
    out = vm_daemon.workdir("two-host-out")
    watch = Watch(two_host_pool["uris"])
    try:
        proc = _pool_run(two_host_pool["pool"], out, guest_image)
        output, _ = proc.communicate(timeout=900)
    finally:
        watch.stop()
    assert proc.returncode == 0, output[-4000:]
    assert f"{len(HANDFUL)} passed" in output
    assert "ch-two-a" in watch.seen[0] and "ch-two-b" in watch.seen[1]
    assert watch.both_at_once  # -n 2: one worker on each host
    traces = {p.name.split(".")[1] for p in (out / "traces").glob("*.jsonl")}
    assert traces == {"linux-tcg", "linux-tcg-uefi"}
    for uri, directory in zip(two_host_pool["uris"], two_host_pool["dirs"], strict=True):
        assert not {"ch-two-a", "ch-two-b"} & _domains(uri)
        assert list(directory.iterdir()) == []


def _ssh_sessions(remote: RemoteHost) -> set[int]:
    """Pids of the processes here with an SSH connection to the remote host."""
    listing = subprocess.run(["ss", "-Htnp", "state", "established", "dst",
                              f"{remote.address}:22"], capture_output=True, text=True,
                             check=True).stdout
    return {int(part.split(",")[0]) for part in listing.split("pid=")[1:]}


def test_sigkill_of_a_pool_run_then_gc_leaves_nothing_on_either_host(
    two_host_pool: dict[str, Any], guest_image: Any, vm_daemon: SessionDaemon,
    remote_host: RemoteHost,
) -> None:
    out = vm_daemon.workdir("two-host-killed")
    remote_dir = two_host_pool["dirs"][1]
    proc = _pool_run(two_host_pool["pool"], out, guest_image, start_new_session=True)
    try:
        # both slots up, and the remote one has its clean state saved
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if (list(remote_dir.glob("*.states/clean.save"))
                    and "ch-two-a" in _domains(vm_daemon.uri)):
                break
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError("the run never held both slots")
        tunnels_of_run = _ssh_sessions(remote_host) - {os.getpid()}
        assert tunnels_of_run  # the run's worker holds its SSH connection (tunnel) there
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    time.sleep(0.5)
    assert "ch-two-b" in _domains(remote_host.uri) and list(remote_dir.iterdir())

    gc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "vm", "gc", "--pool", str(two_host_pool["pool"]),
         "--profiles", str(REPO / "fixtures")],
        cwd=REPO, env=_env(guest_image), capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert "removed ch-two-b" in gc.stdout
    for uri, directory in zip(two_host_pool["uris"], two_host_pool["dirs"], strict=True):
        assert not {"ch-two-a", "ch-two-b"} & _domains(uri)
        assert list(directory.iterdir()) == []  # no overlay, NVRAM, save file or log
    # no tunnel left: no process here but this test holds an SSH connection there
    left = _ssh_sessions(remote_host) - {os.getpid()}
    assert not left, [_command_line(pid) for pid in left]
    running = [pid for pid in remote_host.qemu_pids() if _alive(pid)]
    assert running == [], [(_command_line(pid)[-300:], Path(f"/proc/{pid}/stat").read_text())
                           for pid in running]


def _alive(pid: int) -> bool:
    return process_alive(pid)  # zombies (killed, not yet reaped) are gone


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"pid {pid} (gone)"
