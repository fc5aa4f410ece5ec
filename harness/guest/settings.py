"""Transport settings: what a VM profile says about reaching its guest.

A profile's transport table (``[transport]`` in ``fixtures/*.toml``; the VM
profile loader hands it over as a mapping) is turned into one frozen settings
object per scheme by :func:`parse_transport_settings`. Unknown keys are an
error, not silently dropped; so is a password written into the profile:
secrets are named (an environment variable, a keyring entry), never stored.
Errors are :class:`~harness.errors.ProfileError`, one line each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.errors import ProfileError, describe

WinRMAuth = Literal["ntlm", "kerberos", "credssp", "basic", "certificate"]
WINRM_AUTHS: tuple[str, ...] = ("ntlm", "kerberos", "credssp", "basic", "certificate")
#: Auth methods whose WinRM messages pywinrm can encrypt over plain HTTP.
ENCRYPTING_AUTHS: frozenset[str] = frozenset({"ntlm", "kerberos", "credssp"})


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: an environment variable and/or a keyring entry.

    The environment wins when both are given and the variable is set.
    ``keyring_service`` is looked up with the transport's username.
    """

    env: str | None = None
    keyring_service: str | None = None

    def __bool__(self) -> bool:
        return bool(self.env or self.keyring_service)


@dataclass(frozen=True)
class WinRMSettings:
    """How to reach a guest over WS-Management (pywinrm)."""

    host: str
    port: int | None = None
    https: bool = True
    path: str = "/wsman"
    auth: WinRMAuth = "ntlm"
    username: str | None = None
    username_env: str | None = None
    password: SecretRef = field(default_factory=SecretRef)
    ca_bundle: Path | None = None
    verify_tls: bool = True
    message_encryption: Literal["auto", "always", "never"] = "auto"
    #: Plain HTTP without message encryption (e.g. Basic over http) sends the
    #: password readably; only a lab's explicit opt-in allows it.
    insecure_http: bool = False
    operation_timeout_s: int = 20
    read_timeout_s: int = 30
    command_timeout_s: float | None = None
    connect_retries: int = 3
    retry_backoff_s: float = 0.5
    scheme: Literal["winrm"] = "winrm"

    @property
    def endpoint(self) -> str:
        proto = "https" if self.https else "http"
        port = self.port or (5986 if self.https else 5985)
        return f"{proto}://{self.host}:{port}{self.path}"


@dataclass(frozen=True)
class SSHSettings:
    """How to reach a guest over SSH/SFTP (paramiko)."""

    host: str
    port: int = 22
    username: str | None = None
    username_env: str | None = None
    key_file: Path | None = None
    #: the environment variable that holds the key file's path (a VM profile's key_path_env)
    key_file_env: str | None = None
    key_passphrase: SecretRef = field(default_factory=SecretRef)
    password: SecretRef = field(default_factory=SecretRef)
    known_hosts: Path | None = None
    #: Like OpenSSH's StrictHostKeyChecking=accept-new: trust and record a key
    #: for a host that has none yet; a changed key is still refused.
    accept_new_host_key: bool = False
    #: ``posix`` guests check uploads with sha256sum, ``windows`` ones with Get-FileHash.
    guest_shell: Literal["windows", "posix"] = "windows"
    connect_timeout_s: float = 10.0
    command_timeout_s: float | None = None
    connect_retries: int = 3
    retry_backoff_s: float = 0.5
    scheme: Literal["ssh"] = "ssh"


TransportSettings = WinRMSettings | SSHSettings

_CHOICES: dict[str, tuple[str, ...]] = {
    "auth": WINRM_AUTHS,
    "message_encryption": ("auto", "always", "never"),
    "guest_shell": ("windows", "posix"),
}
_PATHS = frozenset({"ca_bundle", "key_file", "known_hosts"})
_SECRETS = frozenset({"password", "key_passphrase"})
_INTS = frozenset({"port", "operation_timeout_s", "read_timeout_s", "connect_retries"})
_FLOATS = frozenset({"retry_backoff_s", "command_timeout_s", "connect_timeout_s"})
_BOOLS = frozenset({"https", "verify_tls", "insecure_http", "accept_new_host_key"})


