"""The WinRM transport: guest commands over WS-Management, on pywinrm.

One remote shell is opened on first use and reused for every command (a shell
costs a round trip and a process on the guest; testinfra opens one per
command). Output is streamed to a callback as the guest produces it.
PowerShell travels as ``-EncodedCommand``. Files go over SFTP where the guest
has SSH; :meth:`WinRMTransport.put_file` is the fallback for guests without
it: base64 chunks appended by PowerShell, then checked with SHA-256.

Security defaults: HTTPS with certificate validation against the profile's CA
bundle; message encryption where the auth method supports it (NTLM, Kerberos,
CredSSP); Basic over plain HTTP is refused unless the profile sets
``insecure_http``. Connection errors are retried a bounded number of times with
backoff; a command's own failure (non-zero exit) never is. pywinrm and
requests errors are translated into harness errors here and nowhere else.
"""

from __future__ import annotations

import base64
import codecs
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from harness.errors import AuthError, CommandTimeout, TransportError
from harness.guest import powershell
from harness.guest.base import (
    CommandResult,
    MissingExtraError,
    OutputCallback,
    ProgressCallback,
    check_digest,
    missing_extra,
    sha256_file,
)
from harness.guest.clixml import MARKER, decode_clixml
from harness.guest.credentials import Credentials, resolve_secret, resolve_username
from harness.guest.settings import WinRMSettings, insecure_reason

log = logging.getLogger(__name__)
T = TypeVar("T")

#: WSManFault code for "the shell was not found" (guest rebooted, shell expired).
SHELL_NOT_FOUND = 2150858843
#: Operations that may be re-sent whatever the connection error: re-sending
#: them cannot run a command twice or lose its output.
_IDEMPOTENT = frozenset({"open shell", "close shell", "signal"})


def _load_pywinrm() -> Any:
    try:
        import requests
        import winrm.exceptions
        import winrm.protocol
    except ImportError as exc:
        raise missing_extra("winrm", "pywinrm", exc) from exc
    return winrm, requests


#: raw bytes per WS-Man Send: base64 twice (the line, then the envelope's stream) keeps an
#: envelope near 230 KB, well inside WinRM's default MaxEnvelopeSizekb of 500
STDIN_CHUNK_BYTES = 128 * 1024


class _StdinRefused(Exception):
    """The endpoint refused the first Send: it takes no stdin (fall back to chunks)."""


#: Bytes of a Windows file fetched per command (about 5.3 MB of base64 on stdout).
DOWNLOAD_CHUNK = 4 * 1024 * 1024


