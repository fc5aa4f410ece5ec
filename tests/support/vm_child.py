"""A child process that leases and boots one slot, for interrupt tests.

Run as ``python tests/support/vm_child.py URI SLOT OVERLAY_DIR USER [PROFILE]``
with $CALLOUT_HARNESS_GUEST set (PROFILE: ``linux-tcg``, or ``linux-tcg-uefi``). It prints every progress event on its own
line (flushed) so the parent can interrupt it at a chosen step, then
``HOLDING`` once the guest is up, and waits to be signalled.
"""

from __future__ import annotations

import pwd
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.vm.images import LocalShell
from harness.vm.metadata import new_run_id
from harness.vm.pool import single_slot_pool
from harness.vm.profile import find_profile
from harness.vm.progress import ProgressEvent
from harness.vm.provision import leased_machine

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def main(uri: str, slot: str, overlay_dir: str, user: str, profile: str = "linux-tcg") -> int:
    entry = pwd.getpwnam(user)
    shell = LocalShell(prefix=("setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                               "--clear-groups", "--"))
    pool = single_slot_pool(find_profile(profile, [FIXTURES]), name=slot,
                            overlay_dir=Path(overlay_dir), uri=uri)

    def show(event: ProgressEvent) -> None:
        print(f"{event.step}: {event.message}", flush=True)

    with leased_machine(pool, run_id=new_run_id(), progress=show,
                        shell_factory=lambda _uri: shell, boot_timeout_s=180):
        print("HOLDING", flush=True)
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
