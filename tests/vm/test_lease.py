"""Leases on libvirt's built-in test driver (no daemon): one holder per
slot, stale holders reclaimed, foreign domains never touched."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import LeaseError
from harness.vm.domainxml import render_domain
from harness.vm.images import LocalShell
from harness.vm.lease import Lease, acquire, read_record, release, renew, try_lease
from harness.vm.metadata import LeaseRecord, utc_now
from harness.vm.pool import Pool, Slot
from harness.vm.profile import find_profile
from tests.support.vm_guest import FIXTURES

URI = "test:///default"
SHELL = LocalShell()



@pytest.fixture
def slots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Slot]:
    monkeypatch.setenv("CALLOUT_HARNESS_GUEST", str(tmp_path))
    profile = find_profile("linux-tcg", [FIXTURES])
    return [Slot(name=f"ch-lease-{i}", uri=URI, profile=profile, overlay_dir=tmp_path)
            for i in range(2)]


def lease(slot: Slot, run_id: str = "run-a") -> Lease | None:
    return try_lease(slot, run_id=run_id, ttl_s=600, shell=SHELL, host_ports={"ssh": 40022})


def plant(conn: Any, slot: Slot, record: LeaseRecord) -> str:
    """Define a domain for ``slot`` as some other holder would have."""
    domain_uuid = str(uuid.uuid4())
    xml = render_domain(slot.profile, record, uuid=domain_uuid, host_ports={"ssh": 1}).xml
    conn.defineXML(xml)
    record.overlay.write_bytes(b"old overlay")
    return domain_uuid


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_held_slot_is_not_leased_twice(conn: Any, slots: list[Slot]) -> None:
    first = lease(slots[0])
    assert first is not None
    assert lease(slots[0], "run-b") is None
    record = read_record(conn.lookupByName(slots[0].name))
    assert record is not None and record.run_id == "run-a"
    release(first)
    assert slots[0].name not in {d.name() for d in conn.listAllDomains(0)}


def test_racing_threads_get_exactly_one_lease(conn: Any, slots: list[Slot]) -> None:
    barrier = threading.Barrier(8)
    won: list[Lease] = []

    def contender(n: int) -> None:
        barrier.wait()
        result = lease(slots[0], f"run-{n}")
        if result is not None:
            won.append(result)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    release(won[0])


def test_lease_of_a_dead_pid_is_reclaimed(conn: Any, slots: list[Slot]) -> None:
    stale = replace(LeaseRecord.new(slot=slots[0].name, run_id="crashed-run",
                                    profile="linux-tcg", ttl_s=3600,
                                    work_dir=slots[0].overlay_dir), pid=dead_pid())
    old_uuid = plant(conn, slots[0], stale)

    fresh = lease(slots[0], "run-new")

    assert fresh is not None and fresh.uuid != old_uuid
    assert fresh.record.run_id == "run-new"
    assert not stale.overlay.exists()
    release(fresh)


def test_lease_past_its_deadline_is_reclaimed_even_from_another_host(
    conn: Any, slots: list[Slot]
) -> None:
    past = utc_now() - dt.timedelta(minutes=5)
    stale = replace(LeaseRecord.new(slot=slots[0].name, run_id="old-run", profile="linux-tcg",
                                    ttl_s=60, work_dir=slots[0].overlay_dir),
                    host="hv-elsewhere", pid=1, deadline=past)
    plant(conn, slots[0], stale)
    fresh = lease(slots[0])
    assert fresh is not None
    release(fresh)


def test_live_lease_on_another_host_is_respected(conn: Any, slots: list[Slot]) -> None:
    # pid 1 certainly exists here, but on another host it means nothing: the
    # deadline alone decides, and it has not passed
    other = replace(LeaseRecord.new(slot=slots[0].name, run_id="elsewhere", profile="linux-tcg",
                                    ttl_s=3600, work_dir=slots[0].overlay_dir),
                    host="hv-elsewhere", pid=dead_pid())
    plant(conn, slots[0], other)
    assert lease(slots[0]) is None
    assert other.overlay.exists()


def test_a_foreign_domain_with_the_slot_name_is_never_touched(
    conn: Any, slots: list[Slot]
) -> None:
    conn.defineXML(f"<domain type='test'><name>{slots[0].name}</name>"
                   "<memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>")
    assert lease(slots[0]) is None
    pool = Pool(path=None, slots=(slots[0],), lease_ttl_s=600)
    with pytest.raises(LeaseError, match="occupied by a domain the harness did not create"):
        acquire(pool, run_id="r", wait_timeout_s=0.2)
    assert read_record(conn.lookupByName(slots[0].name)) is None


def test_workers_get_different_slots_and_a_full_pool_names_holders(
    conn: Any, slots: list[Slot]
) -> None:
    pool = Pool(path=None, slots=tuple(slots), lease_ttl_s=600)
    first = acquire(pool, run_id="run-w0", worker_index=0, wait_timeout_s=1)
    second = acquire(pool, run_id="run-w1", worker_index=0, wait_timeout_s=1)
    assert {first.name, second.name} == {s.name for s in slots}
    with pytest.raises(LeaseError) as caught:
        acquire(pool, run_id="run-w2", wait_timeout_s=0.3)
    assert "held by run run-w0" in str(caught.value)
    assert "held by run run-w1" in str(caught.value)
    release(first)
    release(second)


def test_release_removes_domain_snapshots_and_files(conn: Any, slots: list[Slot]) -> None:
    held = lease(slots[0])
    assert held is not None
    held.domain.create()
    held.domain.snapshotCreateXML("<domainsnapshot><name>clean</name></domainsnapshot>", 0)
    for path in held.files:
        path.write_bytes(b"x")
    release(held)
    release(held)  # idempotent
    assert slots[0].name not in {d.name() for d in conn.listAllDomains(0)}
    assert not any(path.exists() for path in held.files)


def test_renew_moves_the_deadline(conn: Any, slots: list[Slot]) -> None:
    held = lease(slots[0])
    assert held is not None
    before = read_record(held.domain)
    assert before is not None
    renew(held, 7200)
    after = read_record(conn.lookupByName(slots[0].name))
    assert after is not None and after.deadline > before.deadline + dt.timedelta(minutes=100)
    assert after.token == before.token
    release(held)



def test_a_reused_pid_does_not_keep_a_dead_lease_alive(conn: Any, slots: list[Slot]) -> None:
    # the holder's pid now belongs to another process (this one), which
    # started at another time than the record says
    reused = replace(LeaseRecord.new(slot=slots[0].name, run_id="long-gone", profile="linux-tcg",
                                     ttl_s=3600, work_dir=slots[0].overlay_dir),
                     pid_start="1")
    assert "pid reused" in (reused.stale_reason() or "")
    plant(conn, slots[0], reused)
    fresh = lease(slots[0])
    assert fresh is not None
    release(fresh)
