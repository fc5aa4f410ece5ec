#!/usr/bin/env python3
"""Benchmark: cold boot-to-ready vs revert-to-ready of the TCG test guest.

Run on demand (not a test): ``.venv/bin/python ci/bench_vm.py [--reverts N]``.
Starts a private session libvirtd as ``nobody`` (needs root), builds or
reuses the cached guest image, leases one slot, and in the same run times

* cold boot: domain start -> SSH banner (from the provisioning progress), and
* revert: ``revert('clean')`` of disk and RAM -> SSH banner, N times,

then prints both in seconds and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.vm.metadata import new_run_id  # noqa: E402
from harness.vm.pool import single_slot_pool  # noqa: E402
from harness.vm.profile import find_profile  # noqa: E402
from harness.vm.progress import ProgressEvent  # noqa: E402
from harness.vm.provision import leased_machine  # noqa: E402
from tests.support.vm_guest import FIXTURES, image_cache_dir, load_image_builder  # noqa: E402
from tests.support.vm_libvirtd import remove_tree, start_session_daemon  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reverts", type=int, default=5, metavar="N",
                        help="how many reverts to time (default 5)")
    args = parser.parse_args()
    image = load_image_builder().build_image(image_cache_dir())
    os.environ["CALLOUT_HARNESS_GUEST"] = str(image.directory)
    profile = find_profile("linux-tcg", [FIXTURES])
    daemon = start_session_daemon()
    boot_s: list[float] = []

    def progress(event: ProgressEvent) -> None:
        if event.step == "boot" and event.done and event.elapsed_s is not None:
            boot_s.append(event.elapsed_s)

    try:
        pool = single_slot_pool(profile, name="ch-bench", uri=daemon.uri,
                                overlay_dir=daemon.workdir("overlays"))
        with leased_machine(pool, run_id=new_run_id(), progress=progress,
                            shell_factory=lambda _uri: daemon.shell) as machine:
            reverts = [machine.revert(profile.snapshots.clean) for _ in range(args.reverts)]
    finally:
        daemon.stop()
        remove_tree(daemon.root)
    cold = boot_s[0]
    revert = statistics.median(reverts)
    print(f"cold boot to ready:  {cold:6.2f} s")
    print(f"revert to ready:     {revert:6.2f} s (median of {len(reverts)}:"
          f" {', '.join(f'{r:.2f}' for r in reverts)})")
    print(f"ratio boot/revert:   {cold / revert:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
