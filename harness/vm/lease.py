"""Leases: one slot of a pool for one holder, atomic across processes and hosts.

The lock is the libvirt domain itself. Leasing a slot means defining a
domain named after the slot, with a fresh uuid and the harness's metadata
(holder run id, host, pid, deadline). libvirt refuses to define a second
domain with the same name and another uuid, so of two racing holders, on
one host or on many, exactly one succeeds; no lock file, no lock server.

A lease whose holder is gone (its pid no longer exists on its host) or
whose deadline has passed is stale: the next holder reclaims it (destroy,
undefine, delete the files named in its metadata) and defines its own.
Reclaiming goes by uuid, so of two reclaimers the late one finds nothing
to delete and never removes the new holder's domain or disk.

A domain that occupies a slot's name without the harness metadata is not
ours: it is never touched, and the slot is skipped.
"""

from __future__ import annotations

import logging
import socket
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import LeaseError, VmError
from harness.vm.connection import (
    close_quietly,
    error_code,
    libvirt_errors,
    libvirt_module,
    open_connection,
)
from harness.vm.domainxml import RenderedDomain, render_domain, render_metadata
from harness.vm.images import (
    HostFiles,
    HostShell,
    ShellFactory,
    close_shell,
    files_for,
    shell_for_uri,
)
from harness.vm.metadata import NAMESPACE, PREFIX, LeaseRecord, record_from_domain_xml
from harness.vm.pool import Pool, Slot, slot_order
from harness.vm.wait import WaitTimeout, wait_until

log = logging.getLogger(__name__)


@dataclass
class Lease:
    """A slot held by this process: its connection, domain and record."""

    slot: Slot
    record: LeaseRecord
    uuid: str
    conn: Any
    domain: Any
    rendered: RenderedDomain
    shell: HostShell
    #: file work on the slot's hypervisor (storage pool API when it is remote)
    store: HostFiles
    released: bool = field(default=False)

    @property
    def name(self) -> str:
        return self.slot.name

    @property
    def files(self) -> list[Path]:
        """Files on the hypervisor that belong to this lease."""
        return self.record.files


def free_local_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now.

    All sockets stay open until every port is chosen so the kernel does not
    hand out the same one twice; QEMU may still lose a race for one, which
    the boot step handles by choosing again.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def choose_host_ports(slot: Slot) -> dict[str, int]:
    forwards = slot.profile.network.forwards
    return dict(zip((f.name for f in forwards), free_local_ports(len(forwards)), strict=True))


def read_record(domain: Any) -> LeaseRecord | None:
    """The harness record of a domain, None if the domain is not ours."""
    libvirt = libvirt_module()
    try:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if domain.isPersistent() else 0
        return record_from_domain_xml(domain.XMLDesc(flags))
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise VmError(f"reading the metadata of {domain.name()}: {exc}") from exc


