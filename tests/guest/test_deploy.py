"""Deployment steps as a VM target runs them, over a transport."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.errors import TargetError
from harness.guest import powershell as ps
from harness.guest.base import CommandResult, Transport
from harness.guest.deploy import Deployment, GuestLayout
from harness.guest.manifest import DriverManifest, load_manifest
from tests.guest.conftest import DATA
from tests.guest.signed_pe import add_signature_placeholder
from tests.support.pe import write_pe
from tests.support.wsman_server import WSManServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def manifest(tmp_path: Path) -> DriverManifest:
    root = tmp_path / "probe"
    root.mkdir()
    shutil.copy(REPO / "drivers" / "probe" / "driver.toml", root)
    shutil.copy(REPO / "drivers" / "probe" / "probe.inf", root)
    release = root / "build" / "x64" / "Release"
    add_signature_placeholder(write_pe(release / "probe.sys"))
    (release / "probe.cat").write_bytes(b"catalog")
    (root / "build" / "probe-test.cer").write_bytes(b"certificate")
    return load_manifest(root / "driver.toml")


class ScriptedGuest:
    """A stand-in Windows guest: answers each deployment script as Windows would.

    ``answers`` maps a fragment of a script to the result the guest gives;
    ``files`` are what ``get_file`` finds in the guest.
    """

    target = "scripted://guest"

    def __init__(self, answers: dict[str, CommandResult], files: dict[str, Path]) -> None:
        self.answers = answers
        self.files = files

    def run(self, command: str, **kw: Any) -> CommandResult:
        raise AssertionError("deployment only sends PowerShell")

    def run_powershell(self, script: str, **kw: Any) -> CommandResult:
        for fragment, result in self.answers.items():
            if fragment in script:
                return result
        return CommandResult(0, "", "")

    def put_file(self, local: Path, remote: str, **kw: Any) -> str:
        raise AssertionError("not used")

    def get_file(self, remote: str, local: Path, **kw: Any) -> str:
        shutil.copy(self.files[remote], local)
        return ""

    def reconnect(self, timeout_s: float) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_scripted_guest_is_a_transport() -> None:
    assert isinstance(ScriptedGuest({}, {}), Transport)


def test_upload_lands_every_package_file_in_the_guest(
    manifest: DriverManifest, winrm: Any, wsman: WSManServer,
) -> None:
    digests = Deployment(winrm, manifest).upload()
    driver_dir = wsman.root / "C" / "callout-harness" / "driver"
    assert sorted(p.name for p in driver_dir.iterdir()) == [
        "probe-test.cer", "probe.cat", "probe.inf", "probe.sys",
    ]
    assert (driver_dir / "probe.sys").read_bytes() == manifest.sys.read_bytes()
    assert set(digests) == {"probe.sys", "probe.inf", "probe.cat", "probe-test.cer"}


def test_test_signing_asks_for_a_reboot_only_when_it_changed(manifest: DriverManifest) -> None:
    changed = ScriptedGuest({"testsigning": CommandResult(0, ps.REBOOT_MARKER + "\n", "")}, {})
    assert Deployment(changed, manifest).enable_test_signing() is True
    already = ScriptedGuest({"testsigning": CommandResult(0, "", "")}, {})
    assert Deployment(already, manifest).enable_test_signing() is False


def test_a_failing_step_names_the_step_and_the_guests_reason(manifest: DriverManifest) -> None:
    guest = ScriptedGuest({"'sc.exe' 'create'": CommandResult(
        1073, "", "[SC] CreateService FAILED 1073:\r\n\r\nThe specified service already exists.\r\n",
    )}, {})
    with pytest.raises(TargetError) as caught:
        Deployment(guest, manifest).install()
    assert str(caught.value) == (
        "install of probe failed in the guest (exit 1073): The specified service already exists."
    )


def test_a_driver_that_is_not_loaded_fails_start(manifest: DriverManifest) -> None:
    guest = ScriptedGuest({"'query'": CommandResult(
        4, "", "CalloutProbe is not RUNNING: STATE              : 1  STOPPED")}, {})
    with pytest.raises(TargetError, match=r"start of probe failed .*not RUNNING: STATE +: 1  STOP"):
        Deployment(guest, manifest).start()


def test_uninstall_audit_reports_leftover_wfp_objects(
    manifest: DriverManifest, tmp_path: Path,
) -> None:
    layout = GuestLayout()
    guest = ScriptedGuest({}, {layout.wfp_state: DATA / "wfpstate_leftovers.xml"})
    with pytest.raises(TargetError) as caught:
        Deployment(guest, manifest).uninstall_clean(tmp_path)
    lines = str(caught.value).splitlines()
    assert lines[0] == (
        "4 WFP object(s) of provider {3F0B1C2D-4E5F-4A6B-8C7D-9E0F1A2B3C4D} remain:"
    )
    assert any("callout {9A1E5C10-2B3D-4F60-A172-8394A5B6C701}" in line for line in lines)
    assert (tmp_path / "wfpstate.xml").exists()  # kept for the report


def test_a_clean_uninstall_passes_the_audit(manifest: DriverManifest) -> None:
    layout = GuestLayout()
    guest = ScriptedGuest({}, {layout.wfp_state: DATA / "wfpstate_clean.xml"})
    deployment = Deployment(guest, manifest)
    deployment.uninstall_clean()
    assert deployment.audit() == []


def test_a_service_install_refuses_a_sys_without_an_embedded_signature(
        tmp_path: Path) -> None:
    from harness.guest.deploy import embedded_signature

    root = tmp_path / "unsigned"
    shutil.copytree(REPO / "drivers" / "probe", root, ignore=shutil.ignore_patterns("*.c", "*.h"))
    release = root / "build" / "x64" / "Release"
    write_pe(release / "probe.sys")
    (release / "probe.cat").write_bytes(b"catalog")
    (root / "build" / "probe-test.cer").write_bytes(b"certificate")
    unsigned = load_manifest(root / "driver.toml")
    assert not embedded_signature(unsigned.sys)
    guest = ScriptedGuest({}, {})
    with pytest.raises(TargetError) as caught:
        Deployment(guest, unsigned).install()
    assert str(caught.value).startswith(
        "install of probe: probe.sys has no embedded signature; a driver started with sc "
        "create is checked against the .sys itself")
    assert embedded_signature(add_signature_placeholder(unsigned.sys))
    Deployment(guest, unsigned).install()  # now it goes ahead
