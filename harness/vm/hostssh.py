"""SSH to a remote hypervisor: tunnels to a guest's forwards, and what libvirt cannot do.

A slot on ``qemu+ssh://ci@hv2/system`` (or ``qemu+libssh://``,
``qemu+libssh2://``) runs its guest on hv2, and QEMU's user-mode port
forwards listen on *hv2's* 127.0.0.1, out of the controller's reach. The
controller therefore opens one SSH connection per slot to the hypervisor
(paramiko) and, for each forward, a :class:`Tunnel`: a listener on the
controller's 127.0.0.1 whose connections become ``direct-tcpip`` channels to
hv2's 127.0.0.1:PORT. The WinRM and SSH transports are simply given the
tunnel's local port. The same connection runs the few file commands the
storage pool API has no call for (rename, chmod: see :mod:`harness.vm.storage`).

The hypervisor's host key is checked against known_hosts, as for guests: the
URI's ``known_hosts=`` file if it names one (libvirt's own parameter for the
libssh transports), else ``~/.ssh/known_hosts``. An unknown or changed key is
refused, never learned. The key file is the URI's ``keyfile=``, else the
agent and the default keys.

paramiko is imported when a connection is opened, not by the core.
"""

from __future__ import annotations

import contextlib
import select
import shlex
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from harness.errors import VmError

SSH_TRANSPORTS = ("ssh", "libssh", "libssh2")
CONNECT_TIMEOUT_S = 20.0
COMMAND_TIMEOUT_S = 300.0
_CHUNK = 65536


