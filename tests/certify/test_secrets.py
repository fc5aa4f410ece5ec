"""Secrets of every shape stay out of error lines, log records and a certification
run's outputs (bundle, report, traces, JUnit, terminal), also under xdist."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import AuthError
from harness.guest import credentials
from harness.guest.credentials import MASK, install_redaction, redact, register_secret

PASSWORD = "correct-horse-battery"
SHORT = "q7z"
KEY_CONTENT = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
               "QyNTUxOQAAACBvZXhhbXBsZWtleWNvbnRlbnRub3RyZWFsbHlhc2VjcmV0AAAAkA==\n"
               "-----END OPENSSH PRIVATE KEY-----\n")
KEY_LINE = KEY_CONTENT.splitlines()[1]


@pytest.fixture(autouse=True)
def _clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "_secrets", set())
    monkeypatch.setattr(credentials, "_short", {})


def test_a_three_character_password_is_masked_where_it_stands_alone() -> None:
    register_secret(SHORT)
    assert redact(f"login failed: password {SHORT} refused") == f"login failed: password {MASK} refused"
    assert redact(f"user={SHORT};") == f"user={MASK};"
    assert redact("aq7zb stays") == "aq7zb stays"  # inside another word: left alone


def test_key_content_is_masked_whole_and_line_by_line() -> None:
    register_secret(KEY_CONTENT)
    assert KEY_LINE not in redact(f"oops: {KEY_LINE[:40]}... and {KEY_LINE}")
    assert redact(KEY_CONTENT) == MASK


def test_the_environment_secrets_are_registered_for_every_process() -> None:
    env = {"CALLOUT_HARNESS_WINRM_PASSWORD": PASSWORD, "CALLOUT_HARNESS_SSH_KEY": "/keys/id_lab",
           "CALLOUT_HARNESS_WINRM_USER": "Administrator", "HOME": "/root"}
    assert credentials.register_environment_secrets(env) == 2
    assert redact(f"{PASSWORD} /keys/id_lab Administrator") == f"{MASK} {MASK} Administrator"


def test_log_records_are_redacted_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    register_secret(PASSWORD)
    register_secret(SHORT)
    with caplog.at_level(logging.INFO):
        logging.getLogger("harness.test").info("connecting with %s and %s", PASSWORD, SHORT)
    assert PASSWORD not in caplog.text and f" {SHORT}" not in caplog.text
    assert MASK in caplog.text


def test_key_content_in_the_key_path_variable_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("paramiko", reason="the SSH transport needs paramiko (the guest extra)")
    from harness.guest.settings import SSHSettings
    from harness.guest.ssh import SSHTransport

    monkeypatch.setenv("CALLOUT_HARNESS_SSH_KEY", KEY_CONTENT)
    monkeypatch.setenv("CALLOUT_HARNESS_SSH_USER", "ci")
    settings = SSHSettings(host="127.0.0.1", username_env="CALLOUT_HARNESS_SSH_USER",
                           key_file_env="CALLOUT_HARNESS_SSH_KEY")
    with pytest.raises(AuthError) as caught:
        SSHTransport.from_settings(settings)
    message = str(caught.value)
    assert "environment variable CALLOUT_HARNESS_SSH_KEY holds key material" in message
    assert "BEGIN" not in message and KEY_LINE not in message


def test_no_output_of_a_certification_run_under_xdist_holds_a_secret(tmp_path: Path) -> None:
    """The whole run, controller and two workers, with a secret of each shape in the
    environment and a scenario project whose conftest logs and fails with them."""
    pytest.importorskip("xdist", reason="pytest-xdist is a dev dependency")
    root = Path(__file__).resolve().parents[2]
    project = tmp_path / "project"
    (project / "scenarios").mkdir(parents=True)
    for name in ("connect-pend-permit", "udp-two-peers", "close-while-pended"):
        source = root / "scenarios" / f"{name}.toml"
        if source.is_file():
            (project / "scenarios" / source.name).write_text(source.read_text())
    key_file = tmp_path / "id_lab"
    key_file.write_text(KEY_CONTENT)
    (project / "conftest.py").write_text(
        "import logging, os\n"
        "def pytest_runtest_setup(item):\n"
        "    env = os.environ\n"
        "    logging.getLogger('harness.guest').warning('using %s %s %s %s',\n"
        "        env['CALLOUT_HARNESS_WINRM_PASSWORD'], env['CALLOUT_HARNESS_SSH_PASSWORD'],\n"
        "        env['CALLOUT_HARNESS_SSH_PRIVATE_KEY'], env['CALLOUT_HARNESS_SSH_KEY'])\n")
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
        "CALLOUT_HARNESS_WINRM_PASSWORD": PASSWORD, "CALLOUT_HARNESS_SSH_PASSWORD": SHORT,
        "CALLOUT_HARNESS_SSH_PRIVATE_KEY": KEY_CONTENT, "CALLOUT_HARNESS_SSH_KEY": str(key_file),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "scenarios", "-n", "2",
         "--certify", str(tmp_path / "bundle"), "--harness-out", str(tmp_path / "out"),
         "--junitxml", str(tmp_path / "junit.xml"), "-o", "log_level=INFO", "-rA"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != key_file:
            outputs[str(path)] = path.read_text(errors="replace")
    assert (tmp_path / "bundle" / "results.json").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    for where, text in outputs.items():
        assert PASSWORD not in text, where
        assert KEY_LINE not in text, where
        assert str(key_file) not in text, where
        assert f" {SHORT} " not in text and f" {SHORT}\n" not in text, where
