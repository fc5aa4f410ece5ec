"""The WinRM transport against a loopback WS-Management endpoint (real pywinrm stack)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import AuthError, CommandTimeout, ProfileError, TransportError
from harness.guest import powershell
from harness.guest.base import Transport
from harness.guest.credentials import Credentials, Secret
from harness.guest.settings import WinRMSettings, parse_transport_settings
from harness.guest.winrm import WinRMTransport
from tests.guest.conftest import USER, http_settings
from tests.support.pki import make_server_cert
from tests.support.sshd import free_port
from tests.support.wsman_server import WSManServer


def test_one_shell_serves_every_command(winrm: WinRMTransport, wsman: WSManServer) -> None:
    for word in ("one", "two", "three"):
        assert winrm.run(f"echo {word}").stdout == f"{word}\n"
    assert wsman.stats.shells_created == 1
    assert {shell for shell, _ in wsman.stats.commands} == {winrm.shell_id}
    assert isinstance(winrm, Transport)
    winrm.close()
    assert wsman.stats.shells_deleted == 1


def test_exit_codes_and_streams_come_back_apart(winrm: WinRMTransport) -> None:
    result = winrm.run("echo out; echo err >&2; exit 7")
    assert (result.rc, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert not result.ok
    assert winrm.run("true").ok


def test_output_streams_while_the_command_runs(winrm: WinRMTransport) -> None:
    arrivals: list[tuple[float, str, str]] = []
    start = time.monotonic()
    result = winrm.run(
        "echo first; sleep 0.8; echo second",
        on_output=lambda stream, text: arrivals.append((time.monotonic() - start, stream, text)),
    )
    finished = time.monotonic() - start
    assert result.stdout == "first\nsecond\n"
    assert arrivals[0][1:] == ("stdout", "first\n")
    # the first line was delivered well before the command ended
    assert arrivals[0][0] < finished - 0.5


def test_encoded_powershell_reaches_the_guest_intact(
    winrm: WinRMTransport, wsman: WSManServer,
) -> None:
    text = "Grüße, 'quoted' $notavariable `backtick \u2018curly\u2019 雪"
    script = f"Write-Output {powershell.quote(text)}\n"
    result = winrm.run_powershell(script)
    assert result.stdout == text + "\n"
    assert wsman.stats.scripts[-1] == script
    assert wsman.stats.commands[-1][1].startswith("powershell.exe -NoProfile -NonInteractive")


def test_command_timeout_ends_the_command_not_the_shell(winrm: WinRMTransport) -> None:
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"within 1\.0s"):
        winrm.run("sleep 10", timeout_s=1.0)
    assert time.monotonic() - start < 4
    assert winrm.run("echo still here").stdout == "still here\n"


def test_a_lost_shell_is_replaced_transparently(winrm: WinRMTransport, wsman: WSManServer) -> None:
    winrm.run("true")
    wsman.forget_shells()  # what a guest reboot does to WinRM shells
    assert winrm.run("echo again").stdout == "again\n"
    assert wsman.stats.shells_created == 2


def test_upload_in_chunks_verified_by_sha256(
    winrm: WinRMTransport, wsman: WSManServer, tmp_path: Path,
) -> None:
    payload = os.urandom(20_000)
    local = tmp_path / "probe.sys"
    local.write_bytes(payload)
    progress: list[tuple[int, int]] = []
    digest = winrm.put_file(local, "C:\\callout harness\\it's\\probe.sys",
                            on_progress=lambda done, total: progress.append((done, total)))
    landed = wsman.root / "C" / "callout harness" / "it's" / "probe.sys"
    assert landed.read_bytes() == payload
    import hashlib

    assert digest == hashlib.sha256(payload).hexdigest()
    assert len(progress) > 1 and progress[-1] == (len(payload), len(payload))
    assert all(len(line) <= powershell.MAX_COMMAND_LINE for _, line in wsman.stats.commands)


def test_a_corrupted_upload_is_detected(
    winrm: WinRMTransport, wsman: WSManServer, tmp_path: Path,
) -> None:
    local = tmp_path / "probe.sys"
    local.write_bytes(b"MZ" + bytes(5000))
    wsman.corrupt_writes = True
    with pytest.raises(TransportError, match="SHA-256 mismatch after transfer"):
        winrm.put_file(local, "C:\\d\\probe.sys")


def test_download_round_trip(winrm: WinRMTransport, wsman: WSManServer, tmp_path: Path) -> None:
    (wsman.root / "C" / "t").mkdir(parents=True)
    (wsman.root / "C" / "t" / "x.xml").write_bytes(b"<Events/>\n" * 100)
    target = tmp_path / "x.xml"
    winrm.get_file("C:\\t\\x.xml", target)
    assert target.read_bytes() == b"<Events/>\n" * 100


def test_a_large_download_comes_in_range_reads(
    winrm: WinRMTransport, wsman: WSManServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harness.guest.winrm as winrm_module

    monkeypatch.setattr(winrm_module, "DOWNLOAD_CHUNK", 1000)
    payload = bytes(range(256)) * 20  # 5120 bytes: six reads of at most 1000
    (wsman.root / "C" / "t").mkdir(parents=True)
    (wsman.root / "C" / "t" / "trace.etl.gz").write_bytes(payload)
    progress: list[tuple[int, int]] = []
    target = tmp_path / "trace.etl.gz"
    winrm.get_file("C:\\t\\trace.etl.gz", target, on_progress=lambda d, t: progress.append((d, t)))
    assert target.read_bytes() == payload
    assert sum("OpenRead(" in script for script in wsman.stats.scripts) == 6
    assert progress[-1] == (5120, 5120) and len(progress) == 6
    assert not list(tmp_path.glob(".*.partial"))


def test_an_empty_file_uploads(winrm: WinRMTransport, wsman: WSManServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.cer"
    empty.write_bytes(b"")
    winrm.put_file(empty, "C:\\d\\empty.cer")
    assert (wsman.root / "C" / "d" / "empty.cer").read_bytes() == b""


def test_wrong_password_is_an_auth_error(wsman: WSManServer) -> None:
    transport = WinRMTransport(http_settings(wsman), Credentials(USER, Secret("wrong-one")))
    with pytest.raises(AuthError, match="credentials refused"):
        transport.run("true")
    assert wsman.stats.commands == []


def test_plain_http_with_basic_is_refused_without_the_insecure_flag(wsman: WSManServer) -> None:
    settings = http_settings(wsman, insecure_http=False)
    with pytest.raises(TransportError, match="insecure_http"):
        WinRMTransport(settings, Credentials(USER, Secret("whatever")))
    with pytest.raises(ProfileError, match=r"transport\.https: expected true"):
        parse_transport_settings(
            {"scheme": "winrm", "host": "127.0.0.1", "https": False, "auth": "basic"},
            source="win11.toml",
        )
    assert wsman.stats.shells_created == 0


@pytest.fixture
def tls_server(tmp_path: Path, password: str) -> Any:
    pki = make_server_cert(tmp_path / "pki")
    root = tmp_path / "tls-guest"
    root.mkdir()
    server = WSManServer(root, username=USER, password=password,
                         tls=pki.server_context()).start()
    yield server, pki
    server.stop()


def test_https_validates_against_the_profile_ca(tls_server: Any, password: str) -> None:
    server, pki = tls_server
    settings = WinRMSettings(host="127.0.0.1", port=server.port, auth="basic",
                             ca_bundle=pki.ca_pem, operation_timeout_s=2, read_timeout_s=5)
    with WinRMTransport(settings, Credentials(USER, Secret(password))) as transport:
        assert transport.run("echo over tls").stdout == "over tls\n"


def test_https_with_a_wrong_ca_fails_before_anything_is_sent(
    tls_server: Any, password: str, tmp_path: Path,
) -> None:
    server, _ = tls_server
    other = make_server_cert(tmp_path / "other-pki", ca_name="some other CA")
    settings = WinRMSettings(host="127.0.0.1", port=server.port, auth="basic",
                             ca_bundle=other.ca_pem, retry_backoff_s=0.01)
    transport = WinRMTransport(settings, Credentials(USER, Secret(password)))
    with pytest.raises(TransportError, match="TLS handshake failed"):
        transport.run("true")
    assert server.stats.shells_created == 0 and server.stats.auth_failures == 0


class SlammingListener:
    """Accepts TCP connections and closes them at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_connection_errors_are_retried_a_bounded_number_of_times() -> None:
    listener = SlammingListener()
    try:
        settings = WinRMSettings(host="127.0.0.1", port=listener.port, https=False,
                                 auth="basic", insecure_http=True, connect_retries=2,
                                 retry_backoff_s=0.01)
        transport = WinRMTransport(settings, Credentials(USER, Secret("pw-x")))
        with pytest.raises(TransportError, match=r"after 3 attempt\(s\)"):
            transport.run("true")
        assert listener.accepted == 3
    finally:
        listener.close()


