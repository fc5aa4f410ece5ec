"""Find and remove what the harness left behind, and nothing else.

A domain is the harness's only if its XML carries the harness ``<ch:lease>``
metadata (:mod:`harness.vm.metadata`); every other domain on the hypervisor
is invisible to ``vm list`` and untouchable by ``vm gc``. Garbage is a tagged
domain whose lease is stale (holder pid gone on this host, or deadline
passed): ``gc`` destroys it, deletes the overlay, serial log and NVRAM its
metadata names, and undefines it with its snapshot metadata. Live leases of
running harness processes are left alone unless ``include_live`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import VmError
from harness.vm.connection import connection, libvirt_errors, libvirt_module
from harness.vm.images import ShellFactory, close_shell, files_for, shell_for_uri
from harness.vm.lease import read_record, remove_domain
from harness.vm.metadata import LeaseRecord

_STATE_NAMES = {
    0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff",
    6: "crashed", 7: "pmsuspended",
}


@dataclass(frozen=True)
class HarnessDomain:
    """A domain on a hypervisor that carries the harness metadata."""

    uri: str
    name: str
    uuid: str
    state: str
    record: LeaseRecord
    stale_reason: str | None

    @property
    def files(self) -> list[Path]:
        return self.record.files


def _harness_domains(conn: Any, uri: str) -> list[HarnessDomain]:
    found: list[HarnessDomain] = []
    with libvirt_errors(f"listing domains on {uri}"):
        domains = conn.listAllDomains(0)
    for domain in domains:
        record = read_record(domain)
        if record is None:
            continue  # not ours: never listed, never touched
        libvirt = libvirt_module()
        try:
            state = _STATE_NAMES.get(domain.state()[0], "unknown")
            uuid = domain.UUIDString()
        except libvirt.libvirtError:
            continue  # vanished while we looked
        found.append(HarnessDomain(uri=uri, name=domain.name(), uuid=uuid, state=state,
                                   record=record, stale_reason=record.stale_reason()))
    return sorted(found, key=lambda d: d.name)


def list_domains(uris: Iterable[str]) -> list[HarnessDomain]:
    """Every harness-tagged domain on ``uris``."""
    result: list[HarnessDomain] = []
    for uri in uris:
        with connection(uri) as conn:
            result.extend(_harness_domains(conn, uri))
    return result


def collect_garbage(
    uris: Iterable[str],
    *,
    include_live: bool = False,
    shell_factory: ShellFactory = shell_for_uri,
) -> list[HarnessDomain]:
    """Remove stale harness domains (all harness domains with
    ``include_live``) and their files; return what was removed."""
    removed: list[HarnessDomain] = []
    errors: list[str] = []
    for uri in uris:
        shell = shell_factory(uri)
        try:
            with connection(uri) as conn:
                store = files_for(uri, shell, conn)
                for item in _harness_domains(conn, uri):
                    if item.stale_reason is None and not include_live:
                        continue
                    try:
                        if remove_domain(conn, item.uuid, item.files, store):
                            removed.append(item)
                    except VmError as exc:
                        errors.append(str(exc))
        finally:
            close_shell(shell)
    if errors:
        raise VmError("gc could not remove everything: " + "; ".join(errors))
    return removed


def format_table(domains: Iterable[HarnessDomain]) -> str:
    """``vm list`` output: one line per harness domain."""
    rows = [("NAME", "STATE", "PROFILE", "RUN", "HOLDER", "DEADLINE", "LEASE", "URI")]
    for d in domains:
        r = d.record
        rows.append((
            d.name, d.state, r.profile, r.run_id, f"{r.pid}@{r.host}",
            r.deadline.isoformat(timespec="seconds"),
            f"stale: {d.stale_reason}" if d.stale_reason else "live", d.uri,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
