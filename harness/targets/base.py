"""What every target is and returns.

A target runs a scenario and hands back the trace it collected and what the
scenario's steps observed (a connection allowed or blocked, a BFE call's
status). Judging the run (:mod:`harness.scenario.evaluate`) is the same for
every target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from harness.scenario.model import Scenario
from harness.scenario.output import RunOutput, StepResult

__all__ = ["RunOutput", "StepResult", "Target", "trace_name"]


class Target(Protocol):
    """A place scenarios run. ``name`` appears in test ids and reports."""

    name: str

    def run(
        self, scenario: Scenario, *, seed: int, out_dir: Path, attempt: int = 0
    ) -> RunOutput:
        """Run ``scenario`` once, writing its trace under ``out_dir`` (a retry
        is ``attempt`` 1, 2, ...: its trace gets its own name)."""
        ...

    def close(self) -> None:
        """Release what the target holds (VM slots, connections)."""
        ...


def trace_name(scenario: Scenario, target: str, seed: int, attempt: int = 0) -> str:
    """The file name of a scenario's trace: stable, and safe on every OS."""
    suffix = f"-try{attempt}" if attempt else ""
    safe_target = "".join(c if c.isalnum() or c in "-_." else "_" for c in target)
    return f"{scenario.name}.{safe_target}.seed{seed}{suffix}.jsonl"
