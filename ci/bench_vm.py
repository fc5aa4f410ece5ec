#!/usr/bin/env python3
"""Benchmark: cold boot-to-ready vs revert-to-ready of the TCG test guests.

Run on demand (not a test): ``.venv/bin/python ci/bench_vm.py [--reverts N]``.
Starts a private session libvirtd as ``nobody`` (needs root), builds or
reuses the cached guest image, and for each profile (``linux-tcg``: BIOS,
internal snapshots; ``linux-tcg-uefi``: OVMF, saved-state snapshots) leases
one slot and in the same run times

* cold boot: domain start -> SSH banner (from the provisioning progress), and
* revert: ``revert('clean')`` of disk and RAM -> SSH banner, N times,

then prints both in seconds and revert as a fraction of cold boot (target:
<= 0.5x). ``--pool`` also times a two-host pool: this machine's daemon and a
second hypervisor in a network namespace (tests/support/vm_remote.py, over
qemu+libssh), one linux-tcg slot each, running five catalog scenarios with
``pytest --vm-pool POOL -n 2`` and then ``-n 1`` (wall time of each run; with
-n 1 only the first slot is used). Both "hosts" share this machine's cores,
so the figure shows the pool's overhead more than a lab's speed-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.vm.metadata import new_run_id  # noqa: E402
from harness.vm.pool import single_slot_pool  # noqa: E402
from harness.vm.profile import find_profile  # noqa: E402
from harness.vm.progress import ProgressEvent  # noqa: E402
from harness.vm.provision import leased_machine  # noqa: E402
from tests.support.vm_guest import FIXTURES, image_cache_dir, load_image_builder  # noqa: E402
from tests.support.vm_libvirtd import SessionDaemon, remove_tree, start_session_daemon  # noqa: E402
from tests.support.vm_remote import RemoteHost, start_remote_host  # noqa: E402

PROFILES = ("linux-tcg", "linux-tcg-uefi")
SCENARIOS = ("connect-pend-block", "recv-accept-reinject", "closure-udp-many-peers",
             "txn-wait-default-timeout", "stream-out-of-band")


def bench_profile(daemon: SessionDaemon, name: str, reverts: int) -> tuple[str, float, list[float]]:
    """(snapshot kind, cold boot s, revert s list) for one profile."""
    profile = find_profile(name, [FIXTURES])
    boot_s: list[float] = []

    def progress(event: ProgressEvent) -> None:
        if event.step == "boot" and event.done and event.elapsed_s is not None:
            boot_s.append(event.elapsed_s)

    pool = single_slot_pool(profile, name=f"ch-bench-{name}", uri=daemon.uri,
                            overlay_dir=daemon.workdir("overlays"))
    with leased_machine(pool, run_id=new_run_id(), progress=progress,
                        shell_factory=lambda _uri: daemon.shell, boot_timeout_s=300) as machine:
        kind = machine.snapshots.kind
        times = [machine.revert(profile.snapshots.clean) for _ in range(reverts)]
    return kind, boot_s[0], times


def bench_pool(daemon: SessionDaemon, remote: RemoteHost, image: Any) -> dict[int, float]:
    """Wall seconds of the five scenarios on the two-host pool, by worker count."""
    pool = Path(daemon.workdir("bench-pool")) / "two-hosts.toml"
    pool.write_text(
        f'[pool]\nlease_ttl_s = 3600\noverlay_dir = "{daemon.workdir("bench-a")}"\n\n'
        f'[[slot]]\nname = "ch-bench-a"\nuri = "{daemon.uri}"\nprofile = "linux-tcg"\n\n'
        f'[[slot]]\nname = "ch-bench-b"\nuri = "{remote.uri}"\nprofile = "linux-tcg"\n'
        f'overlay_dir = "{remote.workdir("bench-b")}"\n')
    env = dict(os.environ, CALLOUT_HARNESS_SSH_USER="root",
               CALLOUT_HARNESS_SSH_KEY=str(image.private_key))
    env.pop("PYTEST_XDIST_WORKER", None)
    wall: dict[int, float] = {}
    for workers in (2, 1):
        out = daemon.workdir(f"bench-out-{workers}")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "scenarios", "-k", " or ".join(SCENARIOS),
             "--vm-pool", str(pool), "-n", str(workers), "--harness-out", str(out),
             "-p", "no:cacheprovider", "-p", "no:randomly", "-q"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
        wall[workers] = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"the -n {workers} pool run failed:\n{done.stdout[-3000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reverts", type=int, default=5, metavar="N",
                        help="how many reverts to time per profile (default 5)")
    parser.add_argument("--profiles", default=",".join(PROFILES), metavar="A,B",
                        help=f"profiles to time (default {','.join(PROFILES)})")
    parser.add_argument("--pool", action="store_true",
                        help="also time the two-host pool (5 scenarios, -n 2 vs -n 1)")
    args = parser.parse_args()
    if not 1 <= args.reverts <= 100:
        parser.error("--reverts: expected 1 to 100")
    image = load_image_builder().build_image(image_cache_dir())
    os.environ["CALLOUT_HARNESS_GUEST"] = str(image.directory)
    results: dict[str, tuple[str, float, list[float]]] = {}
    wall: dict[int, float] = {}
    daemon = start_session_daemon()
    try:
        for name in args.profiles.split(","):
            if name:
                results[name] = bench_profile(daemon, name, args.reverts)
        if args.pool:
            remote = start_remote_host()
            try:
                wall = bench_pool(daemon, remote, image)
            finally:
                remote.stop()
    finally:
        daemon.stop()
        remove_tree(daemon.root)
    for name, (kind, cold, reverts) in results.items():
        revert = statistics.median(reverts)
        print(f"{name} ({kind} snapshots)")
        print(f"  cold boot to ready:  {cold:6.2f} s")
        print(f"  revert to ready:     {revert:6.2f} s (median of {len(reverts)}:"
              f" {', '.join(f'{r:.2f}' for r in reverts)})")
        print(f"  revert / cold boot:  {revert / cold:6.2f}x")
    if wall:
        print(f"two-host pool, {len(SCENARIOS)} scenarios (a linux-tcg slot here and one over"
              " qemu+libssh)")
        print(f"  -n 2 (both hosts):   {wall[2]:6.1f} s")
        print(f"  -n 1 (one host):     {wall[1]:6.1f} s")
        print(f"  -n 2 / -n 1:         {wall[2] / wall[1]:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
