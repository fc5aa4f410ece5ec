"""What every guest transport shares: the interface, the result type, the registry.

A transport carries commands (and, where it can, files) between the harness and
one guest. There is one module per transport (``winrm.py`` on pywinrm,
``ssh.py`` on paramiko); each is imported only when a profile asks for it, so
the core of the harness imports without either client installed. The registry
maps a settings scheme (``winrm``, ``ssh``) to a dotted path; a missing client
raises :class:`MissingExtraError` with the exact ``pip install`` line.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from harness.errors import TargetError, TransportError
from harness.guest.credentials import redact

if TYPE_CHECKING:
    from harness.guest.settings import TransportSettings

#: Called with each chunk of output as it arrives: ``(stream, text)``.
OutputCallback = Callable[[Literal["stdout", "stderr"], str], None]
#: Called while a file moves: ``(bytes_done, bytes_total)``.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class CommandResult:
    """What a guest command left behind: exit code and decoded output."""

    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self, what: str) -> CommandResult:
        """Return self when the command succeeded, else raise :class:`TargetError`.

        A command's own failure is not a transport failure: the guest answered.
        The message names the step and quotes the last line of stderr (or
        stdout), which is where Windows tools put their reason.
        """
        if self.ok:
            return self
        lines = [ln for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        reason = lines[-1].strip() if lines else "no output"
        raise TargetError(f"{what} failed in the guest (exit {self.rc}): {redact(reason)}")


@runtime_checkable
class Transport(Protocol):
    """A connection to one guest; both transports implement all of it.

    ``run`` executes a command line in the guest's native shell (cmd.exe for
    WinRM and Windows OpenSSH, /bin/sh for a POSIX sshd); ``run_powershell``
    sends a script as ``powershell -EncodedCommand``. Neither raises when the
    command fails: the exit code is in the result. They raise
    :class:`~harness.errors.TransportError` when the guest cannot be reached and
    :class:`~harness.errors.CommandTimeout` when ``timeout_s`` runs out.
    """

    @property
    def target(self) -> str:
        """``scheme://host:port``, for test ids and reports."""
        ...

    def run(
        self, command: str, *, timeout_s: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult: ...

    def run_powershell(
        self, script: str, *, timeout_s: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult: ...

    def put_file(
        self, local: Path, remote: str, *, on_progress: ProgressCallback | None = None,
    ) -> str:
        """Copy ``local`` to ``remote``, verify it, return its SHA-256 (hex)."""
        ...

    def get_file(
        self, remote: str, local: Path, *, on_progress: ProgressCallback | None = None,
    ) -> str:
        """Copy ``remote`` to ``local``, verify it, return its SHA-256 (hex)."""
        ...

    def reconnect(self, timeout_s: float) -> None:
        """Drop the connection and wait until the guest answers again (reboot, revert)."""
        ...

    def close(self) -> None: ...


class MissingExtraError(TransportError):
    """Raised when a transport's client library is not installed."""


#: scheme -> ``module:attribute`` of the transport class, imported on use.
REGISTRY: dict[str, str] = {
    "winrm": "harness.guest.winrm:WinRMTransport",
    "ssh": "harness.guest.ssh:SSHTransport",
}

#: scheme -> the extra that installs its client.
EXTRAS: dict[str, str] = {"winrm": "winrm", "ssh": "ssh"}


def transport_class(scheme: str) -> Any:
    """The transport class registered for ``scheme``, imported now."""
    try:
        dotted = REGISTRY[scheme]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise TransportError(f"unknown transport scheme {scheme!r} (known: {known})") from None
    module_name, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def missing_extra(scheme: str, package: str, exc: ImportError) -> MissingExtraError:
    """The error for a client library that is not installed."""
    extra = EXTRAS.get(scheme, scheme)
    return MissingExtraError(
        f"the {scheme} transport needs {package}, which is not installed: "
        f"pip install 'callout-harness[{extra}]'"
    )


def open_transport(settings: TransportSettings) -> Transport:
    """Connect to the guest described by ``settings`` (credentials resolved now)."""
    cls = transport_class(settings.scheme)
    transport: Transport = cls.from_settings(settings)
    return transport


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a local file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def check_digest(what: str, expected: str, found: str) -> None:
    """Raise :class:`TransportError` when two SHA-256 digests differ."""
    if expected.lower() != found.strip().lower():
        raise TransportError(
            f"{what}: SHA-256 mismatch after transfer (expected {expected}, found {found.strip()})"
        )
