"""A real OpenSSH sshd on a free loopback port, for the SSH/SFTP transport tests.

It is the distribution's own daemon (Debian's openssh-server), run in the
foreground (``-D -f CONFIG -e``) with a temporary host key, a temporary client
key in its authorized_keys and ``internal-sftp``; it listens on 127.0.0.1 only
and is stopped by its pid. Nothing outside the temporary directory is
configured. The one thing a root sshd insists on, its privilege-separation
directory, is created when ``sshd -t`` names it as missing.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def find_sshd() -> str | None:
    """The sshd binary (an absolute path: sshd re-executes itself), or None."""
    return shutil.which("sshd", path=_SEARCH_PATH)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, *, passphrase: str = "", kind: str = "ed25519") -> Path:
    """A new key pair at ``path`` / ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "callout-harness-test",
         "-f", str(path)],
        check=True, stdin=subprocess.DEVNULL,
    )
    return path


class _PortTaken(RuntimeError):
    pass


class Sshd:
    """One sshd: ``start()``, connect to ``port`` as ``user`` with ``client_key``, ``stop()``."""

    def __init__(self, workdir: Path, *, client_passphrase: str = "") -> None:
        binary = find_sshd()
        if binary is None:
            raise FileNotFoundError("sshd (openssh-server) is not installed")
        self.binary = binary
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.host_key = keygen(workdir / "host_ed25519")
        self.client_key = keygen(workdir / "client_ed25519", passphrase=client_passphrase)
        authorized = workdir / "authorized_keys"
        authorized.write_text((workdir / "client_ed25519.pub").read_text())
        authorized.chmod(0o600)
        self.port = free_port()
        self.config = workdir / "sshd_config"
        self.log = workdir / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def host_key_line(self) -> str:
        """A known_hosts line for this daemon."""
        kind, blob = (self.workdir / "host_ed25519.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"

    def _write_config(self) -> None:
        self.config.write_text(
            "\n".join([
                f"Port {self.port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {self.host_key}",
                f"PidFile {self.workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
                f"AllowUsers {self.user}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ])
        )

    def _prepare(self) -> None:
        self._write_config()
        check = subprocess.run(
            [self.binary, "-t", "-f", str(self.config)], capture_output=True, text=True,
        )
        missing = re.search(r"Missing privilege separation directory: (\S+)", check.stderr)
        if missing:
            Path(missing[1]).mkdir(mode=0o755, parents=True, exist_ok=True)
        elif check.returncode != 0:
            raise RuntimeError(f"sshd -t rejected the test config: {check.stderr.strip()}")

    def start(self, timeout_s: float = 10.0) -> Sshd:
        for _ in range(3):
            try:
                return self._start(timeout_s)
            except _PortTaken:
                self.port = free_port()  # another process took it between probe and bind
        return self._start(timeout_s)

    def _start(self, timeout_s: float) -> Sshd:
        self._prepare()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                output = self.log.read_text()[offset:]
                if "Address already in use" in output:
                    raise _PortTaken(output)
                raise RuntimeError(f"sshd exited: {output[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()
