"""Domain XML rendered from the profile templates, parsed back."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from harness.vm.connection import connection, libvirt_module
from harness.vm.domainxml import render_domain
from harness.vm.lease import undefine_flags
from harness.vm.metadata import NAMESPACE, LeaseRecord, record_from_domain_xml
from harness.vm.profile import Profile, find_profile
from tests.support.vm_guest import FIXTURES
from tests.support.vm_libvirtd import SessionDaemon

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


@pytest.fixture(autouse=True)
def _images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_HARNESS_IMAGES", "/images")
    monkeypatch.setenv("CALLOUT_HARNESS_GUEST", "/guest")


def render(profile: Profile, tmp_path: Path, ports: dict[str, int] | None = None) -> ET.Element:
    record = LeaseRecord.new(slot="ch-a", run_id="run-1", profile=profile.name, ttl_s=600,
                             work_dir=tmp_path)
    rendered = render_domain(profile, record, uuid=str(uuid.uuid4()),
                             host_ports=ports or {"ssh": 40022, "winrm": 40986})
    return ET.fromstring(rendered.xml)


def test_metadata_names_the_holder(tmp_path: Path) -> None:
    profile = find_profile("linux-tcg", [FIXTURES])
    root = render(profile, tmp_path)
    lease = root.find(f"metadata/{{{NAMESPACE}}}lease")
    assert lease is not None
    fields = {child.tag.split("}")[1]: child.text for child in lease}
    assert {"run-id", "host", "pid", "profile", "created-at", "deadline"} <= set(fields)
    assert fields["profile"] == "linux-tcg" and fields["run-id"] == "run-1"
    record = record_from_domain_xml(ET.tostring(root, encoding="unicode"))
    assert record is not None and record.slot == "ch-a"
    assert record.deadline > record.created_at
    assert record.overlay.parent == tmp_path


def test_user_networking_forwards_only_on_loopback(tmp_path: Path) -> None:
    profile = find_profile("linux-tcg", [FIXTURES])
    root = render(profile, tmp_path, {"ssh": 40022})
    args = [arg.get("value", "") for arg in root.iter(f"{{{QEMU_NS}}}arg")]
    netdev = args[args.index("-netdev") + 1]
    assert netdev.startswith("user,")
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev.split(",")
    assert root.find("devices/interface") is None
    assert root.get("type") == "qemu"
    assert root.findtext("on_crash") == "preserve"
    assert root.find("devices/panic").get("model") == "isa"  # type: ignore[union-attr]
    disk = root.find("devices/disk/source")
    assert disk is not None and disk.get("file", "").endswith(".qcow2")
    assert root.findtext("os/kernel") == "/guest/vmlinuz"


def test_windows_11_domain_has_enlightenments_uefi_tpm_and_crash_reporting(
    tmp_path: Path,
) -> None:
    root = render(find_profile("win11", [FIXTURES]), tmp_path)
    hyperv = root.find("features/hyperv")
    assert hyperv is not None
    assert {child.tag for child in hyperv} >= {"relaxed", "vapic", "spinlocks", "synic"}
    loader = root.find("os/loader")
    assert loader is not None and loader.get("secure") == "no"
    assert root.find("os/nvram") is not None
    assert root.find("devices/tpm/backend").get("type") == "emulator"  # type: ignore[union-attr]
    assert {p.get("model") for p in root.iter("panic")} == {"hyperv", "isa"}
    assert root.findtext("on_crash") == "preserve"
    args = [arg.get("value", "") for arg in root.iter(f"{{{QEMU_NS}}}arg")]
    assert "hostfwd=tcp:127.0.0.1:40986-:5986" in args[args.index("-netdev") + 1]


def test_lab_network_profile_uses_a_named_network(tmp_path: Path) -> None:
    root = render(find_profile("server2022", [FIXTURES]), tmp_path)
    source = root.find("devices/interface/source")
    assert source is not None and source.get("network") == "callout-lab"
    assert not list(root.iter(f"{{{QEMU_NS}}}commandline"))


def test_values_are_escaped(tmp_path: Path) -> None:
    profile = find_profile("linux-tcg", [FIXTURES])
    record = LeaseRecord.new(slot="ch-a", run_id="<run & 'co'>", profile=profile.name,
                             ttl_s=60, work_dir=tmp_path)
    xml = render_domain(profile, record, uuid=str(uuid.uuid4()), host_ports={"ssh": 1}).xml
    parsed = record_from_domain_xml(xml)
    assert parsed is not None and parsed.run_id == "<run & 'co'>"


def test_libvirt_accepts_the_rendered_domains(tmp_path: Path) -> None:
    """Every shipped profile's XML is accepted by libvirt's parser (test driver)."""
    with connection("test:///default") as conn:
        for name in ("linux-tcg", "linux-tcg-uefi", "win11", "win10", "server2022"):
            profile = find_profile(name, [FIXTURES])
            record = LeaseRecord.new(slot=f"ch-{name}", run_id="r", profile=name, ttl_s=60,
                                     work_dir=tmp_path)
            xml = render_domain(profile, record, uuid=str(uuid.uuid4()),
                                host_ports={"ssh": 40022, "winrm": 40986}).xml
            domain = conn.defineXML(xml)
            try:
                back = record_from_domain_xml(domain.XMLDesc(0))
                assert back is not None and back.profile == name
            finally:
                domain.undefine()


@pytest.mark.parametrize("name", ["win11", "win10", "server2022", "linux-tcg", "linux-tcg-uefi"])
def test_qemu_driver_validates_the_rendered_domains(
    vm_daemon: SessionDaemon, tmp_path: Path, name: str
) -> None:
    """The real QEMU driver accepts each template with schema validation on.

    The private daemon cannot use KVM, so Windows profiles are checked with
    their domain type switched to TCG; everything else is as shipped.
    """
    libvirt = libvirt_module()
    profile = find_profile(name, [FIXTURES])
    profile = replace(profile, machine=replace(profile.machine, domain_type="qemu"))
    record = LeaseRecord.new(slot=f"ch-{name}", run_id="r", profile=name, ttl_s=60,
                             work_dir=tmp_path)
    xml = render_domain(profile, record, uuid=str(uuid.uuid4()),
                        host_ports={"ssh": 40022, "winrm": 40986}).xml
    with connection(vm_daemon.uri) as conn:
        domain = conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        try:
            assert record_from_domain_xml(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        finally:
            domain.undefineFlags(undefine_flags(xml))


def test_a_windows_dump_format_gets_the_vmcoreinfo_device(tmp_path: Path) -> None:
    win11 = find_profile("win11", [FIXTURES])
    assert win11.crash.dump_format == "win-dmp"
    assert render(win11, tmp_path).find("features/vmcoreinfo").get("state") == "on"  # type: ignore[union-attr]
    linux = find_profile("linux-tcg", [FIXTURES])
    assert render(linux, tmp_path).find("features/vmcoreinfo") is None
