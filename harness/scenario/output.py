"""What a scenario's run hands back before it is judged: the trace it
collected and what each step observed (a connection allowed or blocked, a BFE
call's status). Every target returns these; :mod:`harness.scenario.evaluate`
judges them the same way whatever the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StepResult:
    """What one step observed: ``outcome`` for connections, ``status`` for BFE calls."""

    step: str
    outcome: str | None = None
    status: str | None = None
    detail: str = ""


@dataclass
class RunOutput:
    """A scenario's run on a target, before it is judged."""

    target: str
    seed: int
    trace_path: Path
    steps: dict[str, StepResult] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
