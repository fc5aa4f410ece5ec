"""Snapshots of a leased slot: libvirt internal snapshots, or saved states.

A slot is reverted to ``clean`` (right after boot) or ``golden`` (after the
driver is deployed) before every test. Two ways to keep those states, one
interface (:class:`SnapshotStore`):

``internal``     libvirt internal snapshots: disk and RAM inside the qcow2
                 overlay (``virDomainSnapshotCreateXML``, revert with
                 ``virDomainRevertToSnapshot``). Fast and simple, but libvirt
                 refuses them for domains with pflash (UEFI) NVRAM, except
                 from libvirt 10.10 on with NVRAM in qcow2 format.
``saved-state``  works with any firmware. Taking state NAME saves the running
                 domain's memory (``virDomainSaveFlags``: QEMU stops), then
                 freezes the overlay and the NVRAM copy as read-only files in
                 the lease's ``.states`` folder. Reverting destroys the
                 domain, lays a fresh thin qcow2 overlay over the frozen one,
                 restores the NVRAM copy, and restores the memory
                 (``virDomainRestoreFlags``) with the saved XML pointed at the
                 new overlay. Taking a state therefore also resumes the guest
                 from it, which costs one save and one restore.

:func:`choose_kind` settles a profile's ``snapshot = "auto"`` by firmware and
libvirt version. Every file of a saved state lives in the lease's
``.states`` folder (:attr:`LeaseRecord.states`), which release and ``vm gc``
delete with the overlay, so a SIGKILL leaves nothing that gc cannot find.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import VmError
from harness.vm.connection import libvirt_errors, libvirt_module
from harness.vm.domainxml import render_metadata
from harness.vm.metadata import NAMESPACE, PREFIX

if TYPE_CHECKING:
    from harness.vm.lease import Lease
    from harness.vm.profile import Profile

#: From this libvirt release on, internal snapshots of UEFI domains work when
#: the NVRAM is a qcow2 image (QMP snapshot-save/snapshot-load).
INTERNAL_UEFI_SINCE = (10, 10, 0)
#: The format of the NVRAM copies the harness makes (copied from the
#: firmware's raw vars template).
NVRAM_FORMAT = "raw"
_QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def version_tuple(number: int) -> tuple[int, int, int]:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + micro)."""
    return number // 1_000_000, (number // 1_000) % 1_000, number % 1_000


def choose_kind(profile: Profile, libvirt_version: int, nvram_format: str = NVRAM_FORMAT
                ) -> str:
    """``internal`` or ``saved-state`` for ``profile`` on a hypervisor whose
    libvirt reports ``libvirt_version`` (``virConnectGetLibVersion``)."""
    if profile.snapshot != "auto":
        return profile.snapshot
    if profile.machine.firmware != "uefi":
        return "internal"
    if version_tuple(libvirt_version) >= INTERNAL_UEFI_SINCE and nvram_format == "qcow2":
        return "internal"
    return "saved-state"


class SnapshotStore(Protocol):
    """Named states of one leased domain."""

    kind: str

    def has(self, name: str) -> bool:
        """Whether state ``name`` exists."""
        ...

    def take(self, name: str) -> None:
        """Record the running guest's disk and RAM as ``name``; the guest
        keeps running (from that state)."""
        ...

    def revert(self, name: str) -> None:
        """Put disk and RAM back to ``name`` and leave the guest running."""
        ...

    def delete(self, name: str) -> None:
        """Forget state ``name`` (no error if it does not exist)."""
        ...


class InternalSnapshots:
    """libvirt internal snapshots (disk and RAM in the overlay)."""

    kind = "internal"

    def __init__(self, lease: Lease) -> None:
        self.lease = lease

    @property
    def _domain(self) -> Any:
        return self.lease.domain

    def has(self, name: str) -> bool:
        with libvirt_errors(f"listing snapshots of {self.lease.name}"):
            return name in self._domain.snapshotListNames()

    def take(self, name: str) -> None:
        xml = (f"<domainsnapshot><name>{name}</name>"
               f"<description>callout-harness {name} of {self.lease.name}</description>"
               "</domainsnapshot>")
        with libvirt_errors(f"snapshot {name!r} of {self.lease.name}"):
            self._domain.snapshotCreateXML(xml, 0)

    def revert(self, name: str) -> None:
        libvirt = libvirt_module()
        with libvirt_errors(f"reverting {self.lease.name} to {name!r}"):
            state = self._domain.state()[0]
            if state in (libvirt.VIR_DOMAIN_CRASHED, libvirt.VIR_DOMAIN_PMSUSPENDED):
                # loadvm into a panicked QEMU is not reliable; start over from it
                self._domain.destroy()
            snapshot = self._domain.snapshotLookupByName(name, 0)
            self._domain.revertToSnapshot(snapshot, libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)

    def delete(self, name: str) -> None:
        if self.has(name):
            with libvirt_errors(f"deleting snapshot {name!r} of {self.lease.name}"):
                self._domain.snapshotLookupByName(name, 0).delete(0)


