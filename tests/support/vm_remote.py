"""A second hypervisor for the guest tier: a "host" in a network namespace.

:func:`start_remote_host` makes a network namespace with its own loopback and
a veth link to the root namespace (10.251.N.1 here, 10.251.N.2 there), and
starts in it

* the distribution's sshd on 10.251.N.2:22, with a throwaway host key and a
  client key in authorized_keys, for one user, ``chhost``, and
* a session libvirtd as that user (uid and gid of ``nobody``; home inside the
  temporary folder), whose QEMU guests therefore bind their user-mode port
  forwards to the *namespace's* 127.0.0.1.

``chhost`` exists only inside: both daemons run in a private mount namespace
where a copy of /etc/passwd that names it is bind-mounted over the real one.
From the root namespace the host is reached only over SSH: the libvirt URI is
``qemu+libssh://chhost@10.251.N.2/session?keyfile=K&known_hosts=KH&...``
(libvirt runs ``virt-ssh-helper`` there, which finds the user's session
daemon), and the harness opens its tunnels and file commands over the same
address, checking the host key against the same known_hosts file. Nothing
outside the temporary folder is configured; :meth:`RemoteHost.stop` ends the
daemons by pid and deletes the namespace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.vm.connection import libvirt_module
from tests.support.sshd import find_sshd, keygen
from tests.support.vm_libvirtd import destroy_all

USER = "chhost"
UID = GID = 65534  # nobody's, so files it makes are nobody's in the root namespace
_SUBNET = "10.251"


class RemoteUnavailable(RuntimeError):
    """Raised when this machine cannot make the namespace host (reason in text)."""


@dataclass
class RemoteHost:
    root: Path
    namespace: str
    address: str
    uri: str
    known_hosts: Path
    client_key: Path
    home: Path
    sshd: subprocess.Popen[bytes]
    libvirtd: subprocess.Popen[bytes]
    _stopped: bool = field(default=False)

    @property
    def socket(self) -> Path:
        """The session daemon's socket (for the fixture's own checks only)."""
        return self.home / ".cache" / "libvirt" / "libvirt-sock"

    @property
    def local_uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket}"

    def workdir(self, name: str) -> Path:
        """A folder the remote daemon's QEMU can write."""
        path = self.root / name
        path.mkdir(exist_ok=True)
        os.chown(path, UID, GID)
        return path

    def qemu_pids(self) -> list[int]:
        pids = []
        for pidfile in (self.home / ".cache" / "libvirt" / "qemu" / "run").glob("*.pid"):
            if pidfile.name == "driver.pid":  # the QEMU driver's own lock: libvirtd
                continue
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pidfile.read_text().strip()))
        return pids

    def stop(self) -> None:
        """Destroy every domain, stop both daemons by pid, delete the namespace."""
        if self._stopped:
            return
        self._stopped = True
        destroy_all(self.local_uri)
        leftovers = self.qemu_pids()
        for process in (self.libvirtd, self.sshd):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.namespace], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _ip(*argv: str) -> None:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RemoteUnavailable(f"ip {' '.join(argv)}: {done.stderr.strip()}")


def check_can_run() -> None:
    if os.geteuid() != 0:
        raise RemoteUnavailable("network namespaces and a second sshd need root")
    for tool in ("ip", "unshare", "setpriv", "libvirtd", "virt-ssh-helper", "ssh-keygen"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise RemoteUnavailable(f"{tool} is not installed (see ci/apt-packages.txt)")
    if find_sshd() is None:
        raise RemoteUnavailable("sshd (openssh-server) is not installed")


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True,
                          check=False).stdout
    for _ in range(50):
        n = 1 + secrets.randbelow(250)
        if f"{_SUBNET}.{n}." not in used:
            return n
    raise RemoteUnavailable(f"no free {_SUBNET}.N.0/30 subnet")


