"""Disk files on the hypervisor: qcow2 overlays over read-only base images.

Overlays, NVRAM copies, saved states, serial logs and dumps live on the
machine that runs the VM, which for ``qemu+ssh://hv2/system`` is not this
one. The harness works on them through :class:`HostFiles`, a handful of
file operations with two implementations:

* :class:`ShellFiles` runs commands through a :class:`HostShell`:
  :class:`LocalShell` here (optionally under a prefix such as ``setpriv`` so
  the files belong to the user a session-mode libvirtd runs QEMU as);
* :class:`harness.vm.storage.PoolFiles`, for remote hypervisors, goes
  through libvirt's storage pool API, with SSH
  (:class:`harness.vm.hostssh.HypervisorSsh`) only where libvirt has no call.

:func:`files_for` picks one for a URI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from harness.errors import VmError
from harness.vm.progress import Progress, report

COMMAND_TIMEOUT_S = 300.0
_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


class HostShell(Protocol):
    """Runs commands on the host that holds a slot's files."""

    @property
    def description(self) -> str:
        """Where the commands run, for messages."""
        ...

    def run(self, argv: Sequence[str], *, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        """Run ``argv``; return stdout; raise VmError on failure."""
        ...

    def fetch(self, remote: Path, local: Path) -> None:
        """Copy a file from the host to ``local`` on this machine."""
        ...


def _run(argv: Sequence[str], what: str, timeout_s: float) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError as exc:
        raise VmError(f"{what}: {argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise VmError(f"{what}: no result after {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise VmError(f"{what}: exit {done.returncode}: {detail[-1] if detail else ''}")
    return done.stdout


@dataclass(frozen=True)
class LocalShell:
    """Commands on this machine, optionally under ``prefix`` (e.g. setpriv)."""

    prefix: tuple[str, ...] = ()
    description: str = "this host"

    def run(self, argv: Sequence[str], *, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        return _run([*self.prefix, *argv], f"{argv[0]} on {self.description}", timeout_s)

    def fetch(self, remote: Path, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(remote, local)
        except OSError as exc:
            raise VmError(f"copying {remote} to {local}: {exc}") from exc


def shell_for_uri(uri: str) -> HostShell:
    """The shell that reaches the files of domains on ``uri``: a
    :class:`~harness.vm.hostssh.HypervisorSsh` (paramiko, host keys checked)
    for ``qemu+ssh://`` and the libssh transports, else a local one."""
    from harness.vm.hostssh import hypervisor_address

    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    address = hypervisor_address(uri)
    if address is not None:
        from harness.vm.hostssh import HypervisorSsh

        return HypervisorSsh(address)
    if parts.hostname and parts.hostname not in ("localhost", "127.0.0.1"):
        raise VmError(
            f"{uri}: cannot manage disk files on {parts.hostname} over {transport or 'tcp'};"
            " use a qemu+ssh:// URI for remote hypervisors"
        )
    return _session_owner_shell(parts.query) or LocalShell()


def _session_owner_shell(query: str) -> LocalShell | None:
    """Root driving another user's session daemon (``...?socket=PATH``) works on
    that user's files: QEMU runs as the daemon's user and must own its overlays."""
    from urllib.parse import parse_qs

    socket = parse_qs(query).get("socket", [None])[0]
    if not socket or os.geteuid() != 0:
        return None
    try:
        st = os.stat(socket)
    except OSError:
        return None
    if st.st_uid == 0:
        return None
    import pwd

    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        name = str(st.st_uid)
    return LocalShell(
        prefix=("setpriv", f"--reuid={st.st_uid}", f"--regid={st.st_gid}", "--clear-groups"),
        description=f"this host as {name}",
    )


ShellFactory = Callable[[str], HostShell]


def close_shell(shell: HostShell) -> None:
    """End a shell's connection if it holds one (a remote hypervisor's SSH)."""
    closer = getattr(shell, "close", None)
    if callable(closer):
        closer()


class HostFiles(Protocol):
    """The file operations the harness needs on a hypervisor."""

    @property
    def description(self) -> str:
        ...

    def make_dir(self, path: Path) -> None:
        """Create ``path`` (and parents) if missing."""
        ...

    def create_overlay(self, backing: Path, backing_format: str, overlay: Path) -> None:
        """A new thin qcow2 ``overlay`` over ``backing`` (replacing any old one)."""
        ...

    def remove(self, paths: Sequence[Path]) -> None:
        """Delete files (and a lease's ``.states`` folder); missing ones are fine."""
        ...

    def copy(self, source: Path, dest: Path, *, mode: int) -> None:
        """Copy ``source`` to ``dest`` (replacing it), with permissions ``mode``."""
        ...

    def rename(self, source: Path, dest: Path) -> None:
        ...

    def make_read_only(self, paths: Sequence[Path]) -> None:
        ...

    def fetch(self, remote: Path, local: Path) -> None:
        """Copy a file from the hypervisor to ``local`` on this machine."""
        ...


@dataclass(frozen=True)
class ShellFiles:
    """HostFiles by commands (mkdir, qemu-img, rm, install, mv, chmod) on a shell."""

    shell: HostShell

    @property
    def description(self) -> str:
        return self.shell.description

    def make_dir(self, path: Path) -> None:
        self.shell.run(["mkdir", "-p", "--", str(path)])

    def create_overlay(self, backing: Path, backing_format: str, overlay: Path) -> None:
        self.shell.run(["mkdir", "-p", "--", str(overlay.parent)])
        self.shell.run(["rm", "-f", "--", str(overlay)])
        self.shell.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(backing), "-F",
                        backing_format, str(overlay)])

    def remove(self, paths: Sequence[Path]) -> None:
        remove_files(self.shell, paths)

    def copy(self, source: Path, dest: Path, *, mode: int) -> None:
        self.shell.run(["install", "-m", f"{mode:04o}", "--", str(source), str(dest)])

    def rename(self, source: Path, dest: Path) -> None:
        self.shell.run(["mv", "-f", "--", str(source), str(dest)])

    def make_read_only(self, paths: Sequence[Path]) -> None:
        if paths:
            self.shell.run(["chmod", "a-w", "--", *(str(p) for p in paths)])

    def fetch(self, remote: Path, local: Path) -> None:
        self.shell.fetch(remote, local)


def files_for(uri: str, shell: HostShell, conn: Any) -> HostFiles:
    """How to work on the files of domains on ``uri``: libvirt's storage API
    (SSH for the rest) on a remote hypervisor, ``shell`` commands on this one."""
    from harness.vm.hostssh import hypervisor_address

    if hypervisor_address(uri) is not None and conn is not None:
        from harness.vm.storage import PoolFiles

        return PoolFiles(conn, shell)
    return ShellFiles(shell)


def create_overlay(
    files: HostFiles,
    *,
    base: Path,
    base_format: str,
    overlay: Path,
    progress: Progress | None = None,
    slot: str = "",
) -> None:
    """Create a qcow2 overlay on top of ``base`` (which is never written)."""
    started = time.monotonic()
    report(progress, "overlay", slot, f"creating {overlay.name} over {base}")
    files.create_overlay(base, base_format, overlay)
    report(progress, "overlay", slot, f"created {overlay.name}", done=True,
           elapsed_s=time.monotonic() - started)


def remove_files(shell: HostShell, paths: Sequence[Path]) -> None:
    """Delete files (and a lease's saved-state folder) on the host; missing
    ones are fine (cleanup is idempotent)."""
    if paths:
        shell.run(["rm", "-rf", "--", *(str(p) for p in paths)])


def copy_image(
    shell: HostShell,
    source: Path,
    dest: Path,
    *,
    progress: Progress | None = None,
    slot: str = "",
    timeout_s: float = 3600.0,
) -> None:
    """Copy a base image into place on the host, reporting progress.

    The copy goes to a temporary name and is renamed at the end, so a reader
    never sees half an image. ``qemu-img convert -p`` prints percentages; the
    harness forwards them as they come.
    """
    partial = dest.with_name(dest.name + ".partial")
    report(progress, "image-copy", slot, f"copying {source} to {dest}")
    started = time.monotonic()
    shell.run(["mkdir", "-p", str(dest.parent)])
    if isinstance(shell, LocalShell):
        _convert_with_progress(
            [*shell.prefix, "qemu-img", "convert", "-p", "-O", "qcow2", str(source), str(partial)],
            progress, slot, timeout_s,
        )
    else:
        shell.run(["qemu-img", "convert", "-O", "qcow2", str(source), str(partial)],
                  timeout_s=timeout_s)
    shell.run(["mv", "-f", str(partial), str(dest)])
    report(progress, "image-copy", slot, f"copied {dest.name}", done=True,
           elapsed_s=time.monotonic() - started)


def _convert_with_progress(
    argv: list[str], progress: Progress | None, slot: str, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        buffer = b""
        # binary: text mode would turn qemu-img's "\r" redraws into newlines
        while chunk := os.read(proc.stdout.fileno(), 256):
            buffer += chunk
            *lines, buffer = re.split(rb"[\r\n]", buffer)
            for line in lines:
                found = _PERCENT.search(line)
                if found:
                    report(progress, "image-copy", slot, found.group(0).decode(),
                           fraction=float(found.group(1)) / 100.0)
            if time.monotonic() > deadline:
                proc.kill()
                raise VmError(f"qemu-img convert: no result after {timeout_s:.0f} s")
        code = proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip()
    if code != 0:
        raise VmError(f"qemu-img convert: exit {code}: {err}")
