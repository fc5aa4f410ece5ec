"""Transport settings from a profile table, and the registry that opens transports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import ProfileError, TransportError
from harness.guest.base import REGISTRY, transport_class
from harness.guest.settings import (
    SecretRef,
    SSHSettings,
    WinRMSettings,
    parse_transport_settings,
    settings_from_profile,
)

REPO = Path(__file__).resolve().parents[2]


def test_a_winrm_table_becomes_settings(tmp_path: Path) -> None:
    settings = parse_transport_settings(
        {"scheme": "winrm", "host": "lab1", "auth": "ntlm", "username": "tester",
         "password_env": "LAB1_PASSWORD", "password_keyring": "callout-harness/lab1",
         "ca_bundle": "certs/lab-ca.pem", "command_timeout_s": 600},
        source="win11.toml", base_dir=tmp_path,
    )
    assert isinstance(settings, WinRMSettings)
    assert settings.endpoint == "https://lab1:5986/wsman"
    assert settings.password == SecretRef(env="LAB1_PASSWORD", keyring_service="callout-harness/lab1")
    assert settings.ca_bundle == tmp_path / "certs" / "lab-ca.pem"
    assert settings.command_timeout_s == 600.0


def test_an_ssh_table_for_a_forwarded_guest_port() -> None:
    settings = parse_transport_settings(
        {"scheme": "ssh", "host": "127.0.0.1", "port": 2222, "username": "root",
         "key_file": "/keys/guest_ed25519", "guest_shell": "posix"},
        source="linux-tcg.toml",
    )
    assert isinstance(settings, SSHSettings)
    assert (settings.port, settings.guest_shell, settings.accept_new_host_key) == (
        2222, "posix", False,
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"scheme": "telnet", "host": "x"},
         "win11.toml: transport.scheme: expected 'winrm' or 'ssh', found string 'telnet'"),
        ({"scheme": "winrm", "host": "x", "password": "hunter22"},
         "win11.toml: transport.password: expected password_env or password_keyring "
         "(secrets never live in a profile), found a value written in the profile"),
        ({"scheme": "winrm", "host": "x", "verify": False},
         "win11.toml: transport.verify: expected a known key ("),
        ({"scheme": "winrm", "host": "x", "auth": "digest"},
         "win11.toml: transport.auth: expected one of ntlm, kerberos, credssp, basic, "
         "certificate, found string 'digest'"),
        ({"scheme": "ssh", "host": "x", "port": "22"},
         "win11.toml: transport.port: expected a non-negative integer, found string '22'"),
        ({"scheme": "winrm"}, "win11.toml: transport.host: expected a host name or address"),
        ({"scheme": "winrm", "host": "x", "operation_timeout_s": 30},
         "win11.toml: transport.read_timeout_s: expected a read timeout above"),
        ({"scheme": "winrm", "host": "x", "https": False, "auth": "ntlm",
          "message_encryption": "never"},
         "win11.toml: transport.https: expected true (plain HTTP without message encryption;"),
    ],
    ids=["scheme", "password", "unknown", "auth", "port-type", "host", "timeouts", "no-crypt"],
)
def test_bad_tables_are_one_line_profile_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_transport_settings(table, source="win11.toml")
    assert str(caught.value).startswith(message)
    assert "hunter22" not in str(caught.value)


def test_ntlm_over_http_is_allowed_because_it_is_encrypted() -> None:
    settings = parse_transport_settings(
        {"scheme": "winrm", "host": "x", "https": False, "auth": "ntlm"}, source="p.toml",
    )
    assert isinstance(settings, WinRMSettings) and settings.endpoint == "http://x:5985/wsman"


def test_the_registry_imports_transports_on_demand() -> None:
    assert set(REGISTRY) == {"winrm", "ssh"}
    assert transport_class("ssh").__name__ == "SSHTransport"
    with pytest.raises(TransportError, match="unknown transport scheme 'rdp'"):
        transport_class("rdp")


def run_without(modules: list[str], code: str) -> subprocess.CompletedProcess[str]:
    blocker = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {blocker}\n{code}"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )


def test_the_guest_package_imports_without_its_clients() -> None:
    result = run_without(
        ["winrm", "paramiko", "requests", "pefile", "keyring"],
        "import harness.guest.base, harness.guest.settings, harness.guest.credentials, "
        "harness.guest.powershell, harness.guest.deploy, harness.guest.etw, "
        "harness.guest.manifest, harness.guest.wfpstate, harness.guest.winrm, harness.guest.ssh",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("scheme", "module"), [("winrm", "winrm"), ("ssh", "paramiko")])
def test_a_missing_client_names_the_pip_install_line(scheme: str, module: str) -> None:
    result = run_without([module], (
        "from harness.guest.base import open_transport\n"
        "from harness.guest.settings import parse_transport_settings\n"
        f"s = parse_transport_settings({{'scheme': {scheme!r}, 'host': 'h', 'username': 'u',"
        " 'password_env': 'PW'}, source='p.toml')\n"
        "try:\n    open_transport(s)\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MissingExtraError")
    assert f"pip install 'callout-harness[{scheme}]'" in result.stdout


@dataclass(frozen=True)
class ProfileTransportStub:
    """The shape of a validated VM profile's transport (harness.vm.profile.TransportSpec)."""

    kind: str
    host: str
    scheme: str | None = None
    ca_path: Path | None = None
    username_env: str = "CALLOUT_HARNESS_WINRM_USER"
    password_env: str | None = "CALLOUT_HARNESS_WINRM_PASSWORD"
    key_path_env: str | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    auth: str = "ntlm"
    insecure_http: bool = False


