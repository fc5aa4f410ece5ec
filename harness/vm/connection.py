"""The one place that imports libvirt and translates its errors.

Everything else in ``harness.vm`` gets the module through :func:`libvirt_module`
(so ``import harness.vm.profile`` and pool loading work without libvirt
installed) and wraps libvirt calls in :func:`libvirt_errors`, which turns a
``libvirt.libvirtError`` into :class:`~harness.errors.VmError` at the boundary.

libvirt's default event loop is registered once per process, before the first
connection is opened, and driven by a daemon thread: lifecycle events
(a crashed guest) arrive through it, and it also runs connection keepalives.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any

from harness.errors import VmError

INSTALL_HINT = "pip install 'callout-harness[vm]'"

_event_loop_lock = threading.Lock()
_event_loop_started = False
_quiet = False


def libvirt_module() -> ModuleType:
    """Import libvirt, or explain how to install it."""
    try:
        import libvirt
    except ImportError as exc:
        raise VmError(
            f"the VM target needs libvirt-python, which is not installed: {INSTALL_HINT}"
        ) from exc
    global _quiet
    if not _quiet:
        # libvirt prints every error to stderr by default; the harness reports
        # them itself, once, as VmError.
        libvirt.registerErrorHandler(_ignore_error, None)
        _quiet = True
    return libvirt


def _ignore_error(_ctx: object, _err: object) -> None:
    return None


def error_code(exc: BaseException) -> int | None:
    """libvirt's error number for a libvirtError, None for anything else."""
    getter = getattr(exc, "get_error_code", None)
    return getter() if callable(getter) else None


@contextmanager
def libvirt_errors(action: str) -> Iterator[None]:
    """Translate libvirtError raised inside the block into VmError."""
    libvirt = libvirt_module()
    try:
        yield
    except libvirt.libvirtError as exc:
        detail = exc.get_error_message() or str(exc)
        raise VmError(f"{action}: {detail}") from exc


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it on a daemon thread.

    Must happen before a connection is opened for that connection to deliver
    events; calling it again is a no-op.
    """
    global _event_loop_started
    libvirt = libvirt_module()
    with _event_loop_lock:
        if _event_loop_started:
            return
        with libvirt_errors("registering the libvirt event loop"):
            libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except libvirt.libvirtError:
                    # A failed iteration (a closed connection) must not end event
                    # delivery for the other connections of this process.
                    continue

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


def open_connection(uri: str) -> Any:
    """Open a read-write libvirt connection to ``uri``.

    Returns a ``libvirt.virConnect``; the caller closes it (or uses
    :func:`connection`).
    """
    libvirt = libvirt_module()
    ensure_event_loop()
    with libvirt_errors(f"connecting to {uri}"):
        conn = libvirt.open(uri)
    if conn is None:  # older bindings return None instead of raising
        raise VmError(f"connecting to {uri}: libvirt returned no connection")
    if not uri.startswith("test:"):
        # Notice a dead remote hypervisor within ~30 s instead of hanging.
        with suppress(libvirt.libvirtError):
            conn.setKeepAlive(10, 3)
    return conn


@contextmanager
def connection(uri: str) -> Iterator[Any]:
    """A libvirt connection that is closed when the block ends."""
    conn = open_connection(uri)
    try:
        yield conn
    finally:
        close_quietly(conn)


def close_quietly(conn: Any) -> None:
    libvirt = libvirt_module()
    with suppress(libvirt.libvirtError):
        conn.close()
