"""Run the agent under Wine on the controller: the socket steps for real, BFE as Wine's stub.

Wine's fwpuclnt answers FwpmEngineOpen0 with RPC_S_CANNOT_SUPPORT and its
ETW calls are stubs, so this runs what can run off Windows: the agent's plan
reader, its Winsock steps against loopback peers, its error reporting, and
its event stream through ``--events`` / ``--dump-tlg``. Used by the tests and
handy at a desk (``python -m harness.agent.wine PLAN.json``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TargetError

WINE_CANDIDATES = ("wine64", "wine", "/usr/lib/wine/wine64")
RUN_TIMEOUT_S = 300.0


def find_wine() -> str | None:
    for name in WINE_CANDIDATES:
        found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def windows_path(path: Path) -> str:
    """A Linux path as Wine's Z: drive sees it."""
    return "Z:" + str(path.resolve()).replace("/", "\\")


@dataclass(frozen=True)
class WineRun:
    returncode: int
    results: Path
    events: Path
    dump: Path
    stderr: str


def run_agent(image: Path, plan: Path, work: Path, *, prefix: Path) -> WineRun:
    wine = find_wine()
    if wine is None:
        raise TargetError("Wine is not installed (Debian package wine64)")
    work.mkdir(parents=True, exist_ok=True)
    results, events, dump = work / "results.json", work / "events.jsonl", work / "dump.jsonl"
    # no Mono or Gecko prompts when Wine creates the prefix
    env = dict(os.environ, WINEPREFIX=str(prefix), WINEDEBUG="-all",
               WINEDLLOVERRIDES="mscoree,mshtml=")
    done = subprocess.run(
        [wine, str(image), "--plan", windows_path(plan), "--results", windows_path(results),
         "--events", windows_path(events), "--dump-tlg", windows_path(dump)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, check=False)
    return WineRun(done.returncode, results, events, dump, done.stderr)


if __name__ == "__main__":  # pragma: no cover
    from harness.agent.build import build_agent

    plan_path = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else plan_path.parent / "agent-run"
    image = build_agent(out / "bin").image
    run = run_agent(image, plan_path, out, prefix=out / "wineprefix")
    print(run.results.read_text() if run.results.exists() else run.stderr)
    sys.exit(run.returncode)
