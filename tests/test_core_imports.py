"""The core (trace, contract, engine, scenarios, the sim target, the CLI) works
without libvirt, pywinrm or paramiko: they are blocked here, and a scenario
still runs and is checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROGRAM = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("libvirt", "winrm", "paramiko", "requests", "pefile"):
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, Block())
from harness.cli import main
code = main(["run", "--scenario", "connect-pend-permit,txn-read-only",
             "--scenarios-dir", sys.argv[1], "--out", sys.argv[2]])
heavy = [m for m in ("libvirt", "winrm", "paramiko") if m in sys.modules]
print("RESULT", code, heavy)
"""


def test_core_runs_without_heavy_clients(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(REPO / "scenarios"), str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert "RESULT 0 []" in proc.stdout, proc.stdout + proc.stderr
