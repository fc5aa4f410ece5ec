"""The booted TCG test guest, for any test that needs a real VM.

:class:`TcgGuest` is what the ``tcg_guest`` fixture (tests/vm/conftest.py)
yields: where SSH listens, as whom, with which key, and the harness
:class:`~harness.vm.provision.Machine` (domain, slot, snapshots) behind it.
:func:`ssh_run` runs one command over paramiko and returns rc/stdout/stderr.
:func:`load_image_builder` imports ``fixtures/linux-tcg/build_image.py``
(a script, not part of the package) by path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.vm.provision import Machine

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
BUILDER = FIXTURES / "linux-tcg" / "build_image.py"


@dataclass(frozen=True)
class SshResult:
    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class TcgGuest:
    """A running Linux guest under QEMU/TCG, reachable over SSH on loopback.

    ``host``/``port``: the 127.0.0.1 user-mode forward to the guest's sshd;
    ``username``: ``root``; ``key_path``: the ed25519 private key accepted by
    the guest; ``python``: the guest's Python 3 interpreter path;
    ``machine``: the leased harness Machine (``machine.domain`` is the
    libvirt domain, ``machine.name`` the slot, ``machine.revert()`` goes back
    to the ``clean`` snapshot); ``uri``: the libvirt URI of the private daemon.
    The guest runs dropbear with OpenSSH's sftp-server, so paramiko SFTP
    works (:func:`ssh_client` then ``open_sftp()``). Tests that change the
    guest should revert it when done.
    """

    host: str
    port: int
    username: str
    key_path: Path
    python: str
    machine: Machine
    uri: str


def load_image_builder() -> ModuleType:
    """Import fixtures/linux-tcg/build_image.py as a module."""
    spec = importlib.util.spec_from_file_location("callout_harness_build_image", BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def image_cache_dir() -> Path:
    """Where tests keep the built guest: $CALLOUT_HARNESS_CACHE, else a
    folder in the system temp dir (readable by the unprivileged daemon,
    unlike root's home)."""
    configured = os.environ.get("CALLOUT_HARNESS_CACHE")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "callout-harness-cache"


def ssh_client(guest: TcgGuest, *, timeout_s: float = 20.0) -> Any:
    import paramiko

    client = paramiko.SSHClient()
    # a throwaway guest whose host key is generated on first boot
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        guest.host, port=guest.port, username=guest.username,
        key_filename=str(guest.key_path), timeout=timeout_s, banner_timeout=timeout_s,
        auth_timeout=timeout_s, look_for_keys=False, allow_agent=False,
    )
    return client


def ssh_run(guest: TcgGuest, command: str, *, timeout_s: float = 60.0) -> SshResult:
    """Run ``command`` in the guest; wait at most ``timeout_s``."""
    client = ssh_client(guest)
    try:
        _stdin, stdout, stderr = client.exec_command(command, timeout=timeout_s)
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        return SshResult(stdout.channel.recv_exit_status(), out, err)
    finally:
        client.close()
