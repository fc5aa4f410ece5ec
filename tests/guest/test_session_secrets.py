"""A whole guest session with a known secret: nothing it writes may contain it."""

from __future__ import annotations

import base64
import logging
import secrets
import shutil
from pathlib import Path

import pytest

from harness.errors import TargetError
from harness.guest.base import open_transport
from harness.guest.credentials import install_redaction, redact
from harness.guest.deploy import Deployment, render_scripts
from harness.guest.etw import convert_tracerpt
from harness.guest.manifest import load_manifest
from harness.guest.settings import parse_transport_settings
from tests.guest.conftest import DATA, USER
from tests.support.pe import write_pe
from tests.support.sshd import Sshd, find_sshd
from tests.support.wsman_server import WSManServer

REPO = Path(__file__).resolve().parents[2]
PROBE = "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"


def make_package(root: Path) -> Path:
    root.mkdir()
    shutil.copy(REPO / "drivers" / "probe" / "driver.toml", root)
    shutil.copy(REPO / "drivers" / "probe" / "probe.inf", root)
    write_pe(root / "build" / "x64" / "Release" / "probe.sys")
    (root / "build" / "x64" / "Release" / "probe.cat").write_bytes(b"catalog")
    (root / "build" / "probe-test.cer").write_bytes(b"certificate")
    return root / "driver.toml"


def test_no_log_report_or_trace_contains_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if find_sshd() is None:
        pytest.skip("sshd (Debian package openssh-server) is not installed")
    secret = "S3cr3t-" + secrets.token_hex(6)
    monkeypatch.setenv("LAB_PASSWORD", secret)
    monkeypatch.setenv("LAB_KEY_PASSPHRASE", secret)
    out = tmp_path / "out"
    out.mkdir()
    install_redaction()
    handler = logging.FileHandler(out / "debug.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    guest_root = tmp_path / "guest"
    guest_root.mkdir()
    server = WSManServer(guest_root, username=USER, password=secret).start()
    daemon = Sshd(tmp_path / "sshd", client_passphrase=secret).start()
    try:
        manifest = load_manifest(make_package(tmp_path / "probe"))
        winrm = open_transport(parse_transport_settings(
            {"scheme": "winrm", "host": "127.0.0.1", "port": server.port, "https": False,
             "auth": "basic", "insecure_http": True, "username": USER,
             "password_env": "LAB_PASSWORD", "operation_timeout_s": 2, "read_timeout_s": 5},
            source="lab.toml",
        ))
        try:
            assert winrm.run("echo hello").stdout == "hello\n"
            assert winrm.run_powershell("Write-Output 'from powershell'\n").ok
            try:
                winrm.run("echo 'access denied' >&2; exit 5").check("a failing step")
            except TargetError as exc:
                logging.getLogger("harness.test").error("step failed: %s", exc)
            Deployment(winrm, manifest).upload()
        finally:
            winrm.close()

        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(daemon.host_key_line())
        ssh = open_transport(parse_transport_settings(
            {"scheme": "ssh", "host": "127.0.0.1", "port": daemon.port, "username": daemon.user,
             "key_file": str(daemon.client_key), "key_passphrase_env": "LAB_KEY_PASSPHRASE",
             "known_hosts": str(known_hosts), "guest_shell": "posix"},
            source="lab.toml",
        ))
        try:
            assert ssh.run("echo over ssh").stdout == "over ssh\n"
            ssh.put_file(manifest.sys, str(tmp_path / "ssh-guest" / "probe.sys"))
        finally:
            ssh.close()

        scripts = out / "scripts"
        scripts.mkdir()
        for name, script in render_scripts(manifest).items():
            (scripts / f"{name}.ps1").write_text(script)
        convert_tracerpt(DATA / "tracerpt_probe.xml", out / "trace.jsonl", provider=PROBE,
                         target="winrm://127.0.0.1", driver=manifest.name)

        # what a careless caller might do; redaction must still hold
        careless = logging.getLogger("harness.careless")
        careless.warning("connecting with password %s", secret)
        try:
            raise RuntimeError(f"login failed for {secret}")
        except RuntimeError:
            careless.exception("oops")
        (out / "report.txt").write_text(redact(f"guest 127.0.0.1: the password was {secret}\n"))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        daemon.stop()
        server.stop()

    needles = {
        "the secret": secret.encode(),
        "Basic auth header": base64.b64encode(f"{USER}:{secret}".encode()),
        "UTF-16 secret": secret.encode("utf-16-le"),
    }
    written = [path for path in out.rglob("*") if path.is_file()]
    assert len(written) >= 10
    for path in written:
        data = path.read_bytes()
        for what, needle in needles.items():
            assert needle not in data, f"{what} found in {path.relative_to(out)}"
    debug = (out / "debug.log").read_text()
    # the log really is a DEBUG log of the session, and the careless lines were masked
    assert "harness.guest.winrm DEBUG" in debug and "paramiko" in debug and "urllib3" in debug
    assert "connecting with password ********" in debug
    assert "RuntimeError: login failed for ********" in debug