@dataclass(frozen=True)
class HypervisorAddress:
    """Where and as whom to reach a hypervisor over SSH, from its libvirt URI."""

    host: str
    port: int
    user: str | None
    keyfile: Path | None
    known_hosts: Path | None

    @property
    def description(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"


def hypervisor_address(uri: str) -> HypervisorAddress | None:
    """The SSH address of ``uri``'s hypervisor, None for a local URI."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    if transport not in SSH_TRANSPORTS or not parts.hostname:
        return None
    query = parse_qs(parts.query)

    def path(name: str) -> Path | None:
        values = query.get(name)
        return Path(values[0]).expanduser() if values else None

    return HypervisorAddress(host=parts.hostname, port=parts.port or 22, user=parts.username,
                             keyfile=path("keyfile"), known_hosts=path("known_hosts"))


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError as exc:
        raise VmError("remote hypervisors need paramiko, which is not installed:"
                      " pip install 'callout-harness[vm]'") from exc
    return paramiko


class HypervisorSsh:
    """One SSH connection to a hypervisor: a HostShell (``run``, ``fetch``)
    and the slot's tunnels. Connects on first use; ``close()`` ends both."""

    def __init__(self, address: HypervisorAddress) -> None:
        self.address = address
        self._client: Any = None
        self._lock = threading.Lock()
        self._tunnels: list[Tunnel] = []

    @property
    def description(self) -> str:
        return self.address.description

    @property
    def known_hosts(self) -> Path:
        return self.address.known_hosts or Path("~/.ssh/known_hosts").expanduser()

    def _connect(self) -> Any:
        pm = _paramiko()
        client = pm.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(pm.RejectPolicy())
        address = self.address
        own_key = address.keyfile is not None
        try:
            client.connect(
                address.host, port=address.port, username=address.user,
                key_filename=str(address.keyfile) if own_key else None,
                look_for_keys=not own_key, allow_agent=not own_key,
                timeout=CONNECT_TIMEOUT_S, banner_timeout=CONNECT_TIMEOUT_S,
                auth_timeout=CONNECT_TIMEOUT_S,
            )
        except pm.BadHostKeyException as exc:
            client.close()
            raise VmError(f"hypervisor {self.description}: host key CHANGED (not the one in"
                          f" {self.known_hosts}); refused") from exc
        except pm.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise VmError(f"hypervisor {self.description}: unknown host key (not in"
                              f" {self.known_hosts}); add it with ssh-keyscan after checking"
                              " its fingerprint") from exc
            raise VmError(f"hypervisor {self.description}: {exc}") from exc
        except OSError as exc:
            client.close()
            raise VmError(f"hypervisor {self.description}: cannot connect: {exc}") from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(10)
        return client

    def client(self) -> Any:
        """The connected paramiko SSHClient (reconnects if it dropped)."""
        with self._lock:
            transport = self._client.get_transport() if self._client is not None else None
            if transport is None or not transport.is_active():
                if self._client is not None:
                    self._client.close()
                self._client = self._connect()
            return self._client

    # -- HostShell -------------------------------------------------------------
    def run(self, argv: Sequence[str], *, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        """Run ``argv`` on the hypervisor; return stdout; raise VmError on failure."""
        command = " ".join(shlex.quote(a) for a in argv)
        out, err, code = self._exec(command, timeout_s)
        if code != 0:
            detail = (err or out).decode(errors="replace").strip().splitlines()
            raise VmError(f"{argv[0]} on {self.description}: exit {code}:"
                          f" {detail[-1] if detail else ''}")
        return out.decode(errors="replace")

    def _exec(self, command: str, timeout_s: float) -> tuple[bytes, bytes, int]:
        pm = _paramiko()
        try:
            _stdin, stdout, stderr = self.client().exec_command(command, timeout=timeout_s)
            out = stdout.read()
            err = stderr.read()
            return out, err, stdout.channel.recv_exit_status()
        except (pm.SSHException, OSError, TimeoutError) as exc:
            raise VmError(f"{command.split()[0]} on {self.description}: {exc}") from exc

    def fetch(self, remote: Path, local: Path) -> None:
        """Copy a file from the hypervisor (``cat`` over the connection)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        out, err, code = self._exec(f"cat -- {shlex.quote(str(remote))}", COMMAND_TIMEOUT_S)
        if code != 0:
            raise VmError(f"copying {remote} from {self.description}:"
                          f" {err.decode(errors='replace').strip()}")
        local.write_bytes(out)

    # -- tunnels ---------------------------------------------------------------
    def open_tunnel(self, remote_port: int, remote_host: str = "127.0.0.1") -> Tunnel:
        """A listener on this machine's 127.0.0.1 that reaches
        ``remote_host:remote_port`` as seen from the hypervisor."""
        self.client()  # fail now, with the host-key message, rather than per connection
        tunnel = Tunnel(self, remote_host, remote_port)
        self._tunnels.append(tunnel)
        return tunnel

    @property
    def tunnels(self) -> list[Tunnel]:
        return [t for t in self._tunnels if not t.closed]

    def close(self) -> None:
        for tunnel in self._tunnels:
            tunnel.close()
        self._tunnels.clear()
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class Tunnel:
    """127.0.0.1:``local_port`` here -> ``remote_host:remote_port`` on the hypervisor."""

    def __init__(self, ssh: HypervisorSsh, remote_host: str, remote_port: int) -> None:
        self.ssh = ssh
        self.remote_host = remote_host
        self.remote_port = remote_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.local_port: int = self._listener.getsockname()[1]
        self.closed = False
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"tunnel-{self.local_port}-{remote_port}")
        self._thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True,
                             name=f"tunnel-{self.local_port}-conn").start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        with self._guard:
            self._open.add(conn)
        channel = None
        try:
            transport = self.ssh.client().get_transport()
            if transport is None:
                return
            channel = transport.open_channel(
                "direct-tcpip", (self.remote_host, self.remote_port), peer,
                timeout=CONNECT_TIMEOUT_S)
            _pump(conn, channel, lambda: self.closed)
        except Exception:
            pass  # nothing listens there yet, or the tunnel closed: the client sees EOF
        finally:
            if channel is not None:
                channel.close()
            with contextlib.suppress(OSError):
                conn.close()
            with self._guard:
                self._open.discard(conn)

    def close(self) -> None:
        """Stop listening and end every connection through the tunnel."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._guard:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _pump(conn: socket.socket, channel: Any, stop: Any) -> None:
    """Copy bytes both ways until either side closes."""
    while not stop():
        readable, _, _ = select.select([conn, channel], [], [], 1.0)
        if conn in readable:
            data = conn.recv(_CHUNK)
            if not data:
                return
            channel.sendall(data)
        if channel in readable:
            data = channel.recv(_CHUNK)
            if not data:
                return
            conn.sendall(data)
