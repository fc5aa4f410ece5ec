"""Bounded polling: every wait in harness.vm ends by its ``timeout_s``.

Helpers are named ``wait_<condition>``; none sleeps a fixed time before
looking. The poll interval starts short and grows, so a fast condition is
seen quickly and a slow one does not spin.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from harness.errors import VmError


class WaitTimeout(VmError):
    """Raised when a bounded wait ends before its condition held."""


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    first_interval_s: float = 0.05,
    max_interval_s: float = 1.0,
    on_poll: Callable[[float], None] | None = None,
) -> float:
    """Poll ``condition`` until it is true; return the seconds it took.

    ``on_poll`` receives the elapsed seconds after each failed poll (for
    progress reports). Raises WaitTimeout naming ``what``.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    interval = first_interval_s
    while True:
        if condition():
            return time.monotonic() - started
        now = time.monotonic()
        if now >= deadline:
            raise WaitTimeout(f"timed out after {timeout_s:.0f} s waiting for {what}")
        if on_poll is not None:
            on_poll(now - started)
        time.sleep(min(interval, max(deadline - now, 0.0)))
        interval = min(interval * 1.5, max_interval_s)


def read_banner(host: str, port: int, *, timeout_s: float = 2.0, size: int = 64) -> bytes:
    """The first bytes a TCP server sends, or b"" if it sends none in time.

    A QEMU user-mode forward accepts connections even before the guest
    listens, so "the port is open" proves nothing; a banner does.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            return sock.recv(size)
    except OSError:
        return b""


def wait_ssh_banner(host: str, port: int, *, timeout_s: float,
                    on_poll: Callable[[float], None] | None = None) -> float:
    """Wait until an SSH server answers on ``host:port`` with its banner."""
    return wait_until(
        lambda: read_banner(host, port).startswith(b"SSH-"),
        timeout_s=timeout_s, what=f"an SSH banner on {host}:{port}",
        first_interval_s=0.2, on_poll=on_poll,
    )


def wait_http_answer(host: str, port: int, *, timeout_s: float,
                     on_poll: Callable[[float], None] | None = None) -> float:
    """Wait until something on ``host:port`` answers an HTTP request (WinRM)."""

    def answers() -> bool:
        try:
            with socket.create_connection((host, port), timeout=2.0) as sock:
                sock.settimeout(2.0)
                sock.sendall(b"GET /wsman HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
                return len(sock.recv(16)) > 0
        except OSError:
            return False

    return wait_until(answers, timeout_s=timeout_s, what=f"an HTTP answer on {host}:{port}",
                      first_interval_s=0.5, on_poll=on_poll)
