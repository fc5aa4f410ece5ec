"""Pool files: the VM slots a run may lease, across several hypervisors.

A pool is TOML::

    [pool]
    lease_ttl_s = 14400             # a lease not renewed for this long is stale
    overlay_dir = "/var/lib/callout-harness/overlays"   # on each hypervisor

    [[slot]]
    name = "ch-win11-a"             # also the libvirt domain name: the lock
    uri = "qemu:///system"
    profile = "win11"

    [[slot]]
    name = "ch-win11-b"
    uri = "qemu+ssh://hv2/system"
    profile = "win11"
    overlay_dir = "/srv/overlays"   # per-slot override

A slot on a remote hypervisor (``qemu+ssh://``, ``qemu+libssh://``) has its
files made through libvirt's storage pool API (:mod:`harness.vm.storage`)
and its guest's forwarded ports reached through an SSH tunnel per slot
(:mod:`harness.vm.hostssh`), the hypervisor's host key checked against
known_hosts. Each slot names a profile, found by name in the profile directories. Loading
validates everything (unknown keys, duplicate slot names, unknown profiles)
with one-line errors, and needs no libvirt; leasing lives in
:mod:`harness.vm.lease`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PoolError, ProfileError
from harness.tomlfile import Document
from harness.vm.profile import Profile, find_profile

DEFAULT_LEASE_TTL_S = 4 * 3600
# Slot names become libvirt domain names and file names: keep them plain.
_SLOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_URI = re.compile(r"[a-z][a-z0-9+]*://[^\s]*")


@dataclass(frozen=True)
class Slot:
    """One leasable VM: a domain name on a hypervisor, running a profile."""

    name: str
    uri: str
    profile: Profile
    overlay_dir: Path


@dataclass(frozen=True)
class Pool:
    path: Path | None
    slots: tuple[Slot, ...]
    lease_ttl_s: int

    @property
    def uris(self) -> list[str]:
        """The distinct libvirt URIs of the pool, in file order."""
        return list(dict.fromkeys(slot.uri for slot in self.slots))

    def only_profile(self, name: str) -> Pool:
        """The slots of one profile (``--vm win11 --vm-pool lab.toml``)."""
        return Pool(self.path, tuple(s for s in self.slots if s.profile.name == name),
                    self.lease_ttl_s)


def load_pool(path: str | Path, profile_dirs: Iterable[str | Path] = ()) -> Pool:
    """Load and validate a pool file.

    Profiles are looked up by name in ``profile_dirs`` and then in the pool
    file's own folder. Raises PoolError (or the profile's ProfileError) for
    any mistake, naming the file, line and key.
    """
    doc = Document(Path(path), PoolError)
    root = doc.root()
    settings = root.table("pool")
    ttl = settings.integer("lease_ttl_s", default=DEFAULT_LEASE_TTL_S, minimum=60)
    default_dir = settings.path("overlay_dir")
    settings.finish()
    search = [*(Path(d) for d in profile_dirs), doc.path.parent]
    slots: list[Slot] = []
    seen: dict[str, int] = {}
    entries = root.tables("slot")
    if not entries:
        raise root.error("slot", expected="at least one [[slot]]", found=[])
    for index, entry in enumerate(entries):
        name = entry.string("name", pattern=_SLOT_NAME, what="a domain name ([A-Za-z0-9_.-])")
        if name in seen:
            raise entry.error("name", expected=f"a name not used by slot[{seen[name]}]",
                              found=name)
        seen[name] = index
        uri = entry.string("uri", pattern=_URI, what="a libvirt URI")
        profile_name = entry.string("profile")
        try:
            profile = find_profile(profile_name, search)
        except ProfileError as exc:
            if exc.found == "no such file" or exc.path == profile_name:
                raise entry.error(
                    "profile",
                    expected=f"a profile in {', '.join(str(d) for d in search)}",
                    found=profile_name,
                ) from exc
            raise
        overlay_dir = entry.path("overlay_dir", default=default_dir)
        entry.finish()
        slots.append(Slot(name=name, uri=uri, profile=profile, overlay_dir=overlay_dir))
    root.finish()
    return Pool(path=doc.path, slots=tuple(slots), lease_ttl_s=ttl)


def single_slot_pool(
    profile: Profile,
    *,
    name: str,
    overlay_dir: Path,
    uri: str | None = None,
    lease_ttl_s: int = DEFAULT_LEASE_TTL_S,
) -> Pool:
    """A one-slot pool for ``pytest --vm PROFILE`` (no pool file)."""
    if not _SLOT_NAME.fullmatch(name):
        raise PoolError("<command line>", key="slot", expected="a domain name", found=name)
    slot = Slot(name=name, uri=uri or profile.uri, profile=profile, overlay_dir=overlay_dir)
    return Pool(path=None, slots=(slot,), lease_ttl_s=lease_ttl_s)


def slot_order(slots: Sequence[Slot], worker_index: int) -> list[Slot]:
    """The order in which a worker tries the slots.

    Worker N starts at slot N (mod the pool size), so xdist workers do not
    all race for the first slot.
    """
    if not slots:
        return []
    start = worker_index % len(slots)
    return [*slots[start:], *slots[:start]]
