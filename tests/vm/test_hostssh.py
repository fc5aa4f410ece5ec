"""SSH to a hypervisor, against a real sshd on loopback: URIs to addresses,
commands, tunnels that carry bytes both ways and stop at close, host keys."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import VmError
from harness.vm.hostssh import HypervisorAddress, HypervisorSsh, hypervisor_address
from tests.support.sshd import Sshd, find_sshd

pytestmark = pytest.mark.skipif(find_sshd() is None, reason="sshd (openssh-server) is missing")


def test_uris_name_the_hypervisor_and_its_ssh_settings() -> None:
    assert hypervisor_address("qemu:///system") is None
    assert hypervisor_address("qemu+unix:///session?socket=/s") is None
    assert hypervisor_address("qemu+ssh://ci@hv2/system") == HypervisorAddress(
        "hv2", 22, "ci", None, None)
    assert hypervisor_address(
        "qemu+libssh2://hv3:2200/system?keyfile=/k/id&known_hosts=/k/kh"
    ) == HypervisorAddress("hv3", 2200, None, Path("/k/id"), Path("/k/kh"))


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    daemon = Sshd(tmp_path_factory.mktemp("sshd")).start()
    yield daemon
    daemon.stop()


@pytest.fixture
def address(sshd: Sshd, tmp_path: Path) -> HypervisorAddress:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.host_key_line())
    return HypervisorAddress("127.0.0.1", sshd.port, sshd.user, sshd.client_key, known)


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP server on loopback that answers 'echo:' + what it got, per connection."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(1024)
                conn.sendall(b"echo:" + data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def _ask(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        sock.settimeout(10)
        return sock.recv(1024)


def test_commands_and_files_run_over_the_connection(address: HypervisorAddress,
                                                    tmp_path: Path) -> None:
    ssh = HypervisorSsh(address)
    try:
        assert ssh.run(["echo", "a b", "c"]) == "a b c\n"
        source = tmp_path / "remote.bin"
        source.write_bytes(bytes(range(256)) * 64)
        ssh.fetch(source, tmp_path / "copy.bin")
        assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
        with pytest.raises(VmError, match="exit 3"):
            ssh.run(["sh", "-c", "echo no >&2; exit 3"])
    finally:
        ssh.close()


def test_a_tunnel_reaches_a_port_on_the_hypervisor_and_closes_with_the_slot(
    address: HypervisorAddress, echo_server: int
) -> None:
    ssh = HypervisorSsh(address)
    tunnel = ssh.open_tunnel(echo_server)
    try:
        assert tunnel.local_port != echo_server
        assert _ask(tunnel.local_port, b"one") == b"echo:one"
        assert _ask(tunnel.local_port, b"two") == b"echo:two"
        assert ssh.tunnels == [tunnel]
    finally:
        ssh.close()  # what releasing the slot does
    assert tunnel.closed and ssh.tunnels == []
    with pytest.raises(OSError):
        _ask(tunnel.local_port, b"three")


def test_a_tunnel_to_a_closed_port_gives_the_client_an_end_of_file(
    address: HypervisorAddress,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused = probe.getsockname()[1]
    ssh = HypervisorSsh(address)
    try:
        tunnel = ssh.open_tunnel(unused)
        # as for a guest not yet booted: the connection ends without an answer
        try:
            answer = _ask(tunnel.local_port, b"anyone?")
        except ConnectionResetError:
            answer = b""
        assert answer == b""
    finally:
        ssh.close()


def test_unknown_and_changed_host_keys_are_refused(address: HypervisorAddress,
                                                   sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.write_text("")
    with pytest.raises(VmError, match=r"unknown host key \(not in .*none\)"):
        HypervisorSsh(replace(address, known_hosts=empty)).run(["true"])
    assert empty.read_text() == ""  # never learned
    other = tmp_path / "other"
    kind, blob = sshd.client_key.with_suffix(".pub").read_text().split()[:2]
    other.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    with pytest.raises(VmError, match="host key CHANGED"):
        HypervisorSsh(replace(address, known_hosts=other)).open_tunnel(22)