class SavedStateSnapshots:
    """Saved-state snapshots; see the module docstring."""

    kind = "saved-state"

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self._names: set[str] = set()
        #: the domain XML each state was saved with (what the save image holds)
        self._xml: dict[str, str] = {}

    # -- where a state's files live ------------------------------------------
    @property
    def folder(self) -> Path:
        return self.lease.record.states

    def save_file(self, name: str) -> Path:
        return self.folder / f"{name}.save"

    def frozen_overlay(self, name: str) -> Path:
        return self.folder / f"{name}.qcow2"

    def frozen_nvram(self, name: str) -> Path:
        return self.folder / f"{name}.nvram.fd"

    @property
    def _nvram(self) -> Path | None:
        return self.lease.rendered.nvram

    # -- the interface -------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._names

    def take(self, name: str) -> None:
        libvirt = libvirt_module()
        store, lease = self.lease.store, self.lease
        store.make_dir(self.folder)
        save, frozen = self.save_file(name), self.frozen_overlay(name)
        store.remove([save, frozen, self.frozen_nvram(name)])
        with libvirt_errors(f"saving the state of {lease.name} as {name!r}"):
            # the migratable XML is the one libvirt stores in the save image;
            # kept here, it spares reading it back (slow on some remote daemons)
            xml = lease.domain.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE
                                       | libvirt.VIR_DOMAIN_XML_MIGRATABLE)
            # written by the hypervisor, next to the overlay
            lease.domain.saveFlags(str(save), None, libvirt.VIR_DOMAIN_SAVE_RUNNING)
        self._xml[name] = xml
        # QEMU is gone: the overlay and NVRAM are exactly the saved moment's
        store.rename(lease.record.overlay, frozen)
        read_only = [save, frozen]
        if self._nvram is not None:
            store.copy(self._nvram, self.frozen_nvram(name), mode=0o400)
        store.make_read_only(read_only)
        self._names.add(name)
        self.revert(name)

    def revert(self, name: str) -> None:
        if name not in self._names:
            raise VmError(f"{self.lease.name} has no saved state {name!r}")
        libvirt = libvirt_module()
        store, lease = self.lease.store, self.lease
        with libvirt_errors(f"stopping {lease.name} to revert it to {name!r}"):
            if lease.domain.isActive():
                lease.domain.destroy()
        overlay = lease.record.overlay
        store.create_overlay(self.frozen_overlay(name), "qcow2", overlay)
        if self._nvram is not None:
            # a writable copy: the firmware writes its variables while it runs
            store.copy(self.frozen_nvram(name), self._nvram, mode=0o600)
        save = str(self.save_file(name))
        saved_xml = self._xml.get(name)
        if saved_xml is None:
            with libvirt_errors(f"reading the saved state {name!r} of {lease.name}"):
                saved_xml = lease.conn.saveImageGetXMLDesc(
                    save, libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE)
        xml = restore_xml(saved_xml, overlay, render_metadata(lease.slot.profile, lease.record))
        with libvirt_errors(f"restoring {lease.name} from its saved state {name!r}"):
            lease.conn.restoreFlags(save, xml, libvirt.VIR_DOMAIN_SAVE_RUNNING)

    def delete(self, name: str) -> None:
        # The frozen overlay stays until release: the live overlay or a later
        # state may be layered over it.
        if name in self._names:
            self.lease.store.remove([self.save_file(name), self.frozen_nvram(name)])
            self._names.discard(name)
            self._xml.pop(name, None)


def restore_xml(saved_xml: str, overlay: Path, metadata: str) -> str:
    """The domain XML of a save image, pointed at a fresh ``overlay``.

    The first disk's source becomes ``overlay`` and any backing chain libvirt
    recorded is dropped (it is probed again from the new overlay, whose
    backing file is the frozen one); the lease metadata is replaced by the
    current ``<ch:lease>`` element (a renewed deadline).
    """
    ET.register_namespace(PREFIX, NAMESPACE)
    ET.register_namespace("qemu", _QEMU_NS)
    try:
        root = ET.fromstring(saved_xml)
    except ET.ParseError as exc:
        raise VmError(f"the saved domain XML does not parse: {exc}") from exc
    disk = root.find("devices/disk[@device='disk']")
    source = disk.find("source") if disk is not None else None
    if disk is None or source is None:
        raise VmError("the saved domain XML has no disk source to point at the new overlay")
    source.attrib = {"file": str(overlay)}
    for child in list(source):
        source.remove(child)
    for backing in disk.findall("backingStore"):
        disk.remove(backing)
    holder = root.find("metadata")
    if holder is not None:
        for old in holder.findall(f"{{{NAMESPACE}}}lease"):
            holder.remove(old)
        holder.append(ET.fromstring(metadata))
    return ET.tostring(root, encoding="unicode")


def snapshot_store(lease: Lease, kind: str) -> SnapshotStore:
    """The store for ``kind`` (``internal`` or ``saved-state``)."""
    if kind == "internal":
        return InternalSnapshots(lease)
    if kind == "saved-state":
        return SavedStateSnapshots(lease)
    raise VmError(f"unknown snapshot kind {kind!r}")


def store_for_lease(lease: Lease) -> SnapshotStore:
    """The store the lease's profile asks for (``auto`` settled on its hypervisor)."""
    with libvirt_errors(f"asking {lease.slot.uri} for its libvirt version"):
        version = int(lease.conn.getLibVersion())
    return snapshot_store(lease, choose_kind(lease.slot.profile, version))
