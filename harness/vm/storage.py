"""File work on a remote hypervisor through libvirt's storage pool API.

On ``qemu+ssh://hv2/system`` the slot's files (overlay, NVRAM copy, saved
states, serial log, dumps) live on hv2. :class:`PoolFiles` reaches them
through the libvirt connection the harness already has, so a hypervisor
needs no shell access for the common work:

* each directory the harness uses (the pool's ``overlay_dir``, a lease's
  ``.states`` folder) is a transient ``dir`` storage pool, created (and
  built) on first use and looked up by its target path afterwards;
* an overlay is a qcow2 volume with a ``<backingStore>`` (the base image, or
  a frozen saved state);
* a copy (the NVRAM into a saved state and back) is a volume cloned from
  another (``virStorageVolCreateXMLFrom``) with the wanted permissions;
* a file coming back (a dump, the serial log) is a ``virStorageVolDownload``
  stream; deleting is ``virStorageVolDelete``;
* save files and dumps are written by the hypervisor itself
  (``virDomainSaveFlags``, ``virDomainCoreDumpWithFormat``).

Only renaming a file and taking away its write permission have no storage
call; those two go over the slot's SSH connection
(:class:`harness.vm.hostssh.HypervisorSsh`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from harness.errors import VmError
from harness.vm.connection import error_code, libvirt_errors, libvirt_module

if TYPE_CHECKING:  # images picks this module for remote URIs: no import back at run time
    from harness.vm.images import HostShell

_POOL_PREFIX = "callout-harness-"
_DOWNLOAD_LIMIT = 64 * 1024 * 1024 * 1024  # a dump is at most the guest's RAM


def pool_name(directory: Path) -> str:
    """A stable pool name for ``directory`` (the same from every controller)."""
    return _POOL_PREFIX + hashlib.sha256(str(directory).encode()).hexdigest()[:16]


class PoolFiles:
    """HostFiles through the storage pool API of ``conn``; ``shell`` for the rest."""

    def __init__(self, conn: Any, shell: HostShell) -> None:
        self.conn = conn
        self.shell = shell

    @property
    def description(self) -> str:
        return f"{self.shell.description} (libvirt storage)"

    # -- pools -----------------------------------------------------------------
    def _pool_made(self, directory: Path) -> Any:
        """The active pool whose target is ``directory``, made if missing."""
        pool = self._pool(directory, create=True)
        if pool is None:
            raise VmError(f"no storage pool for {directory} on {self.description}")
        return pool

    def _pool(self, directory: Path, *, create: bool) -> Any | None:
        """The active pool whose target is ``directory``; made if ``create``."""
        libvirt = libvirt_module()
        name = pool_name(directory)
        try:
            pool = self.conn.storagePoolLookupByName(name)
            if not pool.isActive():
                pool.create(0)
            return pool
        except libvirt.libvirtError as exc:
            if error_code(exc) != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise VmError(f"storage pool for {directory} on {self.description}:"
                              f" {exc.get_error_message()}") from exc
        if not create:
            return None
        xml = (f"<pool type='dir'><name>{name}</name><target><path>{escape(str(directory))}"
               "</path><permissions><mode>0755</mode></permissions></target></pool>")
        try:
            return self.conn.storagePoolCreateXML(xml, libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)
        except libvirt.libvirtError as exc:
            try:  # another worker made it meanwhile
                return self.conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                raise VmError(f"creating a storage pool for {directory} on {self.description}:"
                              f" {exc.get_error_message()}") from exc

    def _volume(self, path: Path) -> Any | None:
        """The volume at ``path``, None if there is no such file."""
        libvirt = libvirt_module()
        pool = self._pool(path.parent, create=False)
        if pool is None:
            return None
        for attempt in range(2):
            try:
                return pool.storageVolLookupByName(path.name)
            except libvirt.libvirtError as exc:
                if error_code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise VmError(f"looking up {path} on {self.description}:"
                                  f" {exc.get_error_message()}") from exc
            if attempt == 0:
                # libvirt (the domain, a dump) or QEMU wrote it: the pool has not seen it yet
                with libvirt_errors(f"rescanning {path.parent} on {self.description}"):
                    pool.refresh(0)
        return None

    def _rescan(self, *directories: Path) -> None:
        for directory in dict.fromkeys(directories):
            pool = self._pool(directory, create=False)
            if pool is not None:
                with libvirt_errors(f"rescanning {directory} on {self.description}"):
                    pool.refresh(0)

    # -- HostFiles -------------------------------------------------------------
    def make_dir(self, path: Path) -> None:
        self._pool(path, create=True)

    def create_overlay(self, backing: Path, backing_format: str, overlay: Path) -> None:
        pool = self._pool_made(overlay.parent)
        self.remove([overlay])
        # capacity 0: the overlay takes the backing image's size
        xml = (f"<volume><name>{escape(overlay.name)}</name><capacity>0</capacity>"
               "<target><format type='qcow2'/><permissions><mode>0600</mode></permissions>"
               f"</target><backingStore><path>{escape(str(backing))}</path>"
               f"<format type='{escape(backing_format)}'/></backingStore></volume>")
        with libvirt_errors(f"creating the overlay {overlay} on {self.description}"):
            pool.createXML(xml, 0)

    def remove(self, paths: Sequence[Path]) -> None:
        libvirt = libvirt_module()
        for path in paths:
            inner = self._pool(path, create=False)
            if inner is not None:  # a folder of ours (a lease's .states): empty it first
                with libvirt_errors(f"emptying {path} on {self.description}"):
                    inner.refresh(0)  # files libvirt or QEMU wrote since the last look
                    for volume in inner.listAllVolumes(0):
                        volume.delete(0)
                    inner.destroy()
            volume = self._volume(path)
            if volume is None:
                continue
            try:
                volume.delete(0)
            except libvirt.libvirtError as exc:
                if error_code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise VmError(f"deleting {path} on {self.description}:"
                                  f" {exc.get_error_message()}") from exc

    def copy(self, source: Path, dest: Path, *, mode: int) -> None:
        original = self._volume(source)
        if original is None:
            raise VmError(f"copying {source} on {self.description}: no such file")
        pool = self._pool_made(dest.parent)
        self.remove([dest])
        with libvirt_errors(f"reading {source} on {self.description}"):
            kind = _format_of(original.XMLDesc(0))
        xml = (f"<volume><name>{escape(dest.name)}</name><capacity>0</capacity><target>"
               f"<format type='{kind}'/><permissions><mode>{mode:04o}</mode></permissions>"
               "</target></volume>")
        with libvirt_errors(f"copying {source} to {dest} on {self.description}"):
            pool.createXMLFrom(xml, original, 0)

    def rename(self, source: Path, dest: Path) -> None:
        # no storage call renames a volume
        self.shell.run(["mv", "-f", "--", str(source), str(dest)])
        self._rescan(source.parent, dest.parent)

    def make_read_only(self, paths: Sequence[Path]) -> None:
        # nor changes the permissions of an existing one
        if paths:
            self.shell.run(["chmod", "a-w", "--", *(str(p) for p in paths)])

    def fetch(self, remote: Path, local: Path) -> None:
        libvirt = libvirt_module()
        volume = self._volume(remote)
        if volume is None:
            raise VmError(f"copying {remote} from {self.description}: no such file")
        local.parent.mkdir(parents=True, exist_ok=True)
        stream = self.conn.newStream(0)
        received = [0]
        try:
            with local.open("wb") as out, libvirt_errors(
                    f"downloading {remote} from {self.description}"):
                volume.download(stream, 0, 0, 0)

                def sink(_stream: Any, data: bytes, _opaque: Any) -> int:
                    received[0] += len(data)
                    if received[0] > _DOWNLOAD_LIMIT:
                        raise VmError(f"{remote} is larger than {_DOWNLOAD_LIMIT} bytes")
                    return out.write(data)

                stream.recvAll(sink, None)
                stream.finish()
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise


def _format_of(volume_xml: str) -> str:
    """The format type of a volume (``raw`` if libvirt names none)."""
    import xml.etree.ElementTree as ET

    found = ET.fromstring(volume_xml).find("target/format")
    kind = found.get("type") if found is not None else None
    return kind or "raw"
