"""The guest preparation kit (fixtures/windows): scripts parse, settings are the ones the
harness relies on, and the certificate the kit makes validates where the harness connects."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.errors import TransportError
from harness.guest.credentials import Credentials, Secret
from harness.guest.settings import WinRMSettings
from harness.guest.winrm import WinRMTransport
from tests.guest.conftest import USER, syntax_errors
from tests.support.wsman_server import WSManServer

KIT = Path(__file__).resolve().parents[2] / "fixtures" / "windows"
UNATTEND = "{urn:schemas-microsoft-com:unattend}"


@pytest.mark.parametrize("script", sorted(p.name for p in KIT.glob("*.ps1")))
def test_every_kit_script_parses(script: str, ps_parser: Any) -> None:
    assert syntax_errors(ps_parser, (KIT / script).read_text(encoding="utf-8")) == []


def test_first_boot_sets_what_the_harness_needs() -> None:
    text = (KIT / "first-boot.ps1").read_text(encoding="utf-8")
    for needle in (
        "New-Item -Path 'WSMan:\\localhost\\Listener' -Transport HTTPS",
        "Set-Item -Path 'WSMan:\\localhost\\Service\\AllowUnencrypted' -Value $false",
        "Add-WindowsCapability -Online -Name $capability.Name",
        "& 'bcdedit.exe' '/set' 'testsigning' 'on'",
        "-Name 'CrashDumpEnabled' -Type DWord -Value 1",
        "-Name 'AlwaysKeepMemoryDump' -Type DWord -Value 1",
        "'C:\\callout-harness\\agent'",
        "Set-Service -Name 'Schedule' -StartupType Automatic",
    ):
        assert needle in text, needle


def test_autounattend_runs_first_boot_with_its_parameters() -> None:
    root = ET.parse(KIT / "autounattend.xml").getroot()
    passes = [s.get("pass") for s in root.iter(f"{UNATTEND}settings")]
    assert passes == ["windowsPE", "specialize", "oobeSystem"]
    command = next(root.iter(f"{UNATTEND}CommandLine")).text or ""
    assert "first-boot.ps1" in command
    used = set(re.findall(r" -(\w+) ", command + " "))
    declared = set(re.findall(r"\[(?:string|switch)\]\$(\w+)",
                              (KIT / "first-boot.ps1").read_text(encoding="utf-8")))
    assert used - {"NoProfile", "ExecutionPolicy", "File"} <= declared
    # placeholders only: no real password is ever committed
    values = [v.text for v in root.iter(f"{UNATTEND}Value")]
    assert values and set(values) <= {"CHANGE-ME", "/IMAGE/NAME", "Windows 11 Pro"} | {None}


@pytest.fixture
def kit_cert(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    out = tmp_path / "kit"
    subprocess.run(["bash", str(KIT / "make-winrm-cert.sh"), str(out), "192.168.150.10",
                    "harness-win11"], check=True, capture_output=True)
    return out


def test_the_kits_certificate_validates_at_the_address_the_profile_uses(
        kit_cert: Path, tmp_path: Path, password: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(kit_cert / "winrm-server.pem", kit_cert / "winrm-server.key")
    root = tmp_path / "guest"
    root.mkdir()
    server = WSManServer(root, username=USER, password=password, tls=ctx).start()
    try:
        for host in ("127.0.0.1", "localhost"):
            settings = WinRMSettings(host=host, port=server.port, auth="basic",
                                     ca_bundle=kit_cert / "winrm-ca.pem",
                                     operation_timeout_s=2, read_timeout_s=5)
            with WinRMTransport(settings, Credentials(USER, Secret(password))) as transport:
                assert transport.run("echo hello").stdout == "hello\n"
        # an address the certificate does not name is refused before anything is sent
        import socket

        other = socket.gethostbyname(socket.gethostname())
        if other.startswith("127."):
            other = "127.0.0.2"
        settings = WinRMSettings(host=other, port=server.port, auth="basic",
                                 ca_bundle=kit_cert / "winrm-ca.pem", retry_backoff_s=0.01,
                                 operation_timeout_s=2, read_timeout_s=5)
        with pytest.raises(TransportError):
            WinRMTransport(settings, Credentials(USER, Secret(password))).run("true")
        assert server.stats.shells_created == 2
    finally:
        server.stop()
    san = subprocess.run(["openssl", "x509", "-in", str(kit_cert / "winrm-server.pem"),
                          "-noout", "-ext", "subjectAltName"], capture_output=True, text=True,
                         check=True).stdout
    assert "IP Address:127.0.0.1" in san and "IP Address:192.168.150.10" in san
    assert "DNS:harness-win11" in san
    assert (kit_cert / "winrm-server.pfx").stat().st_size > 0