def _in_namespace(namespace: str, passwd: Path, argv: list[str]) -> list[str]:
    """argv run in the network namespace, in a private mount namespace that
    sees ``passwd`` as /etc/passwd."""
    script = 'mount --bind "$0" /etc/passwd && exec "$@"'
    return ["ip", "netns", "exec", namespace, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", script, str(passwd), *argv]


def start_remote_host(*, timeout_s: float = 30.0) -> RemoteHost:
    """Make the namespace host and start its sshd and libvirtd."""
    check_can_run()
    root = Path(tempfile.mkdtemp(prefix="callout-harness-hv2-"))
    root.chmod(0o755)
    tag = secrets.token_hex(3)
    namespace = f"ch-hv2-{tag}"
    subnet = _free_subnet()
    here, there = f"{_SUBNET}.{subnet}.1", f"{_SUBNET}.{subnet}.2"
    started: list[subprocess.Popen[bytes]] = []
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", f"chv{tag}a", "type", "veth", "peer", "name", f"chv{tag}b")
        _ip("link", "set", f"chv{tag}b", "netns", namespace)
        _ip("addr", "add", f"{here}/30", "dev", f"chv{tag}a")
        _ip("link", "set", f"chv{tag}a", "up")
        _ip("-n", namespace, "addr", "add", f"{there}/30", "dev", f"chv{tag}b")
        _ip("-n", namespace, "link", "set", f"chv{tag}b", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")

        home = root / "home"
        home.mkdir()
        os.chown(home, UID, GID)
        passwd = root / "passwd"
        # first, so that uid 65534 is chhost (with this home) inside the namespace
        passwd.write_text(f"{USER}:x:{UID}:{GID}:callout-harness test hypervisor:{home}:/bin/sh\n"
                          + Path("/etc/passwd").read_text())
        passwd.chmod(0o644)

        host_key = keygen(root / "host_ed25519")
        client_key = keygen(root / "client_ed25519")
        authorized = root / "authorized_keys"
        authorized.write_text((root / "client_ed25519.pub").read_text())
        authorized.chmod(0o644)
        kind, blob = (root / "host_ed25519.pub").read_text().split()[:2]
        known_hosts = root / "known_hosts"
        known_hosts.write_text(f"{there} {kind} {blob}\n")
        config = root / "sshd_config"
        config.write_text("\n".join([
            "Port 22", f"ListenAddress {there}", f"HostKey {host_key}",
            f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
            f"AllowUsers {USER}", "PubkeyAuthentication yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "Subsystem sftp internal-sftp", "LogLevel VERBOSE", "",
        ]))
        sshd_binary = find_sshd()
        assert sshd_binary is not None
        check = subprocess.run([sshd_binary, "-t", "-f", str(config)], capture_output=True,
                               text=True, check=False)
        if "Missing privilege separation directory" in check.stderr:
            Path(check.stderr.split(":", 1)[1].strip()).mkdir(mode=0o755, parents=True,
                                                               exist_ok=True)
        with (root / "sshd.log").open("wb") as log:
            sshd = subprocess.Popen(
                _in_namespace(namespace, passwd, [sshd_binary, "-D", "-e", "-f", str(config)]),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        started.append(sshd)
        env = {"HOME": str(home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        with (root / "libvirtd.log").open("wb") as log:
            libvirtd = subprocess.Popen(
                _in_namespace(namespace, passwd, [
                    "setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--",
                    "env", "-i", *(f"{k}={v}" for k, v in env.items()), "libvirtd"]),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        started.append(libvirtd)
        uri = (f"qemu+libssh://{USER}@{there}/session?keyfile={client_key}"
               f"&known_hosts={known_hosts}&known_hosts_verify=normal&sshauth=privkey")
        host = RemoteHost(root=root, namespace=namespace, address=there, uri=uri,
                          known_hosts=known_hosts, client_key=client_key, home=home,
                          sshd=sshd, libvirtd=libvirtd)
        _wait_up(host, timeout_s)
        return host
    except BaseException:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
        subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        raise


def _wait_up(host: RemoteHost, timeout_s: float) -> None:
    libvirt = libvirt_module()
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        for name, process in (("sshd", host.sshd), ("libvirtd", host.libvirtd)):
            if process.poll() is not None:
                log = (host.root / f"{name}.log").read_text(errors="replace")[-600:]
                raise RemoteUnavailable(f"{name} in {host.namespace} exited: {log}")
        if host.socket.exists():
            try:
                libvirt.open(host.uri).close()  # over SSH, as the harness will
                return
            except libvirt.libvirtError as exc:
                last = exc.get_error_message() or str(exc)
        time.sleep(0.2)
    raise RemoteUnavailable(f"the namespace host did not answer over SSH in {timeout_s:.0f} s:"
                            f" {last}")
