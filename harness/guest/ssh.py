"""The SSH transport: commands and SFTP file transfer on paramiko.

Host keys are checked against the profile's known_hosts file (default
``~/.ssh/known_hosts``); an unknown host is refused unless the profile sets
``accept_new_host_key``, which records the key like OpenSSH's
``StrictHostKeyChecking=accept-new``; a *changed* key is always refused.
Authentication is by key file (its passphrase from the environment or keyring)
or by password (likewise). Every transfer is verified with SHA-256: in the
guest (``sha256sum`` on POSIX, ``Get-FileHash`` on Windows), or by reading the
file back when the guest cannot hash it. :meth:`SSHTransport.reconnect` waits
for the guest to come back after a reboot or a snapshot revert.

It works against any sshd, so a guest behind a forwarded port
(``host = "127.0.0.1"``, ``port = 2222``) is reached the same way as a lab VM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import select
import shlex
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from harness.errors import AuthError, CommandTimeout, TransportError
from harness.guest import powershell
from harness.guest.base import (
    CommandResult,
    OutputCallback,
    ProgressCallback,
    check_digest,
    missing_extra,
    sha256_file,
)
from harness.guest.credentials import Secret, register_secret, resolve_secret, resolve_username
from harness.guest.settings import SSHSettings

if TYPE_CHECKING:
    import paramiko

log = logging.getLogger(__name__)


def _load_paramiko() -> Any:
    try:
        import paramiko
    except ImportError as exc:
        raise missing_extra("ssh", "paramiko", exc) from exc
    return paramiko


class SSHTransport:
    """Commands and files to one guest over SSH."""

    def __init__(
        self, settings: SSHSettings, username: str, *, password: Secret | None = None,
        key_passphrase: Secret | None = None,
    ) -> None:
        self.settings = settings
        self.username = username
        self._password = password
        self._key_passphrase = key_passphrase
        self._paramiko = _load_paramiko()
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._pkey: paramiko.PKey | None = None
        self.known_hosts = (settings.known_hosts or Path("~/.ssh/known_hosts")).expanduser()
        self.sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: SSHSettings) -> SSHTransport:
        _load_paramiko()  # a missing client is the first thing to fix
        what = f"ssh {settings.host}:{settings.port}"
        if settings.key_file_env:
            key_path = os.environ.get(settings.key_file_env)
            if key_path and _looks_like_key_material(key_path):
                # Never echo it: name the variable, and mask the value wherever it shows up.
                register_secret(key_path)
                raise AuthError(f"{what}: environment variable {settings.key_file_env} holds "
                                "key material, not a path; write the key to a file (mode 600) "
                                f"and set {settings.key_file_env} to that file's path")
            if key_path:
                settings = dataclasses.replace(settings, key_file=Path(key_path).expanduser())
            elif settings.key_file is None:
                raise AuthError(f"{what}: environment variable {settings.key_file_env} "
                                "(the key file's path) is not set")
        username = resolve_username(settings.username, settings.username_env, what=what)
        password = resolve_secret(settings.password, what=what, username=username)
        passphrase = resolve_secret(settings.key_passphrase, what=what, username=username)
        if settings.key_file is None and password is None:
            raise AuthError(f"{what}: set key_file or password_env/password_keyring in the profile")
        return cls(settings, username, password=password, key_passphrase=passphrase)

    @property
    def target(self) -> str:
        return f"ssh://{self.settings.host}:{self.settings.port}"

    # -- connection ---------------------------------------------------------------------

    def _key(self) -> paramiko.PKey | None:
        """The client key, decrypted once (reconnect loops would repeat a slow KDF)."""
        if self._pkey is None and self.settings.key_file is not None:
            self._pkey = self._load_key(self.settings.key_file)
        return self._pkey

    def _load_key(self, path: Path) -> paramiko.PKey:
        pm = self._paramiko
        passphrase = self._key_passphrase.reveal().encode() if self._key_passphrase else None
        try:
            key: paramiko.PKey = pm.PKey.from_path(path, password=passphrase)
            return key
        except ValueError as exc:  # cryptography: wrong passphrase, corrupt key
            raise AuthError(
                f"{self.target}: cannot decrypt key {path} (wrong passphrase?)"
            ) from exc
        except (pm.PasswordRequiredException, TypeError) as exc:  # TypeError: cryptography
            raise AuthError(
                f"{self.target}: key {path} is encrypted and no passphrase is set"
            ) from exc
        except pm.SSHException as exc:
            raise AuthError(f"{self.target}: cannot load key {path}: {exc}") from exc
        except OSError as exc:
            raise AuthError(f"{self.target}: cannot read key {path}: {exc.strerror}") from exc

    def _connect_once(self, timeout_s: float) -> paramiko.SSHClient:
        pm = self._paramiko
        client = pm.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        if self.settings.accept_new_host_key:
            client.set_missing_host_key_policy(_AcceptNew(self.known_hosts, pm))
        else:
            client.set_missing_host_key_policy(pm.RejectPolicy())
        s = self.settings
        try:
            client.connect(
                s.host, port=s.port, username=self.username, pkey=self._key(),
                password=self._password.reveal() if self._password else None,
                timeout=timeout_s, banner_timeout=timeout_s, auth_timeout=timeout_s,
                look_for_keys=False, allow_agent=False,
            )
        except pm.BadHostKeyException as exc:
            client.close()
            raise TransportError(
                f"{self.target}: host key CHANGED (not the one in {self.known_hosts}); refused"
            ) from exc
        except pm.AuthenticationException as exc:
            client.close()
            raise AuthError(f"{self.target}: authentication as {self.username!r} refused") from exc
        except pm.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise TransportError(
                    f"{self.target}: unknown host key (not in {self.known_hosts}); add it, "
                    "or set accept_new_host_key = true in the profile"
                ) from exc
            raise _Retryable(f"{self.target}: SSH handshake failed: {exc}") from exc
        except (OSError, EOFError) as exc:
            client.close()
            raise _Retryable(f"{self.target}: cannot connect: {exc}") from exc
        return client

    def wait_reachable(self, timeout_s: float) -> None:
        """Connect, retrying connection errors (not auth or host key ones) until ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                self._client = self._connect_once(
                    max(0.5, min(self.settings.connect_timeout_s, remaining))
                )
                return
            except _Retryable as exc:
                attempt += 1
                if time.monotonic() >= deadline:
                    raise TransportError(f"{exc} (gave up after {timeout_s}s)") from exc
                delay = min(self.settings.retry_backoff_s * 2 ** min(attempt, 6), 5.0)
                log.debug("%s; retry in %.2fs", exc, delay)
                self.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def _ssh(self) -> paramiko.SSHClient:
        if self._client is None or not self._alive():
            self._drop()
            s = self.settings
            budget = (s.connect_retries + 1) * s.connect_timeout_s
            self.wait_reachable(budget)
        assert self._client is not None
        return self._client

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    def reconnect(self, timeout_s: float) -> None:
        """Drop the connection and wait until the guest accepts a new one."""
        self._drop()
        self.wait_reachable(timeout_s)

    def _drop(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands -------------------------------------------------------------------------

    def run(
        self, command: str, *, timeout_s: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run ``command`` in the guest's login shell; stream its output."""
        timeout_s = timeout_s if timeout_s is not None else self.settings.command_timeout_s
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        transport = self._ssh().get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.settings.connect_timeout_s)
            channel.exec_command(command)
        except (self._paramiko.SSHException, OSError, EOFError) as exc:
            self._drop()
            raise TransportError(f"{self.target}: cannot start a command: {exc}") from exc
        chunks: dict[Literal["stdout", "stderr"], list[bytes]] = {"stdout": [], "stderr": []}
        readers = (("stdout", channel.recv_ready, channel.recv),
                   ("stderr", channel.recv_stderr_ready, channel.recv_stderr))
        try:
            while True:
                got = False
                for name, ready, recv in readers:
                    if ready():
                        data = recv(65536)
                        if data:
                            got = True
                            chunks[name].append(data)  # type: ignore[index]
                            if on_output is not None:
                                on_output(name, data.decode("utf-8", "replace"))  # type: ignore[arg-type]
                if not got and channel.exit_status_ready() and not (
                    channel.recv_ready() or channel.recv_stderr_ready()
                ):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise CommandTimeout(
                        f"{self.target}: command did not finish within {timeout_s}s"
                    )
                if not got:
                    select.select([channel], [], [], 0.05)
            rc = channel.recv_exit_status()
        except (OSError, EOFError) as exc:
            self._drop()
            raise TransportError(f"{self.target}: connection lost during a command: {exc}") from exc
        finally:
            channel.close()
        return CommandResult(
            rc,
            b"".join(chunks["stdout"]).decode("utf-8", "replace"),
            b"".join(chunks["stderr"]).decode("utf-8", "replace"),
        )

    def run_powershell(
        self, script: str, *, timeout_s: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run a PowerShell script (as -EncodedCommand) in a Windows guest."""
        if self.settings.guest_shell != "windows":
            raise TransportError(f"{self.target}: PowerShell needs guest_shell = 'windows'")
        try:
            line = powershell.command_line(script)
        except ValueError as exc:
            raise TransportError(f"{self.target}: {exc}") from exc
        return self.run(line, timeout_s=timeout_s, on_output=on_output)

    # -- files ---------------------------------------------------------------------------

    def sftp_path(self, remote: str) -> str:
        """The SFTP spelling of a guest path (``C:\\x\\y`` -> ``/C:/x/y`` on Windows)."""
        if self.settings.guest_shell == "windows" and len(remote) > 1 and remote[1] == ":":
            return "/" + remote.replace("\\", "/")
        return remote

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self._ssh().open_sftp()
            except (self._paramiko.SSHException, OSError) as exc:
                raise TransportError(f"{self.target}: cannot open SFTP: {exc}") from exc
        return self._sftp

    def _makedirs(self, sftp: paramiko.SFTPClient, directory: PurePosixPath) -> None:
        missing = []
        for parent in [directory, *directory.parents]:
            try:
                sftp.stat(str(parent))
                break
            except FileNotFoundError:
                missing.append(parent)
        for path in reversed(missing):
            sftp.mkdir(str(path))

    def put_file(
        self, local: Path, remote: str, *, on_progress: ProgressCallback | None = None,
    ) -> str:
        """Upload over SFTP (creating parent directories) and verify SHA-256."""
        sftp = self._sftp_client()
        path = self.sftp_path(remote)
        try:
            self._makedirs(sftp, PurePosixPath(path).parent)
            sftp.put(str(local), path, callback=on_progress, confirm=True)
        except (OSError, self._paramiko.SSHException) as exc:
            raise TransportError(
                f"{self.target}: upload of {local.name} to {remote}: {exc}"
            ) from exc
        expected = sha256_file(local)
        check_digest(f"upload of {local.name} to {remote}", expected, self.remote_sha256(remote))
        return expected

    def get_file(
        self, remote: str, local: Path, *, on_progress: ProgressCallback | None = None,
    ) -> str:
        """Download over SFTP and verify SHA-256 against the guest's own hash."""
        sftp = self._sftp_client()
        try:
            sftp.get(self.sftp_path(remote), str(local), callback=on_progress)
        except (OSError, self._paramiko.SSHException) as exc:
            raise TransportError(f"{self.target}: download of {remote}: {exc}") from exc
        found = sha256_file(local)
        check_digest(f"download of {remote}", self.remote_sha256(remote), found)
        return found

    def remote_sha256(self, remote: str) -> str:
        """The guest's SHA-256 of ``remote``; read back over SFTP if the guest cannot hash."""
        if self.settings.guest_shell == "windows":
            result = self.run_powershell(powershell.file_sha256(remote))
        else:
            result = self.run(f"sha256sum -- {shlex.quote(remote)}")
        words = result.stdout.split()
        if result.ok and words and len(words[0]) == 64:
            return words[0].lower()
        log.debug("%s: no hash from the guest (%s); reading %s back", self.target, result, remote)
        digest = hashlib.sha256()
        try:
            with self._sftp_client().open(self.sftp_path(remote), "rb") as stream:
                stream.prefetch()
                while block := stream.read(1 << 20):
                    digest.update(block)
        except OSError as exc:
            raise TransportError(f"{self.target}: cannot read back {remote}: {exc}") from exc
        return digest.hexdigest()


class _Retryable(TransportError):
    """A connection failure that may go away (guest booting, sshd restarting)."""


class _AcceptNew:
    """Missing-host-key policy: trust a new host's key and append it to known_hosts."""

    def __init__(self, known_hosts: Path, paramiko_module: Any) -> None:
        self.known_hosts = known_hosts
        self.pm = paramiko_module

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey,
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        line = self.pm.hostkeys.HostKeyEntry([hostname], key).to_line()
        with self.known_hosts.open("a") as stream:
            stream.write(line)
        log.info("accepted new host key for %s (%s), recorded in %s",
                 hostname, key.get_name(), self.known_hosts)


def _looks_like_key_material(value: str) -> bool:
    """True for a private key pasted where its path belongs (PEM/OpenSSH armour,
    several lines, or far longer than any path)."""
    return "PRIVATE KEY" in value or "\n" in value or len(value) > 4096
