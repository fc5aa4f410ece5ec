"""Guest credentials: where they come from, and how they stay out of every log.

Secrets come only from the environment variable a profile names or from the
system keyring (the ``keyring`` package, imported on use); never from the
profile itself. Every secret resolved here is registered for redaction:
:func:`install_redaction` rewrites each log record at creation, whatever
handler later writes it, and :func:`redact` is applied to report text.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import AuthError
from harness.guest.settings import SecretRef

MASK = "********"
# Shorter strings would turn every log line into asterisks; such secrets are
# still never logged by the harness, they are just not searched for.
_MIN_REDACTED_LEN = 4

_lock = threading.Lock()
_secrets: set[str] = set()


class Secret:
    """A secret string that does not show itself in repr, str or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        """The secret itself, for the one call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(********)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)


@dataclass(frozen=True)
class Credentials:
    """A username (not secret) and an optional password."""

    username: str
    password: Secret | None = None


def register_secret(value: str) -> None:
    """Add ``value`` to the strings redacted from logs and reports."""
    if len(value) >= _MIN_REDACTED_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by a mask."""
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def resolve_secret(
    ref: SecretRef, *, what: str, username: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Secret | None:
    """Look a secret up: the named environment variable first, then the keyring.

    Returns None when ``ref`` names nowhere. Raises :class:`AuthError` when it
    names places that hold nothing, or when the keyring is unusable.
    """
    if not ref:
        return None
    env = os.environ if environ is None else environ
    if ref.env and env.get(ref.env):
        return Secret(env[ref.env])
    if ref.keyring_service:
        value = _from_keyring(ref.keyring_service, username, what=what)
        if value:
            return Secret(value)
    places = []
    if ref.env:
        places.append(f"environment variable {ref.env}")
    if ref.keyring_service:
        places.append(f"keyring service {ref.keyring_service!r} (user {username!r})")
    raise AuthError(f"{what}: no secret found in " + " or ".join(places))


def resolve_username(
    username: str | None, username_env: str | None, *, what: str,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The username written in settings, or read from the variable they name."""
    env = os.environ if environ is None else environ
    if username_env:
        value = env.get(username_env)
        if value:
            return value
        if not username:
            raise AuthError(f"{what}: environment variable {username_env} is not set")
    if username:
        return username
    raise AuthError(f"{what}: no username (set username or username_env in the profile)")


def _from_keyring(service: str, username: str | None, *, what: str) -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError as exc:
        raise AuthError(
            f"{what}: a keyring entry is named but keyring is not installed: "
            "pip install 'callout-harness[guest]'"
        ) from exc
    try:
        value = keyring.get_password(service, username or "")
    except KeyringError as exc:
        raise AuthError(f"{what}: the system keyring failed ({type(exc).__name__})") from exc
    return value if isinstance(value, str) else None


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in a record's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    if not _secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is logging's to report, not ours
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


_installed = False


def install_redaction() -> None:
    """Redact secrets from every log record from now on, whichever handler writes it.

    A handler filter would miss handlers added later (pytest's, a user's); the
    record factory sees every record at creation. Calling it again is harmless.
    """
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
