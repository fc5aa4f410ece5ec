"""Read the agent's results file: what each step observed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.targets.base import StepResult
from harness.trace.status import name_for_value

MAX_STEPS = 4096


def read_results(path: Path) -> tuple[dict[str, StepResult], dict[str, Any]]:
    """(step name -> StepResult, the rest of the file); a malformed file is a TargetError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TargetError(f"{path}: the agent's results are unreadable ({exc})") from None
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, dict) or len(steps) > MAX_STEPS or data.get("done") is not True:
        raise TargetError(f"{path}: expected the agent's results (an object with steps and "
                          "done), found something else")
    out: dict[str, StepResult] = {}
    for name, r in steps.items():
        if not isinstance(r, dict):
            raise TargetError(f"{path}: steps.{name}: expected an object")
        status = r.get("status")
        if isinstance(status, str):
            status = name_for_value(int(status, 16))
        out[name] = StepResult(name, r.get("outcome"), status, str(r.get("detail") or ""))
    return out, {k: v for k, v in data.items() if k != "steps"}
