"""The exception tree of callout-harness.

Every error the harness raises on purpose derives from :class:`HarnessError`;
foreign exceptions (libvirt, pywinrm, paramiko, OSError) are translated at the
boundary where they occur, ``raise SomeHarnessError(...) from exc``::

    HarnessError
    ├── InputError            a file the user wrote is malformed
    │   ├── TraceFormatError  a trace line breaks the trace format
    │   ├── ScenarioError     a scenario file
    │   ├── ProfileError      a VM profile
    │   ├── PoolError         a VM pool file
    │   ├── ManifestError     a driver manifest
    │   └── ErrataError       a known-issues file
    ├── UsageError            a command line or option value is wrong
    ├── EngineError           the engine model was driven outside its API
    ├── TargetError           a target could not run a scenario
    │   ├── VmError           libvirt provisioning failed
    │   │   ├── LeaseError    no slot could be leased
    │   │   └── GuestCrashed  the guest crashed or panicked
    │   ├── DriverCrashed     the callout under test raised or crashed mid-scenario
    │   └── TransportError    a guest transport failed
    │       ├── AuthError     credentials were refused or missing
    │       └── CommandTimeout  a guest command did not finish in time
    └── BundleError           a certification bundle is incomplete or altered
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error callout-harness raises on purpose."""


class InputError(HarnessError):
    """Raised when a file the user wrote is malformed.

    The message is one line: ``FILE:LINE: KEY: expected WHAT, found WHAT``;
    parts that are unknown are left out.
    """

    def __init__(
        self,
        path: str,
        *,
        line: int | None = None,
        key: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        message: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.expected = expected
        self.found = found
        where = self.path if line is None else f"{self.path}:{line}"
        parts = [where]
        if key:
            parts.append(key)
        if message:
            parts.append(message)
        elif expected is not None:
            text = f"expected {expected}"
            if found is not None:
                text += f", found {found}"
            parts.append(text)
        super().__init__(": ".join(parts))


class TraceFormatError(InputError):
    """Raised when a trace line is not valid trace-format version 1."""


class ScenarioError(InputError):
    """Raised when a scenario file is malformed."""


class ProfileError(InputError):
    """Raised when a VM profile is malformed."""


class PoolError(InputError):
    """Raised when a VM pool file is malformed."""


class ManifestError(InputError):
    """Raised when a driver manifest or the files it names are malformed."""


class ErrataError(InputError):
    """Raised when a known-issues (errata) file is malformed."""


class UsageError(HarnessError):
    """Raised when a command line or an option value is wrong."""


class EngineError(HarnessError):
    """Raised when the engine model is driven outside its documented API."""


class TargetError(HarnessError):
    """Raised when a target cannot run a scenario."""


class VmError(TargetError):
    """Raised when libvirt provisioning of a VM slot fails."""


class LeaseError(VmError):
    """Raised when no slot of a pool can be leased in time."""


class GuestCrashed(VmError):
    """Raised when the guest crashed or panicked during a test."""


class DriverCrashed(TargetError):
    """Raised when the callout under test raised an exception (a Python
    callout) or died (C driver code) during a scenario: that scenario fails,
    the run goes on. The message names where, and the trace up to the crash."""


class TransportError(TargetError):
    """Raised when a guest transport (WinRM, SSH) fails."""


class AuthError(TransportError):
    """Raised when credentials are missing or refused."""


class CommandTimeout(TransportError):
    """Raised when a guest command does not finish within its timeout."""


class BundleError(HarnessError):
    """Raised when a certification bundle is incomplete or was altered."""


def describe(value: object) -> str:
    """A short description of a found value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
