"""Overlays over a read-only base, and image copies with progress."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.errors import VmError
from harness.vm.hostssh import HypervisorAddress, HypervisorSsh
from harness.vm.images import LocalShell, ShellFiles, copy_image, create_overlay, shell_for_uri
from harness.vm.progress import ProgressEvent


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    path.chmod(0o444)
    return path


def test_overlay_points_at_the_base_and_leaves_it_alone(tmp_path: Path, base: Path) -> None:
    before = base.read_bytes()
    overlay = tmp_path / "slots" / "ch-a-1234.qcow2"
    events: list[ProgressEvent] = []
    create_overlay(ShellFiles(LocalShell()), base=base, base_format="qcow2", overlay=overlay,
                   progress=events.append, slot="ch-a")
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"] == str(base)
    assert info["backing-filename-format"] == "qcow2"
    assert base.read_bytes() == before
    assert [e.done for e in events] == [False, True]


def test_image_copy_reports_progress(tmp_path: Path, base: Path) -> None:
    events: list[ProgressEvent] = []
    dest = tmp_path / "copies" / "base.qcow2"
    copy_image(LocalShell(), base, dest, progress=events.append, slot="ch-a")
    assert dest.is_file() and not dest.with_name("base.qcow2.partial").exists()
    assert events[-1].done and events[-1].step == "image-copy"
    assert any(e.fraction is not None for e in events)


def test_failures_become_vm_errors(tmp_path: Path) -> None:
    with pytest.raises(VmError, match="qemu-img on this host: exit 1"):
        create_overlay(ShellFiles(LocalShell()), base=tmp_path / "missing.qcow2", base_format="qcow2",
                       overlay=tmp_path / "o.qcow2")


def test_remote_uris_get_an_ssh_shell() -> None:
    remote = shell_for_uri("qemu+ssh://ci@hv2:2222/system")
    assert isinstance(remote, HypervisorSsh)
    assert remote.address == HypervisorAddress("hv2", 2222, "ci", None, None)
    libssh = shell_for_uri("qemu+libssh://hv3/session?keyfile=/k&known_hosts=/kh&sshauth=privkey")
    assert isinstance(libssh, HypervisorSsh)
    assert libssh.address == HypervisorAddress("hv3", 22, None, Path("/k"), Path("/kh"))
    assert isinstance(shell_for_uri("qemu:///system"), LocalShell)
    assert isinstance(shell_for_uri("qemu+unix:///session?socket=/tmp/s"), LocalShell)
    with pytest.raises(VmError, match="use a qemu\\+ssh:// URI"):
        shell_for_uri("qemu+tcp://hv3/system")