def test_a_guest_that_is_down_fails_after_the_retries() -> None:
    settings = WinRMSettings(host="127.0.0.1", port=free_port(), https=False, auth="basic",
                             insecure_http=True, connect_retries=3, retry_backoff_s=0.05)
    transport = WinRMTransport(settings, Credentials(USER, Secret("pw-x")))
    delays: list[float] = []
    transport.sleep = delays.append
    with pytest.raises(TransportError, match="connection failed during open shell after 4"):
        transport.run("true")
    assert delays == [0.05, 0.1, 0.2]  # exponential backoff between the four attempts


def test_a_failing_command_is_never_retried(
    winrm: WinRMTransport, wsman: WSManServer,
) -> None:
    result = winrm.run("echo ran >> runs.txt; exit 9")
    assert result.rc == 9
    assert (wsman.root / "runs.txt").read_text() == "ran\n"
    assert len(wsman.stats.commands) == 1


def test_reconnect_waits_for_the_endpoint_to_come_back(
    wsman: WSManServer, password: str,
) -> None:
    transport = WinRMTransport(http_settings(wsman), Credentials(USER, Secret(password)))
    transport.run("true")
    port = wsman.port
    wsman.stop()
    restarter = threading.Timer(0.8, lambda: wsman.start(port))
    restarter.start()
    try:
        transport.reconnect(timeout_s=10)
        assert transport.run("echo back").stdout == "back\n"
    finally:
        restarter.join()
        transport.close()


def test_a_missing_ca_bundle_is_a_transport_error(tls_server: Any, password: str,
                                                   tmp_path: Path) -> None:
    server, _ = tls_server
    settings = WinRMSettings(host="127.0.0.1", port=server.port, auth="basic",
                             ca_bundle=tmp_path / "no-such-ca.pem")
    with pytest.raises(TransportError, match="open shell failed"):
        WinRMTransport(settings, Credentials(USER, Secret(password))).run("true")
