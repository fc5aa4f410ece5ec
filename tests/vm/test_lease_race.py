"""Two processes race for one slot on a real libvirtd: exactly one wins."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.vm.connection import connection
from harness.vm.lease import read_record
from tests.support.vm_guest import FIXTURES, REPO
from tests.support.vm_libvirtd import SessionDaemon

CONTENDER = """
import sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from harness.vm.images import LocalShell
from harness.vm.lease import try_lease
from harness.vm.pool import Slot
from harness.vm.profile import find_profile

uri, slot_name, start_at, run_id = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
slot = Slot(name=slot_name, uri=uri, profile=find_profile("linux-tcg", [Path({fixtures!r})]),
            overlay_dir=Path({overlays!r}))
while time.time() < start_at:  # line both contenders up on the same instant
    time.sleep(0.001)
lease = try_lease(slot, run_id=run_id, ttl_s=600, shell=LocalShell(), host_ports={{"ssh": 1}})
print("WON" if lease is not None else "LOST", flush=True)
sys.stdin.read()  # stay alive (a live holder) until the parent has both answers
"""


@pytest.mark.parametrize("round_", range(3))
def test_two_processes_racing_for_one_slot(
    vm_daemon: SessionDaemon, tmp_path: Path, round_: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLOUT_HARNESS_GUEST", str(tmp_path))
    slot = f"ch-race-{round_}"
    script = CONTENDER.format(repo=str(REPO), fixtures=str(FIXTURES), overlays=str(tmp_path))
    start_at = time.time() + 1.5  # both interpreters are up and connected by then
    procs = [
        subprocess.Popen([sys.executable, "-c", script, vm_daemon.uri, slot, str(start_at),
                          f"run-{n}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    answers = [proc.stdout.readline().strip() for proc in procs]  # type: ignore[union-attr]
    results = [proc.communicate(timeout=60) for proc in procs]
    assert sorted(answers) == ["LOST", "WON"], (answers, results)

    with connection(vm_daemon.uri) as conn:
        domain = conn.lookupByName(slot)
        record = read_record(domain)
        assert record is not None and record.run_id in ("run-0", "run-1")
        domain.undefine()
