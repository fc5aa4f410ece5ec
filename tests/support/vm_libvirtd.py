"""Start a private libvirtd for tests, and stop it by pid.

There is no systemd on CI machines, so the VM tests start their own
libvirtd in *session* mode as an unprivileged user (``nobody`` via
``setpriv``) with every XDG directory inside one temporary folder. It uses no
system state, autostarts no network (so never libvirt's 192.168.122.0/24
``default``), and is reached with
``qemu+unix:///session?socket=ROOT/run/libvirt/libvirt-sock``.

QEMU runs as that user too, so disk files must be readable and writable by
it: :attr:`SessionDaemon.shell` is a :class:`~harness.vm.images.LocalShell`
that runs ``qemu-img`` and ``rm`` as the same user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.vm.connection import libvirt_module
from harness.vm.images import LocalShell

DAEMON_USER = "nobody"


class DaemonUnavailable(RuntimeError):
    """Raised when this machine cannot run the private daemon (reason in text)."""


@dataclass
class SessionDaemon:
    root: Path
    uri: str
    user: str
    process: subprocess.Popen[bytes]
    shell: LocalShell
    log_path: Path
    _stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def workdir(self, name: str) -> Path:
        """A directory the daemon's QEMU can write (overlays, dumps, logs)."""
        path = self.root / name
        path.mkdir(exist_ok=True)
        _give(path, self.user)
        return path

    def qemu_pids(self) -> list[int]:
        pids = []
        for pidfile in (self.root / "run" / "libvirt" / "qemu" / "run").glob("*.pid"):
            if pidfile.name == "driver.pid":  # the QEMU driver's lock: libvirtd itself
                continue
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pidfile.read_text().strip()))
        return pids

    def stop(self, timeout_s: float = 20.0) -> None:
        """Destroy every domain, stop the daemon, kill leftover QEMUs by pid."""
        if self._stopped:
            return
        self._stopped = True
        destroy_all(self.uri)
        leftovers = self.qemu_pids()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _give(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o755)


def destroy_all(uri: str) -> None:
    """Destroy and undefine every domain of ``uri`` (snapshots and NVRAM too)."""
    libvirt = libvirt_module()

    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return
    try:
        for domain in conn.listAllDomains(0):
            with contextlib.suppress(libvirt.libvirtError):
                if domain.isActive():
                    domain.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                                     | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    finally:
        conn.close()


def check_can_run() -> None:
    """Raise DaemonUnavailable with the reason if the daemon cannot start."""
    if os.geteuid() != 0:
        raise DaemonUnavailable("starting libvirtd as another user needs root (setpriv)")
    for tool in ("libvirtd", "setpriv", "qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            raise DaemonUnavailable(f"{tool} is not installed (see ci/apt-packages.txt)")
    try:
        pwd.getpwnam(DAEMON_USER)
    except KeyError as exc:
        raise DaemonUnavailable(f"no user {DAEMON_USER!r} to run libvirtd as") from exc


def start_session_daemon(*, timeout_s: float = 30.0, parent: Path | None = None) -> SessionDaemon:
    """Start libvirtd in session mode as ``nobody`` in a fresh temp folder.

    ``parent`` must be traversable by that user (the default, the system temp
    folder, is). Raises DaemonUnavailable when it cannot start.
    """
    check_can_run()
    root = Path(tempfile.mkdtemp(prefix="callout-harness-libvirt-", dir=parent))
    _give(root, DAEMON_USER)
    env = {
        "HOME": str(root),
        "XDG_RUNTIME_DIR": str(root / "run"),
        "XDG_CONFIG_HOME": str(root / "config"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "XDG_DATA_HOME": str(root / "data"),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C",
    }
    log_path = root / "libvirtd.log"
    entry = pwd.getpwnam(DAEMON_USER)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
             "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), "libvirtd"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    socket_path = root / "run" / "libvirt" / "libvirt-sock"
    shell = LocalShell(
        prefix=("setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                "--clear-groups", "--"),
        description=f"this host as {DAEMON_USER}",
    )
    daemon = SessionDaemon(root=root, uri=f"qemu+unix:///session?socket={socket_path}",
                           user=DAEMON_USER, process=process, shell=shell, log_path=log_path)
    deadline = time.monotonic() + timeout_s
    libvirt = libvirt_module()

    while True:
        if process.poll() is not None:
            raise DaemonUnavailable(
                f"libvirtd exited with {process.returncode}: {log_path.read_text()[-500:]}"
            )
        if socket_path.exists():
            try:
                libvirt.open(daemon.uri).close()
                return daemon
            except libvirt.libvirtError:
                pass
        if time.monotonic() > deadline:
            daemon.stop()
            raise DaemonUnavailable(f"libvirtd did not answer within {timeout_s:.0f} s")
        time.sleep(0.1)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
