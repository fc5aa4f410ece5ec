"""Render a slot's libvirt domain XML from its profile's template.

The domain is written as a template file (``fixtures/templates/*.xml``) with
``string.Template`` placeholders, never assembled element by element. Parts
that vary by profile (firmware, TPM, networking, the harness metadata) are
fragment templates under ``fixtures/templates/fragments/``. Plain values are
XML-escaped before substitution; fragments are rendered the same way and
inserted whole. The result is parsed once before it is returned, so a broken
template fails here with its file name rather than inside libvirt.

Standard library only.
"""

from __future__ import annotations

import string
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from harness.errors import ProfileError
from harness.vm.metadata import NAMESPACE, LeaseRecord
from harness.vm.profile import LOOPBACK, Profile

_QEMU_NIC = {"virtio": "virtio-net-pci", "e1000e": "e1000e", "e1000": "e1000",
             "rtl8139": "rtl8139"}
_ROOT_BUS = {"pc": "pci.0", "q35": "pcie.0"}
_NIC_SLOT = "0x18"
_DISK_DEV = {"virtio": "vda", "sata": "sda", "scsi": "sda", "ide": "hda"}


@dataclass(frozen=True)
class RenderedDomain:
    """Domain XML plus the facts about it the harness needs later."""

    xml: str
    host_ports: Mapping[str, int]
    nvram: Path | None


def _xml_value(value: object) -> str:
    return escape(str(value), {"'": "&apos;", '"': "&quot;"})


def _render_file(path: Path, values: Mapping[str, str], raw: Mapping[str, str]) -> str:
    """Substitute escaped ``values`` and pre-rendered ``raw`` fragments."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(str(path), message=f"cannot read template: {exc}") from exc
    merged = {key: _xml_value(value) for key, value in values.items()}
    merged.update(raw)
    try:
        return string.Template(text).substitute(merged)
    except KeyError as exc:
        raise ProfileError(
            str(path), key=f"${{{exc.args[0]}}}", expected="a placeholder the renderer provides",
            found="an unknown placeholder",
        ) from exc
    except ValueError as exc:
        raise ProfileError(str(path), message=f"bad template placeholder: {exc}") from exc


def _fragment(profile: Profile, name: str, values: Mapping[str, str]) -> str:
    return _render_file(profile.template.parent / "fragments" / name, values, {})


def render_metadata(profile: Profile, record: LeaseRecord) -> str:
    """The harness's ``<ch:lease>`` element for ``record``."""
    return _fragment(profile, "metadata.xml", {"namespace": NAMESPACE, **record.values()}).strip()


#: Dump formats that need the guest's vmcoreinfo (libvirt ``<vmcoreinfo/>``).
VMCOREINFO_FORMATS = frozenset({"win-dmp"})


def render_domain(
    profile: Profile,
    record: LeaseRecord,
    *,
    host_ports: Mapping[str, int],
    uuid: str,
) -> RenderedDomain:
    """The domain XML for ``record.slot`` running ``profile``.

    ``host_ports`` maps each user-mode forward name to the 127.0.0.1 port it
    is bound to (the caller picks free ones). ``uuid`` is chosen by the
    caller too: defining a second domain with the slot's name but another
    uuid is what libvirt refuses, which makes the definition a lock.
    """
    machine = profile.machine
    metadata = "    " + render_metadata(profile, record)
    nvram = None
    if machine.firmware == "uefi":
        nvram = record.nvram
        os_block = _fragment(profile, "os-uefi.xml", {
            "machine_type": machine.machine_type,
            "uefi_loader": str(machine.uefi_loader),
            "uefi_vars_template": str(machine.uefi_vars_template),
            "nvram": str(nvram),
        })
    else:
        os_block = _fragment(profile, "os-bios.xml", {"machine_type": machine.machine_type})
    tpm = _fragment(profile, "tpm-emulator.xml", {}) if machine.tpm else ""
    interfaces = qemu_commandline = ""
    ports: dict[str, int] = {}
    if profile.network.mode == "libvirt":
        interfaces = _fragment(profile, "net-libvirt.xml", {
            "network": str(profile.network.libvirt_network), "nic_model": machine.nic_model,
        })
    else:
        rules = []
        for forward in profile.network.forwards:
            if forward.name not in host_ports:
                raise ValueError(f"no host port chosen for forward {forward.name!r}")
            ports[forward.name] = host_ports[forward.name]
            # Bound to loopback: a test guest is never reachable from the LAN.
            rules.append(f"hostfwd=tcp:{LOOPBACK}:{ports[forward.name]}-:{forward.guest_port}")
        qemu_commandline = _fragment(profile, "net-user.xml", {
            "netdev": ",".join(["user", "id=hn0", *rules]),
            # An explicit high slot: QEMU places command-line devices before
            # libvirt's, and would otherwise take the slot libvirt assigns.
            "device": f"{_QEMU_NIC[machine.nic_model]},netdev=hn0,"
                      f"bus={_ROOT_BUS[machine.machine_type]},addr={_NIC_SLOT}",
        })
    values = {
        "domain_type": machine.domain_type,
        "name": record.slot,
        "uuid": uuid,
        "title": f"callout-harness slot {record.slot} ({profile.name}, run {record.run_id})",
        "memory_mib": str(machine.memory_mib),
        "vcpus": str(machine.vcpus),
        "machine_type": machine.machine_type,
        "cpu_mode": "host-passthrough" if machine.domain_type == "kvm" else "maximum",
        "kernel": str(profile.image.kernel or ""),
        "initrd": str(profile.image.initrd or ""),
        "cmdline": profile.image.cmdline or "",
        "on_crash": profile.crash.on_crash,
        "overlay": str(record.overlay),
        "disk_bus": machine.disk_bus,
        "disk_dev": _DISK_DEV[machine.disk_bus],
        "serial_log": str(record.serial_log),
        # for templates that write their own <os> (UEFI with direct kernel boot)
        "uefi_loader": str(machine.uefi_loader or ""),
        "uefi_vars_template": str(machine.uefi_vars_template or ""),
        "nvram": str(nvram or ""),
    }
    raw = {
        "metadata": metadata,
        "os": os_block,
        "tpm": tpm,
        "interfaces": interfaces,
        "qemu_commandline": qemu_commandline,
        # QEMU writes a Windows crash dump (win-dmp) only from the guest's vmcoreinfo
        # (the virtio-win fwcfg driver fills it in): the device must be there
        "vmcoreinfo": "    <vmcoreinfo state='on'/>"
                      if profile.crash.dump_format in VMCOREINFO_FORMATS else "",
    }
    xml = _render_file(profile.template, values, raw)
    try:
        ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ProfileError(str(profile.template), message=f"renders to invalid XML: {exc}") from exc
    return RenderedDomain(xml=xml, host_ports=ports, nvram=nvram)
