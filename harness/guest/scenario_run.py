"""Run one scenario in a Windows guest: the step agent, one ETW session, the trace back.

The VM target calls this for a Windows profile after reverting to golden::

    plan upload   the scenario compiled into a step plan (harness.agent.plan),
                  copied to C:\\callout-harness\\runs\\<scenario>-seed<N>\\plan.json
    ETW           logman: one file session for the driver's provider and the
                  agent's, QPC clock, 1 MB buffers (-bs 1024 -nb 16 256)
    agent         harness-agent.exe as a SYSTEM scheduled task (a child of the
                  WinRM shell would die with the shell), the host polling for
                  its results file with bounded waits
    .etl back     the session stopped, the .etl gzip-compressed in the guest and
                  fetched in chunks (SHA-256 checked), decompressed here
    decode        harness.etw: container, TraceLogging, both providers mapped
                  onto one trace on the session's clock (refused if ETW lost
                  events); then each step's outcome or status from the results

The task is removed however the run ends.
"""

from __future__ import annotations

import gzip
import ntpath
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.agent import AGENT_PROVIDER
from harness.agent.plan import write_plan
from harness.agent.results import read_results
from harness.errors import TargetError
from harness.guest import powershell as ps
from harness.guest.base import Transport, sha256_file
from harness.targets.base import StepResult

GUEST_ROOT = "C:\\callout-harness"
#: the agent's result entry for IOCTL_PROBE_CONFIGURE, sent before the first step
PROBE_CONFIGURATION = "(probe configuration)"
TASK = "callout-harness-agent"
SESSION = "callout-harness"
#: one agent-wait call stays well inside WinRM's operation timeout
WAIT_SLICE_S = 20
MAX_WAIT_S = 1800


@dataclass(frozen=True)
class RunPaths:
    work: str
    plan: str
    results: str
    etl: str
    etl_gz: str

    @classmethod
    def for_run(cls, scenario: str, seed: int, attempt: int = 0) -> RunPaths:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in scenario)
        work = ntpath.join(GUEST_ROOT, "runs", f"{safe}-seed{seed}" + (
            f"-try{attempt}" if attempt else ""))
        return cls(work, ntpath.join(work, "plan.json"), ntpath.join(work, "results.json"),
                   ntpath.join(work, "trace.etl"), ntpath.join(work, "trace.etl.gz"))


def agent_remote_path(digest: str) -> str:
    return ntpath.join(GUEST_ROOT, "agent", f"harness-agent-{digest[:16]}.exe")


def install_agent(transport: Transport, image: Path, digest: str) -> str:
    """Copy the agent into the guest unless the same build is there; its guest path."""
    remote = agent_remote_path(digest)
    found = transport.run_powershell(ps.file_sha256_or_none(remote), timeout_s=120).check(
        f"looking for {remote}").stdout.strip()
    if found.lower() != sha256_file(image).lower():
        transport.put_file(image, remote)
    return remote


class WindowsScenarioRun:
    """One scenario's run through ``transport``; :meth:`run` returns the step results."""

    def __init__(self, transport: Transport, *, agent: str, driver_provider: str,
                 run_timeout_s: float = 600.0, progress: Any = None) -> None:
        self.transport = transport
        self.agent = agent
        self.providers = [driver_provider, AGENT_PROVIDER]
        self.run_timeout_s = min(run_timeout_s, MAX_WAIT_S)
        self.progress = progress

    def _ps(self, script: str, what: str, timeout_s: float = 300.0) -> str:
        return self.transport.run_powershell(script, timeout_s=timeout_s).check(what).stdout

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def run(self, plan: dict[str, Any], paths: RunPaths, local_trace: Path,
            **meta: Any) -> tuple[dict[str, StepResult], dict[str, Any]]:
        from harness.etw.convert import convert_etl

        local_trace.parent.mkdir(parents=True, exist_ok=True)
        staged = write_plan(plan, local_trace.with_suffix(".plan.json"))
        self._ps(ps.PREAMBLE + ps.ensure_directory(paths.work), "preparing the run folder")
        self.transport.put_file(staged, paths.plan)
        self._ps(ps.etw_session_start(SESSION, self.providers, paths.etl),
                 "starting the ETW session")
        try:
            try:
                self._ps(ps.agent_start(TASK, self.agent, paths.plan, paths.results, paths.work,
                                        int(self.run_timeout_s) + 60),
                         "starting the step agent's scheduled task")
                self._wait(paths)
            finally:
                self._ps(ps.etw_session_stop(SESSION), "stopping the ETW session")
            results_local = local_trace.with_suffix(".results.json")
            self.transport.get_file(paths.results, results_local)
            self._ps(ps.gzip_file(paths.etl, paths.etl_gz), "compressing the .etl")
            gz_local = local_trace.with_suffix(".etl.gz")
            self.transport.get_file(paths.etl_gz, gz_local)
        finally:
            self.transport.run_powershell(ps.agent_task_remove(TASK), timeout_s=120)
        etl_local = local_trace.with_suffix(".etl")
        with gzip.open(gz_local, "rb") as src, etl_local.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        gz_local.unlink()
        stats = convert_etl(etl_local, local_trace, providers=self.providers, ends=True, **meta)
        steps, rest = read_results(results_local)
        staged.unlink(missing_ok=True)
        probe = steps.pop(PROBE_CONFIGURATION, None)
        return steps, {"etl_events": stats.events, "etl": etl_local.name,
                       "agent_error": rest.get("error"), "probe": probe}

    def _wait(self, paths: RunPaths) -> None:
        started = time.monotonic()
        while True:
            out = self._ps(ps.agent_wait(TASK, paths.results, WAIT_SLICE_S),
                           "waiting for the step agent", timeout_s=WAIT_SLICE_S + 120)
            if ps.AGENT_DONE in out:
                return
            elapsed = time.monotonic() - started
            if elapsed > self.run_timeout_s:
                raise TargetError(f"the step agent did not finish within "
                                  f"{self.run_timeout_s:.0f} s ({paths.results} never appeared)")
            self._say(f"agent still running after {elapsed:.0f} s")
