"""VM test configuration: the ``guest`` marker and the shared VM fixtures.

The fixtures live in :mod:`tests.support.vm_fixtures` so other folders can
reuse them; ``tcg_guest`` yields a booted Linux guest under QEMU/TCG with
sshd and python3 (see :class:`tests.support.vm_guest.TcgGuest`).
"""

from __future__ import annotations

import pytest

from tests.support.vm_fixtures import (
    GUEST_MARKER,
    guest_image,
    progress_events,
    tcg_guest,
    tcg_profile,
    vm_daemon,
)

__all__ = ["guest_image", "progress_events", "tcg_guest", "tcg_profile", "vm_daemon"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", GUEST_MARKER)