def undefine_flags(domain_xml: str) -> int:
    """Undefine flags that also drop what libvirt keeps beside the domain:
    snapshot metadata always, NVRAM and TPM state when the domain has them."""
    libvirt = libvirt_module()
    flags = (libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
             | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    if "<nvram" in domain_xml:
        flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    if "<tpm" in domain_xml:
        flags |= getattr(libvirt, "VIR_DOMAIN_UNDEFINE_TPM", 0)
    return flags


def remove_domain(conn: Any, uuid: str, files: list[Path], store: HostFiles) -> bool:
    """Destroy and undefine the domain with ``uuid`` and delete ``files``.

    Returns False if no such domain exists any more (someone else removed
    it). The disk files go before the definition: a crash in between leaves
    a tagged domain, which ``vm gc`` finds, never an untracked overlay.
    """
    libvirt = libvirt_module()
    try:
        domain = conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise VmError(f"looking up domain {uuid}: {exc}") from exc
    name = domain.name()
    try:
        if domain.isActive():
            domain.destroy()
        xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        store.remove(files)
        if domain.isPersistent():
            domain.undefineFlags(undefine_flags(xml))
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise VmError(f"removing domain {name}: {exc.get_error_message()}") from exc
    return True


def _define(conn: Any, xml: str, slot: Slot) -> Any | None:
    """Define the domain; None if another domain already holds the name."""
    libvirt = libvirt_module()
    try:
        return conn.defineXML(xml)
    except libvirt.libvirtError as exc:
        try:
            conn.lookupByName(slot.name)
        except libvirt.libvirtError:
            raise VmError(
                f"defining slot {slot.name} on {slot.uri}: {exc.get_error_message()}"
            ) from exc
        return None


def try_lease(
    slot: Slot,
    *,
    run_id: str,
    ttl_s: float,
    shell: HostShell,
    host_ports: Mapping[str, int] | None = None,
) -> Lease | None:
    """Lease ``slot`` now, reclaiming a stale holder; None if it is held."""
    conn = open_connection(slot.uri)
    try:
        for _attempt in range(2):  # a second try after reclaiming a stale lease
            record = LeaseRecord.new(slot=slot.name, run_id=run_id, profile=slot.profile.name,
                                     ttl_s=ttl_s, work_dir=slot.overlay_dir)
            domain_uuid = str(uuidlib.uuid4())
            rendered = render_domain(slot.profile, record, uuid=domain_uuid,
                                     host_ports=host_ports or choose_host_ports(slot))
            domain = _define(conn, rendered.xml, slot)
            if domain is not None:
                return Lease(slot=slot, record=record, uuid=domain_uuid, conn=conn,
                             domain=domain, rendered=rendered, shell=shell,
                             store=files_for(slot.uri, shell, conn))
            if not reclaim_if_stale(conn, slot, shell):
                break
        close_quietly(conn)
        return None
    except BaseException:
        close_quietly(conn)
        raise


def reclaim_if_stale(conn: Any, slot: Slot, shell: HostShell) -> bool:
    """Remove the slot's current holder if its lease is stale."""
    libvirt = libvirt_module()
    try:
        holder = conn.lookupByName(slot.name)
        holder_uuid = holder.UUIDString()
    except libvirt.libvirtError:
        return True  # gone meanwhile: the slot is free again
    record = read_record(holder)
    if record is None:
        log.warning("slot %s on %s is occupied by a domain the harness did not create;"
                    " leaving it alone", slot.name, slot.uri)
        return False
    reason = record.stale_reason()
    if reason is None:
        return False
    log.warning("reclaiming slot %s from run %s: %s", slot.name, record.run_id, reason)
    remove_domain(conn, holder_uuid, record.files, files_for(slot.uri, shell, conn))
    return True


def acquire(
    pool: Pool,
    *,
    run_id: str,
    worker_index: int = 0,
    wait_timeout_s: float = 600.0,
    shell_factory: ShellFactory = shell_for_uri,
) -> Lease:
    """Lease a free slot of ``pool``, waiting up to ``wait_timeout_s``.

    Raises LeaseError naming the holders if every slot stays taken.
    """
    order = slot_order(pool.slots, worker_index)
    won: list[Lease] = []

    def any_slot() -> bool:
        for slot in order:
            shell = shell_factory(slot.uri)
            try:
                lease = try_lease(slot, run_id=run_id, ttl_s=pool.lease_ttl_s, shell=shell)
            except BaseException:
                close_shell(shell)
                raise
            if lease is not None:
                won.append(lease)
                return True
            close_shell(shell)
        return False

    try:
        wait_until(any_slot, timeout_s=wait_timeout_s, what="a free slot",
                   first_interval_s=1.0, max_interval_s=10.0)
    except WaitTimeout as exc:
        raise LeaseError(
            f"no free slot in {pool.path or 'the pool'} after {wait_timeout_s:.0f} s: "
            + "; ".join(describe_holder(slot) for slot in order)
        ) from exc
    return won[0]


def describe_holder(slot: Slot) -> str:
    """'SLOT: held by run R (pid P on H) until D' for error messages."""
    try:
        conn = open_connection(slot.uri)
    except VmError as exc:
        return f"{slot.name}: {exc}"
    with closing(conn):
        libvirt = libvirt_module()
        try:
            record = read_record(conn.lookupByName(slot.name))
        except libvirt.libvirtError:
            return f"{slot.name}: free"
    if record is None:
        return f"{slot.name}: occupied by a domain the harness did not create"
    return (f"{slot.name}: held by run {record.run_id} (pid {record.pid} on {record.host})"
            f" until {record.deadline.isoformat(timespec='seconds')}")


def renew(lease: Lease, ttl_s: float) -> None:
    """Push the lease's deadline ``ttl_s`` into the future."""
    libvirt = libvirt_module()
    record = lease.record.renewed(ttl_s)
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    with libvirt_errors(f"renewing the lease on {lease.name}"):
        if lease.domain.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        lease.domain.setMetadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT,
            _without_namespace(render_metadata(lease.slot.profile, record)),
            PREFIX, NAMESPACE, flags,
        )
    lease.record = record


def _without_namespace(element_xml: str) -> str:
    """setMetadata wants the element bare: libvirt adds the namespace itself
    and fails if the text already declares it."""
    element = ET.fromstring(element_xml)
    for node in element.iter():
        node.tag = node.tag.rpartition("}")[2]
    return ET.tostring(element, encoding="unicode")


def redefine(lease: Lease, host_ports: Mapping[str, int]) -> None:
    """Define the lease's domain again with other host ports (same uuid,
    so this updates our own definition rather than racing for the name)."""
    rendered = render_domain(lease.slot.profile, lease.record, uuid=lease.uuid,
                             host_ports=host_ports)
    with libvirt_errors(f"redefining {lease.name}"):
        lease.domain = lease.conn.defineXML(rendered.xml)
    lease.rendered = replace(rendered)


def release(lease: Lease) -> None:
    """Give the slot back: destroy, delete its files, undefine. Idempotent."""
    if lease.released:
        return
    try:
        remove_domain(lease.conn, lease.uuid, lease.files, lease.store)
    finally:
        lease.released = True
        close_quietly(lease.conn)
        close_shell(lease.shell)  # a remote hypervisor's SSH connection and the slot's tunnels
