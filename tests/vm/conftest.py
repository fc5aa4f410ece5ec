"""VM test configuration: the ``guest``, ``uefi`` and ``remote`` markers and
the shared VM fixtures.

The fixtures live in :mod:`tests.support.vm_fixtures` so other folders can
reuse them; ``tcg_guest`` yields a booted Linux guest under QEMU/TCG with
sshd and python3 (see :class:`tests.support.vm_guest.TcgGuest`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.vm.connection import libvirt_module, open_connection
from tests.support.vm_fixtures import (
    MARKERS,
    any_guest,
    guest_image,
    progress_events,
    tcg_guest,
    tcg_profile,
    uefi_guest,
    uefi_profile,
    vm_daemon,
)

TEST_URI = "test:///default"

__all__ = ["any_guest", "guest_image", "progress_events", "tcg_guest", "tcg_profile",
           "uefi_guest", "uefi_profile", "vm_daemon"]


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)


@pytest.fixture
def conn() -> Iterator[Any]:
    """Holds test:///default open (its state lives while a connection does)
    and removes the test's domains afterwards."""
    held = open_connection(TEST_URI)
    before = {d.name() for d in held.listAllDomains(0)}
    yield held
    libvirt = libvirt_module()
    for domain in held.listAllDomains(0):
        if domain.name() not in before:
            if domain.isActive():
                domain.destroy()
            domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    held.close()