class WinRMTransport:
    """Commands (and a fallback file upload) to one guest over WinRM."""

    def __init__(self, settings: WinRMSettings, credentials: Credentials) -> None:
        reason = insecure_reason(settings)
        if reason and not settings.insecure_http:
            raise TransportError(
                f"refusing {settings.endpoint}: {reason}; use HTTPS, or set "
                "insecure_http = true in the profile for a lab network"
            )
        self.settings = settings
        self._credentials = credentials
        self._winrm, self._requests = _load_pywinrm()
        _check_auth_package(settings.auth)
        self._protocol: Any = None
        self._shell_id: str | None = None
        self._stdin_uploads = True
        self.sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: WinRMSettings) -> WinRMTransport:
        _load_pywinrm()  # a missing client is the first thing to fix
        what = f"winrm {settings.endpoint}"
        username = resolve_username(settings.username, settings.username_env, what=what)
        password = resolve_secret(settings.password, what=what, username=username)
        if password is None and settings.auth != "certificate":
            raise AuthError(f"{what}: no password source (set password_env or password_keyring)")
        return cls(settings, Credentials(username, password))

    @property
    def target(self) -> str:
        s = self.settings
        return f"winrm://{s.host}:{s.port or (5986 if s.https else 5985)}"

    @property
    def shell_id(self) -> str | None:
        """The id of the remote shell every command runs in (None before the first)."""
        return self._shell_id

    # -- protocol plumbing --------------------------------------------------------

    def _make_protocol(self) -> Any:
        s = self.settings
        password = self._credentials.password
        try:
            return self._winrm.protocol.Protocol(
                endpoint=s.endpoint,
                transport=s.auth,
                username=self._credentials.username,
                password=password.reveal() if password else None,
                server_cert_validation="validate" if s.verify_tls else "ignore",
                # None: the system CA store; never requests' environment variables
                ca_trust_path=str(s.ca_bundle) if s.ca_bundle else None,
                read_timeout_sec=s.read_timeout_s,
                operation_timeout_sec=s.operation_timeout_s,
                message_encryption=s.message_encryption,
                proxy=None,
            )
        except self._winrm.exceptions.InvalidCredentialsError as exc:
            raise AuthError(f"{self.target}: {exc}") from exc
        except self._winrm.exceptions.WinRMError as exc:
            raise TransportError(f"{self.target}: {exc}") from exc

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one WS-Man operation, translating errors and retrying connection errors."""
        requests = self._requests
        exc_mod = self._winrm.exceptions
        attempts = self.settings.connect_retries + 1
        for attempt in range(attempts):
            try:
                return fn()
            except exc_mod.WinRMOperationTimeoutError as exc:
                if what == "receive":
                    raise  # the long poll ended without output: the caller polls again
                raise TransportError(f"{self.target}: {what} timed out in the guest") from exc
            except requests.exceptions.SSLError as exc:
                raise TransportError(
                    f"{self.target}: TLS handshake failed during {what} "
                    f"(certificate not trusted by the profile's CA bundle?): {_first_line(exc)}"
                ) from exc
            except requests.exceptions.ConnectionError as exc:
                retryable = what in _IDEMPOTENT or _never_sent(exc)
                if not retryable or attempt + 1 == attempts:
                    raise TransportError(
                        f"{self.target}: connection failed during {what} after "
                        f"{attempt + 1} attempt(s): {_first_line(exc)}"
                    ) from exc
                delay = min(self.settings.retry_backoff_s * (2**attempt), 30.0)
                log.debug("%s: %s failed (%s); retry in %.2fs", self.target, what, exc, delay)
                self.sleep(delay)
                # a broken keep-alive connection must not be reused by the retry
                if self._protocol is not None:
                    self._protocol.transport.close_session()
            except requests.exceptions.Timeout as exc:
                raise TransportError(
                    f"{self.target}: no answer within {self.settings.read_timeout_s}s "
                    f"during {what}"
                ) from exc
            except exc_mod.InvalidCredentialsError as exc:
                raise AuthError(f"{self.target}: credentials refused during {what}") from exc
            except exc_mod.WSManFaultError as exc:
                raise TransportError(
                    f"{self.target}: WS-Management fault during {what}: {exc.reason}"
                ) from exc
            except exc_mod.WinRMTransportError as exc:
                raise TransportError(
                    f"{self.target}: HTTP {exc.code} during {what}"
                ) from exc
            except exc_mod.WinRMError as exc:
                raise TransportError(f"{self.target}: {what} failed: {exc}") from exc
            except OSError as exc:  # requests: an unreadable CA bundle, a proxy error...
                raise TransportError(f"{self.target}: {what} failed: {_first_line(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _shell(self) -> str:
        if self._protocol is None:
            self._protocol = self._make_protocol()
        if self._shell_id is None:
            protocol = self._protocol
            self._shell_id = self._call(
                "open shell", lambda: protocol.open_shell(codepage=65001, noprofile=True)
            )
            log.debug("%s: opened shell %s", self.target, self._shell_id)
        return self._shell_id

    def _start(self, command: str, args: list[str]) -> tuple[str, str]:
        shell_id = self._shell()
        try:
            command_id = self._call(
                "command", lambda: self._protocol.run_command(shell_id, command, args)
            )
        except TransportError as exc:
            fault = exc.__cause__
            if getattr(fault, "wsman_fault_code", None) != SHELL_NOT_FOUND:
                raise
            # The guest forgot the shell (reboot, idle expiry): the command never
            # ran, so one fresh shell and one more try is safe.
            log.debug("%s: shell %s is gone; opening a new one", self.target, shell_id)
            self._shell_id = None
            shell_id = self._shell()
            command_id = self._call(
                "command", lambda: self._protocol.run_command(shell_id, command, args)
            )
        return shell_id, command_id

    # -- commands -----------------------------------------------------------------------

    def run(
        self, command: str, *, timeout_s: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run a cmd.exe command line in the shared shell."""
        return self._run(command, [], timeout_s, on_output)

    def run_powershell(
        self, script: str, *, timeout_s: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run a PowerShell script (sent as -EncodedCommand) in the shared shell."""
        try:
            args = powershell.command_args(script)
        except ValueError as exc:
            raise TransportError(f"{self.target}: {exc}") from exc
        result = self._run(powershell.POWERSHELL, args, timeout_s, on_output)
        if MARKER in result.stderr:
            # errors of a console-less PowerShell arrive serialized; keep their text
            result = CommandResult(result.rc, result.stdout, decode_clixml(result.stderr))
        return result

    def _run(
        self, command: str, args: list[str], timeout_s: float | None,
        on_output: OutputCallback | None,
    ) -> CommandResult:
        shell_id, command_id = self._start(command, args)
        log.debug("%s: started %s (command %s)", self.target, command, command_id)
        return self._collect(command, shell_id, command_id, timeout_s, on_output)

    def _collect(
        self, command: str, shell_id: str, command_id: str, timeout_s: float | None,
        on_output: OutputCallback | None,
    ) -> CommandResult:
        """Receive a started command's output until it ends (or its deadline passes)."""
        timeout_s = timeout_s if timeout_s is not None else self.settings.command_timeout_s
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        out: dict[Literal["stdout", "stderr"], list[str]] = {"stdout": [], "stderr": []}
        decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in out}
        protocol = self._protocol
        timeout_error = self._winrm.exceptions.WinRMOperationTimeoutError
        done, rc = False, -1
        try:
            while not done:
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise CommandTimeout(
                            f"{self.target}: {command} did not finish within {timeout_s}s"
                        )
                    # the long poll must not outlast the command's own deadline
                    protocol.operation_timeout_sec = max(
                        1, min(self.settings.operation_timeout_s, math.ceil(remaining))
                    )
                try:
                    stdout, stderr, rc, done = self._call(
                        "receive", lambda: protocol.get_command_output_raw(shell_id, command_id)
                    )
                except timeout_error:
                    continue  # the guest had nothing new within the long poll
                streams: tuple[tuple[Literal["stdout", "stderr"], bytes], ...] = (
                    ("stdout", stdout), ("stderr", stderr),
                )
                for name, data in streams:
                    text = decoders[name].decode(data, final=done)
                    if text:
                        out[name].append(text)
                        if on_output is not None:
                            on_output(name, text)
        finally:
            protocol.operation_timeout_sec = self.settings.operation_timeout_s
            if not done:
                self._signal(shell_id, command_id)
        self._signal(shell_id, command_id)
        return CommandResult(rc, "".join(out["stdout"]), "".join(out["stderr"]))

    def _signal(self, shell_id: str, command_id: str) -> None:
        """Tell the guest to end a command and free its resources."""
        try:
            self._call("signal", lambda: self._protocol.cleanup_command(shell_id, command_id))
        except TransportError as exc:
            log.debug("%s: could not clean up command %s: %s", self.target, command_id, exc)

    # -- files (for guests without SSH) ------------------------------------------------------

    def chunk_bytes(self, remote: str) -> int:
        """The largest raw chunk whose upload script fits on one command line."""
        overhead = len(powershell.write_chunk(remote, "", first=True))
        fixed = len(powershell.POWERSHELL) + sum(
            len(a) + 1 for a in (*powershell.POWERSHELL_ARGS, "-EncodedCommand")
        ) + 1
        # encoded length = 4 * ceil(2 * chars / 3)
        max_chars = ((powershell.MAX_COMMAND_LINE - fixed) // 4) * 3 // 2
        b64_chars = (max_chars - overhead) // 4 * 4
        if b64_chars < 4:
            raise TransportError(f"{self.target}: remote path too long for a chunked upload")
        return b64_chars // 4 * 3

    def put_file(
        self, local: Path, remote: str, *, on_progress: ProgressCallback | None = None,
    ) -> str:
        """Upload ``local`` to the Windows path ``remote``; verify SHA-256.

        The file streams over one PowerShell process's stdin in large chunks
        (WS-Man Send); an endpoint that refuses Send gets the fallback, one
        command per chunk that fits on a command line.
        """
        if self._stdin_uploads:
            try:
                return self._put_file_stdin(local, remote, on_progress)
            except _StdinRefused as exc:
                log.debug("%s: no stdin uploads (%s); chunked commands from now on",
                          self.target, exc)
                self._stdin_uploads = False
        return self._put_file_chunked(local, remote, on_progress)

    def _put_file_stdin(
        self, local: Path, remote: str, on_progress: ProgressCallback | None,
    ) -> str:
        total = local.stat().st_size
        args = powershell.command_args(powershell.receive_file(remote))
        shell_id, command_id = self._start(powershell.POWERSHELL, args)
        protocol = self._protocol
        done = 0
        with local.open("rb") as stream:
            while True:
                block = stream.read(STDIN_CHUNK_BYTES)
                last = done + len(block) >= total
                line = base64.b64encode(block) + b"\r\n"
                def send(line: bytes = line, last: bool = last) -> None:
                    protocol.send_command_input(shell_id, command_id, line, end=last)

                try:
                    self._call("send", send)
                except TransportError as exc:
                    self._signal(shell_id, command_id)
                    if done == 0:
                        raise _StdinRefused(str(exc)) from exc
                    raise
                done += len(block)
                if on_progress is not None:
                    on_progress(done, total)
                if last:
                    break
        result = self._collect(powershell.POWERSHELL, shell_id, command_id,
                               max(120.0, total / 1e6), None)
        if MARKER in result.stderr:
            result = CommandResult(result.rc, result.stdout, decode_clixml(result.stderr))
        found = result.check(f"upload of {local.name} to {remote}").stdout
        expected = sha256_file(local)
        check_digest(f"upload of {local.name} to {remote}", expected, found.strip())
        return expected

    def _put_file_chunked(
        self, local: Path, remote: str, on_progress: ProgressCallback | None,
    ) -> str:
        """The fallback: one command per base64 chunk that fits on a command line."""
        total = local.stat().st_size
        chunk = self.chunk_bytes(remote)
        done = 0
        first = True
        with local.open("rb") as stream:
            while first or done < total:
                block = stream.read(chunk)
                script = powershell.write_chunk(
                    remote, base64.b64encode(block).decode("ascii"), first=first
                )
                self.run_powershell(script).check(f"upload of {local.name} to {remote}")
                first = False
                done += len(block)
                if on_progress is not None:
                    on_progress(done, total)
        expected = sha256_file(local)
        found = self.run_powershell(powershell.file_sha256(remote)).check(
            f"SHA-256 of {remote}"
        )
        check_digest(f"upload of {local.name} to {remote}", expected, found.stdout)
        return expected

    def get_file(
        self, remote: str, local: Path, *, on_progress: ProgressCallback | None = None,
    ) -> str:
        """Download the Windows file ``remote`` in pieces of ``DOWNLOAD_CHUNK`` bytes
        (base64 on stdout, one range read each); verify SHA-256."""
        size_text = self.run_powershell(powershell.file_length(remote)).check(
            f"size of {remote}").stdout.strip()
        if not size_text.isdigit():
            raise TransportError(f"{self.target}: {remote}: the guest gave no file size "
                                 f"({size_text[:40]!r})")
        total = int(size_text)
        done = 0
        partial = local.with_name(f".{local.name}.partial")
        try:
            with partial.open("wb") as out:
                while done < total:
                    count = min(DOWNLOAD_CHUNK, total - done)
                    result = self.run_powershell(
                        powershell.read_base64_range(remote, done, count)
                    ).check(f"read of {remote} at {done}")
                    try:
                        data = base64.b64decode("".join(result.stdout.split()), validate=True)
                    except ValueError as exc:
                        raise TransportError(
                            f"{self.target}: {remote}: the guest sent invalid base64") from exc
                    if not data:
                        raise TransportError(f"{self.target}: {remote}: ended at byte {done} "
                                             f"of {total} (the file shrank while read)")
                    out.write(data)
                    done += len(data)
                    if on_progress is not None:
                        on_progress(done, total)
            partial.replace(local)
        finally:
            partial.unlink(missing_ok=True)
        expected = self.run_powershell(powershell.file_sha256(remote)).check(
            f"SHA-256 of {remote}"
        )
        found = sha256_file(local)
        check_digest(f"download of {remote}", expected.stdout.strip(), found)
        return found

    # -- lifetime -----------------------------------------------------------------------------

    def reconnect(self, timeout_s: float) -> None:
        """Forget the shell and wait until the guest opens a new one."""
        self._drop()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._shell()
                return
            except AuthError:
                raise
            except TransportError as exc:
                if time.monotonic() >= deadline:
                    raise TransportError(
                        f"{self.target}: not reachable within {timeout_s}s: {exc}"
                    ) from exc
                self._drop()
                self.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _drop(self) -> None:
        if self._protocol is not None:
            self._protocol.transport.close_session()
        self._shell_id = None

    def close(self) -> None:
        """Delete the remote shell and close the HTTP session."""
        if self._protocol is not None and self._shell_id is not None:
            shell_id = self._shell_id
            try:
                self._call("close shell", lambda: self._protocol.close_shell(shell_id))
            except TransportError as exc:
                log.debug("%s: closing shell %s failed: %s", self.target, shell_id, exc)
        self._drop()
        self._protocol = None

    def __enter__(self) -> WinRMTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: auth method -> (pywinrm's flag that its package imported, the install line)
_AUTH_PACKAGES = {
    "ntlm": ("HAVE_NTLM", "pip install requests-ntlm"),
    "kerberos": ("HAVE_KERBEROS", "pip install 'pywinrm[kerberos]'"),
    "credssp": ("HAVE_CREDSSP", "pip install 'pywinrm[credssp]'"),
}


def _check_auth_package(auth: str) -> None:
    """Raise :class:`MissingExtraError` when the auth method's package is missing."""
    if auth not in _AUTH_PACKAGES:
        return
    from winrm import transport

    flag, line = _AUTH_PACKAGES[auth]
    if not getattr(transport, flag, True):
        raise MissingExtraError(f"{auth} auth for WinRM needs a package that is not installed: "
                                f"{line}")


def _never_sent(exc: BaseException) -> bool:
    """True when a requests ConnectionError happened before the request left.

    Only then may a command be re-sent: after that, the guest may already run it.
    """
    import requests
    import urllib3.exceptions

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
