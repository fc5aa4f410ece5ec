"""Build small traces in tests without spelling out seq and t.

    tb = TraceBuilder()
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=7, can_pend=True)
    p = tb.add("pend_operation", id=c, ctx="c1", status="STATUS_SUCCESS")
    tb.done(c, action="BLOCK", absorb=True)
    result = tb.check()             # harness.contract.check_events over the events
    assert result.fired("PC001") == [[p]]   # evidence seqs of each PC001 violation

``add`` returns the seq of the event it added; ``classify`` returns the
classify's id (a fresh one unless given) and remembers its seq in ``tb.seq_of``.
Events are validated by round-tripping through the real reader, so a test
cannot build a trace the reader would reject.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from harness.contract.checker import CheckResult, check_file


class Result:
    """A CheckResult with conveniences for assertions."""

    def __init__(self, result: CheckResult) -> None:
        self.raw = result

    def fired(self, rule: str) -> list[list[int]]:
        """Evidence seq lists of every violation of ``rule``."""
        return [list(v.events) for v in self.raw.violations if v.rule == rule]

    def rules(self) -> set[str]:
        return {v.rule for v in self.raw.violations}

    def applicable(self, rule: str) -> bool:
        return rule not in self.raw.not_applicable

    def messages(self, rule: str) -> list[str]:
        return [v.message for v in self.raw.violations if v.rule == rule]


class TraceBuilder:
    def __init__(self, tmp: Path | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self.t = 0.0
        self.seq_of: dict[object, int] = {}
        self._tmp = tmp

    def add(self, ev: str, /, **fields: Any) -> int:
        dt = fields.pop("dt", 0.0)
        self.t += dt
        seq = next(self._seq)
        event = {"seq": seq, "t": round(self.t, 6), "ev": ev}
        event.update(fields)
        self.events.append(event)
        return seq

    def classify(self, **fields: Any) -> object:
        """Add a ``classify`` with defaults for the flags; returns its id."""
        cid = fields.pop("id", None)
        if cid is None:
            cid = f"k{next(self._ids)}"
        event = {
            "id": cid, "reauth": False, "can_pend": False, "ale_required": False,
            "injection": "none", "rights": True,
        }
        event.update(fields)
        self.seq_of[cid] = self.add("classify", **event)
        return cid

    def done(self, cid: object, action: str = "PERMIT", absorb: bool = False, **f: Any) -> int:
        return self.add("classify_done", id=cid, action=action, absorb=absorb, **f)

    def check(self, rules: list[str] | None = None) -> Result:
        """Write the trace to a file, read it back with the strict reader, check it."""
        import tempfile

        from harness.trace.writer import write_events

        if self._tmp is not None:
            path = self._tmp / f"trace-{id(self)}.jsonl"
            write_events(path, self.events, target="test")
            return Result(check_file(path, rules))
        with tempfile.TemporaryDirectory(prefix="tb-") as directory:
            path = Path(directory) / "trace.jsonl"
            write_events(path, self.events, target="test")
            return Result(check_file(path, rules))
