"""Session fixtures for tests that need libvirt and a booted guest.

A pytest plugin module: ``tests/vm/conftest.py`` imports its fixtures; other
test folders can do the same, or the root conftest can load it once for the
whole session with ``pytest_plugins = ["tests.support.vm_fixtures"]`` (then
one daemon and one guest serve every folder).

``vm_daemon``       a private libvirtd (session mode, as ``nobody``), stopped by pid
``guest_image``     the Linux TCG guest built from Debian packages (cached)
``tcg_profile``     fixtures/linux-tcg.toml pointed at that image
``tcg_guest``       a leased, booted guest: see :class:`tests.support.vm_guest.TcgGuest`
``progress_events`` the provisioning progress of ``tcg_guest``
``uefi_profile``    fixtures/linux-tcg-uefi.toml (OVMF, saved-state snapshots)
``uefi_guest``      the same guest booted on UEFI, a TcgGuest too
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.vm.metadata import new_run_id
from harness.vm.pool import single_slot_pool
from harness.vm.profile import Profile, find_profile
from harness.vm.progress import ProgressEvent
from harness.vm.provision import leased_machine
from tests.support.vm_guest import FIXTURES, TcgGuest, image_cache_dir, load_image_builder
from tests.support.vm_libvirtd import (
    DaemonUnavailable,
    SessionDaemon,
    remove_tree,
    start_session_daemon,
)

GUEST_MARKER = "guest: boots a real QEMU/TCG guest through a private libvirtd (slow: seconds each)"
UEFI_MARKER = "uefi: runs on the linux-tcg-uefi guest (OVMF, saved-state snapshots); also guest"
REMOTE_MARKER = ("remote: a second hypervisor in a network namespace, reached over qemu+ssh;"
                 " also guest")
MARKERS = (GUEST_MARKER, UEFI_MARKER, REMOTE_MARKER)


@pytest.fixture(scope="session")
def vm_daemon() -> Iterator[SessionDaemon]:
    """A private libvirtd (session mode, as nobody), stopped by pid at the end."""
    try:
        daemon = start_session_daemon()
    except DaemonUnavailable as exc:
        pytest.skip(f"cannot start a private libvirtd: {exc}")
    try:
        yield daemon
    finally:
        daemon.stop()
        remove_tree(daemon.root)


@pytest.fixture(scope="session")
def guest_image() -> Any:
    """The built TCG guest image (kernel, initrd, base.qcow2, key), cached."""
    builder = load_image_builder()
    try:
        return builder.build_image(image_cache_dir(), with_python=True)
    except builder.BuildError as exc:
        pytest.skip(f"cannot build the TCG guest from Debian packages: {exc}")


@pytest.fixture(scope="session")
def tcg_profile(guest_image: Any) -> Iterator[Profile]:
    """fixtures/linux-tcg.toml with $CALLOUT_HARNESS_GUEST set to the image."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CALLOUT_HARNESS_GUEST", str(guest_image.directory))
        yield find_profile("linux-tcg", [FIXTURES])


@pytest.fixture(scope="session")
def progress_events() -> list[ProgressEvent]:
    """Every progress event of the session's provisioning, in order."""
    return []


@pytest.fixture(scope="session")
def uefi_profile(guest_image: Any) -> Iterator[Profile]:
    """fixtures/linux-tcg-uefi.toml with $CALLOUT_HARNESS_GUEST set to the image."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CALLOUT_HARNESS_GUEST", str(guest_image.directory))
        yield find_profile("linux-tcg-uefi", [FIXTURES])


def booted_guest(
    daemon: SessionDaemon,
    profile: Profile,
    guest_image: Any,
    *,
    slot: str,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> Iterator[TcgGuest]:
    """Lease ``slot`` on ``daemon``, boot ``profile``'s guest, yield it, release."""
    pool = single_slot_pool(profile, name=slot, overlay_dir=daemon.workdir("overlays"),
                            uri=daemon.uri)
    with leased_machine(
        pool, run_id=new_run_id(), progress=progress,
        shell_factory=lambda _uri: daemon.shell, boot_timeout_s=180,
    ) as machine:
        host, port = machine.endpoint("ssh")
        yield TcgGuest(
            host=host, port=port, username="root",
            key_path=guest_image.private_key,
            python="python3", machine=machine, uri=daemon.uri,
        )


@pytest.fixture(scope="session")
def uefi_guest(vm_daemon: SessionDaemon, uefi_profile: Profile,
               guest_image: Any) -> Iterator[TcgGuest]:
    """The TCG guest booted by OVMF; its snapshots are saved states."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    yield from booted_guest(vm_daemon, uefi_profile, guest_image, slot=f"ch-uefi-{worker}")


@pytest.fixture(scope="session")
def tcg_guest(
    vm_daemon: SessionDaemon,
    tcg_profile: Profile,
    guest_image: Any,
    progress_events: list[ProgressEvent],
) -> Iterator[TcgGuest]:
    """A booted Linux guest (QEMU/TCG) with sshd and python3, shared by the session.

    Yields :class:`tests.support.vm_guest.TcgGuest`: ``host``/``port`` of its SSH
    forward on 127.0.0.1, ``username`` (root), ``key_path``, ``python``
    (``python3``), ``machine`` (the harness Machine: ``domain``, ``name``,
    ``revert()``) and ``uri``. Its ``clean`` snapshot holds disk and RAM
    right after boot; tests that change the guest revert to it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    yield from booted_guest(vm_daemon, tcg_profile, guest_image, slot=f"ch-tcg-{worker}",
                            progress=progress_events.append)


@pytest.fixture(scope="session", params=[
    "linux-tcg", pytest.param("linux-tcg-uefi", marks=pytest.mark.uefi),
])
def any_guest(request: pytest.FixtureRequest) -> TcgGuest:
    """``tcg_guest`` (BIOS, internal snapshots) and ``uefi_guest`` (OVMF,
    saved-state snapshots) in turn: tests of revert and crash handling run on both."""
    name = "tcg_guest" if request.param == "linux-tcg" else "uefi_guest"
    guest: TcgGuest = request.getfixturevalue(name)
    return guest