def test_settings_from_a_vm_profile_transport(tmp_path: Path) -> None:
    winrm = settings_from_profile(
        ProfileTransportStub("winrm", "127.0.0.1", "https", tmp_path / "ca.pem"), 40123,
    )
    assert isinstance(winrm, WinRMSettings)
    assert winrm.endpoint == "https://127.0.0.1:40123/wsman"
    assert winrm.ca_bundle == tmp_path / "ca.pem"
    assert winrm.password == SecretRef(env="CALLOUT_HARNESS_WINRM_PASSWORD")
    ssh = settings_from_profile(
        ProfileTransportStub("ssh", "127.0.0.1", username_env="CALLOUT_HARNESS_SSH_USER",
                             password_env=None, key_path_env="CALLOUT_HARNESS_SSH_KEY"),
        40124, guest_shell="posix", accept_new_host_key=True,
    )
    assert isinstance(ssh, SSHSettings)
    assert (ssh.port, ssh.key_file_env, ssh.guest_shell) == (40124, "CALLOUT_HARNESS_SSH_KEY",
                                                            "posix")


def test_a_plain_http_profile_needs_the_explicit_opt_in() -> None:
    transport = ProfileTransportStub("winrm", "127.0.0.1", "http")
    with pytest.raises(ProfileError, match=r"lab\.toml: transport\.winrm\.https: expected true"):
        settings_from_profile(transport, 5985, source="lab.toml", auth="basic")
    settings = settings_from_profile(transport, 5985, auth="basic", insecure_http=True)
    assert isinstance(settings, WinRMSettings) and not settings.https


def test_basic_auth_cannot_promise_encryption() -> None:
    with pytest.raises(ProfileError, match="basic auth cannot encrypt"):
        parse_transport_settings(
            {"scheme": "winrm", "host": "x", "auth": "basic", "message_encryption": "always"},
            source="p.toml",
        )


def test_profile_host_key_policy_reaches_the_ssh_settings(tmp_path: Path) -> None:
    ssh = settings_from_profile(
        ProfileTransportStub("ssh", "127.0.0.1", username_env="U", password_env=None,
                             key_path_env="K", known_hosts=tmp_path / "known_hosts",
                             accept_new_host_key=True),
        2222,
    )
    assert isinstance(ssh, SSHSettings)
    assert ssh.known_hosts == tmp_path / "known_hosts" and ssh.accept_new_host_key
