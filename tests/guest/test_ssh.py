"""The SSH transport against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import AuthError, CommandTimeout, TransportError
from harness.guest.credentials import Secret
from harness.guest.settings import SSHSettings
from harness.guest.ssh import SSHTransport
from tests.support.sshd import Sshd


def settings_for(daemon: Sshd, known_hosts: Path, **overrides: Any) -> SSHSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": daemon.port, "key_file": daemon.client_key,
        "known_hosts": known_hosts, "guest_shell": "posix", "retry_backoff_s": 0.05,
        "connect_timeout_s": 5.0,
    }
    values.update(overrides)
    return SSHSettings(**values)


@pytest.fixture
def known_hosts(sshd: Sshd, tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(sshd.host_key_line())
    return path


@pytest.fixture
def ssh(sshd: Sshd, known_hosts: Path) -> Any:
    transport = SSHTransport(settings_for(sshd, known_hosts), sshd.user)
    yield transport
    transport.close()


def test_exec_returns_exit_status_and_both_streams(ssh: SSHTransport) -> None:
    result = ssh.run("echo out; echo err >&2; exit 5")
    assert (result.rc, result.stdout, result.stderr) == (5, "out\n", "err\n")
    assert ssh.run("true").ok


def test_exec_streams_output(ssh: SSHTransport) -> None:
    ssh.run("true")  # connected before the clock starts
    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    ssh.run("echo early; sleep 0.8; echo late",
            on_output=lambda stream, text: seen.append((time.monotonic() - start, text)))
    finished = time.monotonic() - start
    assert seen[0][1] == "early\n"
    # delivered while the command was still sleeping
    assert seen[0][0] < finished - 0.5


def test_exec_timeout(ssh: SSHTransport) -> None:
    with pytest.raises(CommandTimeout):
        ssh.run("sleep 10", timeout_s=0.5)
    assert ssh.run("echo ok").stdout == "ok\n"


def test_sftp_put_and_get_are_verified(ssh: SSHTransport, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    local = tmp_path / "probe.sys"
    local.write_bytes(payload)
    remote = tmp_path / "guest" / "drivers" / "probe.sys"
    progress: list[int] = []
    digest = ssh.put_file(local, str(remote), on_progress=lambda done, total: progress.append(done))
    assert digest == hashlib.sha256(payload).hexdigest()
    assert remote.read_bytes() == payload
    assert progress[-1] == len(payload)
    back = tmp_path / "back.sys"
    assert ssh.get_file(str(remote), back) == digest
    assert back.read_bytes() == payload


def test_unknown_host_key_is_refused_by_default(sshd: Sshd, tmp_path: Path) -> None:
    known_hosts = tmp_path / "empty_known_hosts"
    transport = SSHTransport(settings_for(sshd, known_hosts), sshd.user)
    with pytest.raises(TransportError, match="unknown host key"):
        transport.run("true")
    assert not known_hosts.exists()


def test_unknown_host_key_is_accepted_and_recorded_with_the_flag(
    sshd: Sshd, tmp_path: Path,
) -> None:
    known_hosts = tmp_path / "kh" / "known_hosts"
    with SSHTransport(settings_for(sshd, known_hosts, accept_new_host_key=True),
                      sshd.user) as transport:
        assert transport.run("echo hi").stdout == "hi\n"
    assert known_hosts.read_text().split()[1:] == sshd.host_key_line().split()[1:]
    # recorded: a strict client now trusts it
    with SSHTransport(settings_for(sshd, known_hosts), sshd.user) as strict:
        assert strict.run("true").ok


def test_a_changed_host_key_is_refused_even_with_the_flag(sshd: Sshd, tmp_path: Path) -> None:
    from tests.support.sshd import keygen

    impostor = keygen(tmp_path / "impostor")
    kind, blob = Path(f"{impostor}.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    transport = SSHTransport(settings_for(sshd, known_hosts, accept_new_host_key=True), sshd.user)
    with pytest.raises(TransportError, match="CHANGED"):
        transport.run("true")


def test_reconnect_after_sshd_restart(ssh: SSHTransport, sshd: Sshd) -> None:
    assert ssh.run("echo before").ok
    restart = threading.Thread(target=sshd.restart, kwargs={"down_s": 1.0})
    restart.start()
    time.sleep(0.2)
    try:
        ssh.reconnect(timeout_s=15)
    finally:
        restart.join()
    assert ssh.run("echo after").stdout == "after\n"


def test_reconnect_gives_up_after_its_timeout(ssh: SSHTransport, sshd: Sshd) -> None:
    sshd.stop()
    start = time.monotonic()
    with pytest.raises(TransportError, match=r"gave up after 1\.5s"):
        ssh.reconnect(timeout_s=1.5)
    assert time.monotonic() - start < 5


def test_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    from tests.support.sshd import find_sshd

    if find_sshd() is None:
        pytest.skip("sshd (Debian package openssh-server) is not installed")
    daemon = Sshd(tmp_path / "enc", client_passphrase="correct horse").start()
    try:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(daemon.host_key_line())
        settings = settings_for(daemon, known_hosts)
        with pytest.raises(AuthError, match="wrong passphrase"):
            SSHTransport(settings, daemon.user, key_passphrase=Secret("wrong")).run("true")
        with pytest.raises(AuthError, match="no passphrase"):
            SSHTransport(settings, daemon.user).run("true")
        with SSHTransport(settings, daemon.user,
                          key_passphrase=Secret("correct horse")) as transport:
            assert transport.run("echo unlocked").stdout == "unlocked\n"
    finally:
        daemon.stop()


def test_windows_paths_are_spelled_for_sftp(sshd: Sshd, known_hosts: Path) -> None:
    transport = SSHTransport(settings_for(sshd, known_hosts, guest_shell="windows"), sshd.user)
    assert transport.sftp_path("C:\\callout-harness\\driver\\probe.sys") == (
        "/C:/callout-harness/driver/probe.sys"
    )


def test_the_key_path_can_come_from_the_environment(
    sshd: Sshd, known_hosts: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.guest.base import open_transport

    monkeypatch.setenv("CALLOUT_HARNESS_SSH_KEY", str(sshd.client_key))
    monkeypatch.setenv("CALLOUT_HARNESS_SSH_USER", sshd.user)
    settings = settings_for(sshd, known_hosts, key_file=None,
                            key_file_env="CALLOUT_HARNESS_SSH_KEY",
                            username_env="CALLOUT_HARNESS_SSH_USER")
    transport = open_transport(settings)
    try:
        assert transport.run("echo keyed").stdout == "keyed\n"
    finally:
        transport.close()
    monkeypatch.delenv("CALLOUT_HARNESS_SSH_KEY")
    with pytest.raises(AuthError, match="CALLOUT_HARNESS_SSH_KEY"):
        open_transport(settings)
