"""Credentials come from the environment or the keyring, and never show in logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import AuthError
from harness.guest.credentials import (
    MASK,
    RedactingFilter,
    Secret,
    install_redaction,
    redact,
    resolve_secret,
    resolve_username,
)
from harness.guest.settings import SecretRef

keyring = pytest.importorskip("keyring")
from keyring.backend import KeyringBackend  # noqa: E402


class MemoryKeyring(KeyringBackend):
    """An in-process keyring backend standing in for the desktop's."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_the_environment_variable_named_in_settings() -> None:
    secret = resolve_secret(SecretRef(env="LAB_PW"), what="winrm lab1",
                            environ={"LAB_PW": "from-env-123"})
    assert secret is not None and secret.reveal() == "from-env-123"


def test_the_keyring_when_the_variable_is_unset(memory_keyring: MemoryKeyring) -> None:
    keyring.set_password("callout-harness/lab1", "tester", "from-keyring-456")
    ref = SecretRef(env="LAB_PW", keyring_service="callout-harness/lab1")
    secret = resolve_secret(ref, what="winrm lab1", username="tester", environ={})
    assert secret is not None and secret.reveal() == "from-keyring-456"


def test_nowhere_holding_it_is_an_auth_error_that_names_the_places(
    memory_keyring: MemoryKeyring,
) -> None:
    ref = SecretRef(env="LAB_PW", keyring_service="callout-harness/lab1")
    with pytest.raises(AuthError) as caught:
        resolve_secret(ref, what="winrm lab1", username="tester", environ={})
    assert str(caught.value) == (
        "winrm lab1: no secret found in environment variable LAB_PW or keyring service "
        "'callout-harness/lab1' (user 'tester')"
    )


def test_no_reference_means_no_secret() -> None:
    assert resolve_secret(SecretRef(), what="ssh", environ={}) is None


def test_username_from_settings_or_environment() -> None:
    assert resolve_username("tester", None, what="w", environ={}) == "tester"
    assert resolve_username(None, "LAB_USER", what="w", environ={"LAB_USER": "ci"}) == "ci"
    with pytest.raises(AuthError, match="LAB_USER is not set"):
        resolve_username(None, "LAB_USER", what="w", environ={})


def test_a_secret_does_not_print_itself() -> None:
    secret = Secret("do-not-show-789")
    assert "do-not-show-789" not in f"{secret} {secret!r} {secret:>30}"
    assert redact("the password is do-not-show-789.") == f"the password is {MASK}."


def test_log_records_are_redacted_whatever_handler_writes_them(tmp_path: Path) -> None:
    Secret("log-secret-321")
    install_redaction()
    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger("test.credentials")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("connecting with %s", "log-secret-321")
        try:
            raise RuntimeError("refused log-secret-321")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = log_file.read_text()
    assert "log-secret-321" not in text
    assert f"connecting with {MASK}" in text and f"RuntimeError: refused {MASK}" in text


def test_the_filter_works_on_a_single_handler() -> None:
    Secret("filter-secret-654")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pw=%s", ("filter-secret-654",),
                               None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"pw={MASK}"
