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
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import AuthError
from harness.guest.settings import SecretRef

MASK = "********"
# A secret shorter than this is masked only where it stands as a whole word
# (between non-alphanumeric characters): masking every "abc" inside other words
# would turn each log line into asterisks, but "password: abc" must not show it.
_MIN_SUBSTRING_LEN = 4
#: Environment variables whose values are secrets wherever they appear: every
#: process (an xdist controller too) registers them at start, so a report the
#: controller writes masks what a worker resolved from the same variables.
SECRET_ENV_PATTERN = re.compile(
    r"^CALLOUT_HARNESS_\w*(?:PASSWORD|PASSPHRASE|SECRET|TOKEN|PRIVATE_KEY|_KEY)$")

_lock = threading.Lock()
_secrets: set[str] = set()
_short: dict[str, re.Pattern[str]] = {}


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
    """Add ``value`` to the strings redacted from logs and reports (every length;
    see ``_MIN_SUBSTRING_LEN`` for how short ones are matched)."""
    if not value:
        return
    with _lock:
        if len(value) >= _MIN_SUBSTRING_LEN:
            _secrets.add(value)
        else:
            _short[value] = re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")
        if "\n" in value:  # a key: each of its lines on its own too
            for line in value.splitlines():
                if len(line.strip()) >= 16:
                    _secrets.add(line.strip())


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> int:
    """Register the value of every variable :data:`SECRET_ENV_PATTERN` matches; returns
    how many. A key *path* is registered too: it says where the key lives."""
    env = os.environ if environ is None else environ
    found = 0
    for name, value in env.items():
        if value and SECRET_ENV_PATTERN.match(name):
            register_secret(value)
            found += 1
    return found


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by a mask."""
    if not _secrets and not _short:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _short.values():
        text = pattern.sub(MASK, text)
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
    if not _secrets and not _short:
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
    """Redact secrets from every log record from now on, whichever handler writes it,
    and register the secrets of the environment (:func:`register_environment_secrets`).

    A handler filter would miss handlers added later (pytest's, a user's); the
    record factory sees every record at creation. Calling it again is harmless.
    The command line calls it first thing; the pytest plugin in ``pytest_configure``
    (controller and every xdist worker).
    """
    global _installed
    register_environment_secrets()
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