def parse_transport_settings(
    table: Mapping[str, Any], *, source: str, base_dir: Path | None = None,
    prefix: str = "transport",
) -> TransportSettings:
    """Validate a profile's transport table and build its settings object.

    ``source`` names the file in errors; relative paths are resolved against
    ``base_dir`` (the profile's directory). Secrets are written as
    ``password_env = "NAME"`` and/or ``password_keyring = "service"``.
    """

    def fail(key: str, expected: str, found: str) -> ProfileError:
        return ProfileError(source, key=f"{prefix}.{key}", expected=expected, found=found)

    scheme = table.get("scheme")
    classes: dict[str, type[WinRMSettings] | type[SSHSettings]] = {
        "winrm": WinRMSettings, "ssh": SSHSettings,
    }
    if scheme not in classes:
        raise fail("scheme", "'winrm' or 'ssh'", describe(scheme))
    cls = classes[scheme]
    known = {f.name for f in fields(cls)} - {"scheme"}
    values: dict[str, Any] = {}
    secrets: dict[str, dict[str, str]] = {}
    for key, value in table.items():
        if key == "scheme":
            continue
        if key in _SECRETS:
            raise fail(
                key, f"{key}_env or {key}_keyring (secrets never live in a profile)",
                "a value written in the profile",
            )
        name, _, how = key.rpartition("_")
        if name in _SECRETS and name in known and how in ("env", "keyring"):
            if not isinstance(value, str) or not value:
                raise fail(key, "a non-empty string", describe(value))
            secrets.setdefault(name, {})["env" if how == "env" else "keyring_service"] = value
            continue
        if key not in known:
            raise fail(key, "a known key (" + ", ".join(sorted(known)) + ")", "an unknown key")
        values[key] = _convert(key, value, base_dir, fail)
    if "host" not in values:
        raise fail("host", "a host name or address", "nothing (key missing)")
    for name, parts in secrets.items():
        values[name] = SecretRef(**parts)
    settings = cls(**values)
    if isinstance(settings, WinRMSettings):
        _check_winrm(settings, fail)
    return settings


def _convert(key: str, value: Any, base_dir: Path | None, fail: Any) -> Any:
    if key in _BOOLS:
        if type(value) is not bool:
            raise fail(key, "true or false", describe(value))
        return value
    if key in _INTS:
        if type(value) is not int or value < 0:
            raise fail(key, "a non-negative integer", describe(value))
        return value
    if key in _FLOATS:
        if type(value) not in (int, float) or value < 0:
            raise fail(key, "a non-negative number of seconds", describe(value))
        return float(value)
    if not isinstance(value, str) or not value:
        raise fail(key, "a non-empty string", describe(value))
    if key in _CHOICES and value not in _CHOICES[key]:
        raise fail(key, "one of " + ", ".join(_CHOICES[key]), describe(value))
    if key in _PATHS:
        path = Path(value).expanduser()
        return path if path.is_absolute() or base_dir is None else base_dir / path
    return value


def _check_winrm(settings: WinRMSettings, fail: Any) -> None:
    if settings.operation_timeout_s < 1 or settings.read_timeout_s <= settings.operation_timeout_s:
        raise fail(
            "read_timeout_s", "a read timeout above operation_timeout_s (both at least 1)",
            f"{settings.read_timeout_s} and {settings.operation_timeout_s}",
        )
    if settings.message_encryption == "always" and settings.auth not in ENCRYPTING_AUTHS:
        raise fail(
            "message_encryption", f"'auto' or 'never' ({settings.auth} auth cannot encrypt)",
            "'always'",
        )
    problem = insecure_reason(settings)
    if problem and not settings.insecure_http:
        raise fail("https", f"true ({problem}; set insecure_http = true to allow it)", "false")


class ProfileTransport(Protocol):
    """What a validated VM profile says about one transport (``harness.vm.profile``)."""

    @property
    def kind(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def scheme(self) -> str | None: ...
    @property
    def ca_path(self) -> Path | None: ...
    @property
    def username_env(self) -> str: ...
    @property
    def password_env(self) -> str | None: ...
    @property
    def key_path_env(self) -> str | None: ...
    @property
    def known_hosts(self) -> Path | None: ...
    @property
    def accept_new_host_key(self) -> bool: ...
    @property
    def auth(self) -> str: ...
    @property
    def insecure_http(self) -> bool: ...


def settings_from_profile(
    transport: ProfileTransport, port: int, *, source: str = "profile", **overrides: Any,
) -> TransportSettings:
    """Settings for a VM profile's transport, reached at ``port`` (after port forwarding).

    ``overrides`` set what a profile does not carry (``known_hosts``,
    ``accept_new_host_key``, ``guest_shell``, ``auth``, timeouts...).
    """
    values: dict[str, Any]
    if transport.kind == "winrm":
        values = {
            "host": transport.host, "port": port, "https": transport.scheme != "http",
            "ca_bundle": transport.ca_path, "username_env": transport.username_env,
            "password": SecretRef(env=transport.password_env),
            "auth": transport.auth, "insecure_http": transport.insecure_http,
        }
        values.update(overrides)
        winrm = WinRMSettings(**values)

        def fail(key: str, expected: str, found: str) -> ProfileError:
            return ProfileError(source, key=f"transport.winrm.{key}", expected=expected,
                                found=found)

        _check_winrm(winrm, fail)
        return winrm
    values = {
        "host": transport.host, "port": port, "username_env": transport.username_env,
        "key_file_env": transport.key_path_env, "password": SecretRef(env=transport.password_env),
        "known_hosts": transport.known_hosts,
        "accept_new_host_key": transport.accept_new_host_key,
    }
    values.update(overrides)
    return SSHSettings(**values)


def insecure_reason(settings: WinRMSettings) -> str | None:
    """Why these settings would send credentials or commands readably, or None."""
    if settings.https:
        return None
    if settings.auth not in ENCRYPTING_AUTHS:
        return f"{settings.auth} auth over plain HTTP sends the password readably"
    if settings.message_encryption == "never":
        return "plain HTTP without message encryption"
    return None
