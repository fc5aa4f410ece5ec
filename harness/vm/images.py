"""Disk files on the hypervisor: qcow2 overlays over read-only base images.

Overlays, NVRAM copies, serial logs and dumps live on the machine that runs
the VM, which for ``qemu+ssh://hv2/system`` is not this one. File work
therefore goes through a :class:`HostShell`: :class:`LocalShell` runs
commands here (optionally under a prefix such as ``setpriv`` so the files
belong to the user a session-mode libvirtd runs QEMU as), :class:`SshShell`
runs them on the hypervisor with the system ``ssh`` client, reusing the
same host and user as the libvirt URI.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
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


@dataclass(frozen=True)
class SshShell:
    """Commands on a remote hypervisor over the system ssh client."""

    destination: str  # [user@]host
    port: int | None = None

    @property
    def description(self) -> str:
        return self.destination

    def _ssh(self) -> list[str]:
        argv = ["ssh", "-o", "BatchMode=yes"]
        if self.port:
            argv += ["-p", str(self.port)]
        return [*argv, self.destination, "--"]

    def run(self, argv: Sequence[str], *, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        command = " ".join(shlex.quote(a) for a in argv)
        return _run([*self._ssh(), command], f"{argv[0]} on {self.destination}", timeout_s)

    def fetch(self, remote: Path, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        argv = ["scp", "-q", "-o", "BatchMode=yes"]
        if self.port:
            argv += ["-P", str(self.port)]
        _run([*argv, f"{self.destination}:{remote}", str(local)], f"scp from {self.destination}",
             COMMAND_TIMEOUT_S)


def shell_for_uri(uri: str) -> HostShell:
    """The shell that reaches the files of domains on ``uri``."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    if parts.hostname and transport in ("ssh", "libssh", "libssh2"):
        user = f"{parts.username}@" if parts.username else ""
        return SshShell(f"{user}{parts.hostname}", parts.port)
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


def create_overlay(
    shell: HostShell,
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
    shell.run(["mkdir", "-p", str(overlay.parent)])
    shell.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format,
               str(overlay)])
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
