"""Which snapshot kind a profile gets, and the XML a saved state is restored with."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from harness.vm.connection import connection
from harness.vm.domainxml import render_domain, render_metadata
from harness.vm.metadata import NAMESPACE, LeaseRecord, record_from_domain_xml
from harness.vm.profile import Profile, find_profile
from harness.vm.snapshots import choose_kind, restore_xml, version_tuple
from tests.support.vm_guest import FIXTURES

LIBVIRT_9_0 = 9_000_000
LIBVIRT_10_10 = 10_010_000


@pytest.fixture(autouse=True)
def _images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_HARNESS_IMAGES", "/images")
    monkeypatch.setenv("CALLOUT_HARNESS_GUEST", "/guest")


def profile(name: str, snapshot: str | None = None) -> Profile:
    found = find_profile(name, [FIXTURES])
    return found if snapshot is None else replace(found, snapshot=snapshot)


def test_version_numbers_unpack() -> None:
    assert version_tuple(9_000_000) == (9, 0, 0)
    assert version_tuple(10_010_002) == (10, 10, 2)


@pytest.mark.parametrize(("name", "version", "kind"), [
    ("linux-tcg", LIBVIRT_9_0, "internal"),          # BIOS: internal snapshots always work
    ("linux-tcg-uefi", LIBVIRT_9_0, "saved-state"),  # Debian 12 refuses them with pflash
    ("win11", LIBVIRT_9_0, "saved-state"),
    ("server2022", LIBVIRT_10_10, "saved-state"),    # 10.10 only with qcow2 NVRAM; ours is raw
])
def test_auto_chooses_by_firmware_and_libvirt_version(name: str, version: int,
                                                      kind: str) -> None:
    assert profile(name).snapshot == "auto"
    assert choose_kind(profile(name), version) == kind


def test_auto_takes_internal_snapshots_of_uefi_with_qcow2_nvram_on_new_libvirt() -> None:
    assert choose_kind(profile("win11"), LIBVIRT_10_10, nvram_format="qcow2") == "internal"
    assert choose_kind(profile("win11"), LIBVIRT_9_0, nvram_format="qcow2") == "saved-state"


def test_a_profile_can_insist_on_a_kind() -> None:
    assert choose_kind(profile("linux-tcg", "saved-state"), LIBVIRT_9_0) == "saved-state"
    assert choose_kind(profile("win11", "internal"), LIBVIRT_9_0) == "internal"


def _saved_xml(tmp_path: Path) -> tuple[str, LeaseRecord]:
    """What a save image of a UEFI slot holds: the live XML, with the backing
    chain libvirt probed when the domain started."""
    uefi = profile("linux-tcg-uefi")
    record = LeaseRecord.new(slot="ch-uefi", run_id="r1", profile=uefi.name, ttl_s=60,
                             work_dir=tmp_path)
    xml = render_domain(uefi, record, uuid=str(uuid.uuid4()), host_ports={"ssh": 40022}).xml
    root = ET.fromstring(xml)
    disk = root.find("devices/disk")
    assert disk is not None
    chain = ET.SubElement(disk, "backingStore", {"type": "file", "index": "1"})
    ET.SubElement(chain, "format", {"type": "qcow2"})
    ET.SubElement(chain, "source", {"file": "/guest/base.qcow2"})
    source = disk.find("source")
    assert source is not None
    source.set("index", "2")
    return ET.tostring(root, encoding="unicode"), record


def test_restore_xml_points_at_the_new_overlay_and_drops_the_old_chain(tmp_path: Path) -> None:
    saved, record = _saved_xml(tmp_path)
    renewed = record.renewed(3600)
    xml = restore_xml(saved, Path("/hv/new.qcow2"), render_metadata(profile("linux-tcg-uefi"),
                                                                    renewed))
    root = ET.fromstring(xml)
    disk = root.find("devices/disk")
    assert disk is not None and disk.find("backingStore") is None
    source = disk.find("source")
    assert source is not None and source.attrib == {"file": "/hv/new.qcow2"}
    back = record_from_domain_xml(xml)
    assert back is not None and back.deadline == renewed.deadline.replace(microsecond=0)
    metadata = root.find("metadata")
    assert metadata is not None and len(metadata.findall(f"{{{NAMESPACE}}}lease")) == 1
    # the QEMU command line (user-mode port forwards) survives the round trip
    assert root.find("{http://libvirt.org/schemas/domain/qemu/1.0}commandline") is not None


def test_libvirt_accepts_the_restore_xml(tmp_path: Path) -> None:
    saved, record = _saved_xml(tmp_path)
    xml = restore_xml(saved, tmp_path / "new.qcow2",
                      render_metadata(profile("linux-tcg-uefi"), record))
    with connection("test:///default") as conn:
        domain = conn.defineXML(xml)
        try:
            assert record_from_domain_xml(domain.XMLDesc(0)) is not None
            assert f"<source file='{tmp_path / 'new.qcow2'}'" in domain.XMLDesc(0)
        finally:
            domain.undefineFlags(0)
