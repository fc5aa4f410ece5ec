"""Fixtures for the guest transport tests: loopback peers started per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.guest.credentials import Credentials, Secret
from harness.guest.settings import WinRMSettings
from tests.support.sshd import Sshd, find_sshd
from tests.support.wsman_server import WSManServer

DATA = Path(__file__).parent / "data"
USER = "harness"


@pytest.fixture
def password() -> str:
    return "pw-" + secrets.token_hex(8)


@pytest.fixture
def wsman(tmp_path: Path, password: str) -> Iterator[WSManServer]:
    """A WS-Management endpoint over plain HTTP with Basic auth."""
    root = tmp_path / "guest"
    root.mkdir()
    server = WSManServer(root, username=USER, password=password).start()
    yield server
    server.stop()


def http_settings(server: WSManServer, **overrides: Any) -> WinRMSettings:
    """Settings for the plain-HTTP test endpoint (the lab opt-in set explicitly)."""
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": server.port, "https": False, "auth": "basic",
        "insecure_http": True, "operation_timeout_s": 2, "read_timeout_s": 5,
        "retry_backoff_s": 0.01,
    }
    values.update(overrides)
    return WinRMSettings(**values)


@pytest.fixture
def winrm(wsman: WSManServer, password: str) -> Iterator[Any]:
    from harness.guest.winrm import WinRMTransport

    transport = WinRMTransport(http_settings(wsman), Credentials(USER, Secret(password)))
    yield transport
    transport.close()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if find_sshd() is None:
        pytest.skip("sshd (Debian package openssh-server) is not installed")
    daemon = Sshd(tmp_path / "sshd").start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def ps_parser() -> Any:
    """A tree-sitter parser for PowerShell (a lint-level syntax check)."""
    tsp = pytest.importorskip("tree_sitter_powershell")
    tree_sitter = pytest.importorskip("tree_sitter")
    return tree_sitter.Parser(tree_sitter.Language(tsp.language()))


def syntax_errors(parser: Any, script: str) -> list[str]:
    """ERROR and MISSING nodes in ``script``'s parse tree, with their positions."""
    found: list[str] = []
    stack = [parser.parse(script.encode("utf-8")).root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append(f"{node.type} at {node.start_point}: {node.text[:60]!r}")
        stack.extend(node.children)
    return found
