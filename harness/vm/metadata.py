"""The harness's mark on a libvirt domain: who holds it, and until when.

Every domain the harness defines carries one ``<ch:lease>`` element in the
harness's own XML namespace inside ``<metadata>``. It is both the proof that
the harness created the domain (``vm gc`` touches nothing without it) and the
lease record: the holder's run id, host and pid, the profile, when it was
created and the deadline after which anyone may reclaim it.

Standard library only.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

NAMESPACE = "https://callout-harness.dev/xmlns/domain/1"
PREFIX = "ch"
ELEMENT = "lease"
_FIELDS = (
    "slot", "run-id", "host", "pid", "pid-start", "profile", "created-at", "deadline", "token",
    "overlay", "serial-log",
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LeaseRecord:
    """What the harness writes into a domain's metadata."""

    slot: str
    run_id: str
    host: str
    pid: int
    pid_start: str
    profile: str
    created_at: dt.datetime
    deadline: dt.datetime
    token: str
    overlay: Path
    serial_log: Path

    @classmethod
    def new(
        cls,
        *,
        slot: str,
        run_id: str,
        profile: str,
        ttl_s: float,
        work_dir: Path,
        now: dt.datetime | None = None,
    ) -> LeaseRecord:
        """A record for this process; the token makes the overlay name unique
        per lease, so a late reclaimer never deletes a newer lease's disk."""
        created = now or utc_now()
        token = secrets.token_hex(4)
        return cls(
            slot=slot,
            run_id=run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_start=process_start(os.getpid()),
            profile=profile,
            created_at=created,
            deadline=created + dt.timedelta(seconds=ttl_s),
            token=token,
            overlay=work_dir / f"{slot}-{token}.qcow2",
            serial_log=work_dir / f"{slot}-{token}.serial.log",
        )

    @property
    def nvram(self) -> Path:
        """Where a UEFI slot's NVRAM copy lives (next to the overlay)."""
        return self.overlay.with_name(f"{self.slot}-{self.token}.nvram.fd")

    @property
    def states(self) -> Path:
        """The folder of a saved-state slot's snapshots (save files, frozen
        overlays and NVRAM copies), next to the overlay."""
        return self.overlay.with_name(f"{self.slot}-{self.token}.states")

    @property
    def files(self) -> list[Path]:
        """Every file (and the one folder) on the hypervisor that this lease
        may have created."""
        return [self.overlay, self.serial_log, self.nvram, self.states]

    def renewed(self, ttl_s: float, now: dt.datetime | None = None) -> LeaseRecord:
        return replace(self, deadline=(now or utc_now()) + dt.timedelta(seconds=ttl_s))

    def values(self) -> dict[str, str]:
        """Template values for ``fixtures/templates/fragments/metadata.xml``."""
        return {
            "slot": self.slot,
            "run_id": self.run_id,
            "host": self.host,
            "pid": str(self.pid),
            "pid_start": self.pid_start or "unknown",
            "profile": self.profile,
            "created_at": _iso(self.created_at),
            "deadline": _iso(self.deadline),
            "token": self.token,
            "overlay": str(self.overlay),
            "serial_log": str(self.serial_log),
        }

    def stale_reason(
        self,
        *,
        now: dt.datetime | None = None,
        this_host: str | None = None,
        pid_alive: Callable[[int], bool] | None = None,
    ) -> str | None:
        """Why this lease may be reclaimed, or None while its holder lives.

        A pid is only meaningful on the host that wrote it; a holder on
        another host is judged by the deadline alone.
        """
        moment = now or utc_now()
        if moment >= self.deadline:
            return f"deadline {_iso(self.deadline)} has passed"
        host = this_host if this_host is not None else socket.gethostname()
        alive = pid_alive or process_alive
        if self.host == host:
            if not alive(self.pid):
                return f"holder pid {self.pid} on {self.host} is gone"
            if pid_alive is None and self.pid_start and self.pid_start != "unknown":
                started = process_start(self.pid)
                if started and started != self.pid_start:
                    return f"holder pid {self.pid} on {self.host} is gone (pid reused)"
        return None


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie, killed
    but not yet reaped by its parent, does not count)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    return process_state(pid) not in ("Z", "X")


def process_state(pid: int) -> str:
    """The one-letter state of ``pid`` from /proc ("" if unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else ""


def process_start(pid: int) -> str:
    """When ``pid`` started, in clock ticks since boot ("" if unknown).

    With the pid it identifies a process even after the pid is reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # fields after the parenthesised command name start at field 3;
    # starttime is field 22
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def parse_record(xml_text: str) -> LeaseRecord | None:
    """The record in a ``<lease>`` element (as libvirt returns it), or None
    when the text is not a well-formed harness record."""
    try:
        element = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    if element.tag != f"{{{NAMESPACE}}}{ELEMENT}":
        return None
    found: dict[str, str] = {}
    for name in _FIELDS:
        # libvirt's setMetadata namespaces only the root element; children
        # written through it come back without a namespace.
        child = element.find(f"{{{NAMESPACE}}}{name}")
        if child is None:
            child = element.find(name)
        if child is None or child.text is None:
            return None
        found[name] = child.text.strip()
    try:
        return LeaseRecord(
            slot=found["slot"],
            run_id=found["run-id"],
            host=found["host"],
            pid=int(found["pid"]),
            pid_start="" if found["pid-start"] == "unknown" else found["pid-start"],
            profile=found["profile"],
            created_at=dt.datetime.fromisoformat(found["created-at"]),
            deadline=dt.datetime.fromisoformat(found["deadline"]),
            token=found["token"],
            overlay=Path(found["overlay"]),
            serial_log=Path(found["serial-log"]),
        )
    except ValueError:
        return None


def record_from_domain_xml(domain_xml: str) -> LeaseRecord | None:
    """The harness record inside a full domain XML document, if any."""
    try:
        root = ET.fromstring(domain_xml)
    except ET.ParseError:
        return None
    element = root.find(f"metadata/{{{NAMESPACE}}}{ELEMENT}")
    if element is None:
        return None
    return parse_record(ET.tostring(element, encoding="unicode"))


def new_run_id() -> str:
    """A run id for one harness invocation (shared by its xdist workers)."""
    return utc_now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
