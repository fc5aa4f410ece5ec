"""The one record of a scenario item: what ran, how it was judged, where its traces are.

:meth:`harness.session.HarnessSession.run_item` makes it (explore or
retries included); the pytest plugin, ``run`` and ``certify run`` read it,
the HTML report and the bundle are written from its JSON form, and under
xdist it travels from worker to controller in the item's report (property
:data:`RECORD_PROP`) rather than through a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.scenario.evaluate import ScenarioResult

#: Every verdict an item can end with (errata and retries add known and flaky).
OUTCOMES = ("passed", "failed", "error", "known", "flaky", "skipped")
#: Outcomes that make a run red.
RED = frozenset({"failed", "error"})
#: Keys of the properties a scenario item's report carries (JUnit shows the first four).
TARGET_PROP, SEED_PROP, TRACE_PROP, RULES_PROP = "target", "seed", "trace", "rules"
ATTEMPTS_PROP = "attempts"
#: The whole record, as JSON (read back on the xdist controller).
RECORD_PROP = "harness_record"
#: The verdict after errata and retries (known, flaky, ...), and its explanation.
OUTCOME_PROP, KNOWN_PROP, MESSAGE_PROP = "harness_outcome", "known_issues", "harness_message"
#: Properties that are for the harness's own plumbing, not for JUnit XML.
PRIVATE_PROPS = frozenset({RECORD_PROP, OUTCOME_PROP, KNOWN_PROP, MESSAGE_PROP})


@dataclass(frozen=True)
class Attempt:
    """One run of a scenario: which try, how it ended, and its trace."""

    attempt: int
    outcome: str
    trace: str
    failures: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "outcome": self.outcome, "trace": self.trace,
                "failures": list(self.failures)}


@dataclass(frozen=True)
class ItemRecord:
    """One scenario on one target, judged. ``outcome`` is passed, failed or
    error (the harness could not run it); errata and retries turn it into the
    final verdict (:mod:`harness.verdict`)."""

    scenario: str
    path: str
    target: str
    seed: int | None
    outcome: str
    failures: tuple[str, ...] = ()
    violations: tuple[dict[str, Any], ...] = ()
    not_applicable: tuple[str, ...] = ()
    expected_violations: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    trace: str = ""
    events: int = 0
    duration_s: float = 0.0
    attempts: tuple[Attempt, ...] = ()
    os_build: str | None = None
    #: what --explore found (the summary it prints), or ""
    explored: str = ""
    #: how many leading events of the trace are the target's set-up (None: unknown)
    setup_events: int | None = None

    @classmethod
    def from_result(cls, result: ScenarioResult, attempts: tuple[Attempt, ...] = (),
                    explored: str = "") -> ItemRecord:
        os_build = result.run.meta.get("os_build")
        return cls(
            scenario=result.scenario.name,
            path=str(result.scenario.path),
            target=result.run.target,
            seed=result.run.seed,
            outcome=result.outcome,
            failures=tuple(result.failures),
            violations=tuple(v.as_json() for v in result.check.violations),
            not_applicable=tuple(result.check.not_applicable),
            expected_violations=tuple(sorted(result.scenario.expect.violations)),
            counts=dict(result.counts),
            trace=str(result.run.trace_path),
            events=result.check.events,
            duration_s=round(float(result.run.meta.get("duration_s", 0.0)), 4),
            attempts=attempts or (Attempt(0, result.outcome, str(result.run.trace_path),
                                          tuple(result.failures)),),
            os_build=str(os_build) if os_build else None,
            explored=explored,
            setup_events=_int_or_none(result.run.meta.get("setup_events")),
        )

    @classmethod
    def error(cls, scenario: str, path: str, target: str, seed: int | None, message: str,
              trace: str = "") -> ItemRecord:
        """An item the harness could not run to the end (a crash, a VM that broke)."""
        return cls(scenario=scenario, path=path, target=target, seed=seed, outcome="error",
                   failures=(message,), trace=trace,
                   attempts=(Attempt(0, "error", trace, (message,)),))

    @property
    def rules(self) -> list[str]:
        """The rule IDs of every violation, sorted."""
        return sorted({str(v["rule"]) for v in self.violations})

    def properties(self) -> list[tuple[str, str]]:
        """The item's public report properties (JUnit XML shows them)."""
        return [
            (TARGET_PROP, self.target),
            (SEED_PROP, str(self.seed)),
            (TRACE_PROP, self.trace),
            (RULES_PROP, ",".join(self.rules)),
            (ATTEMPTS_PROP, str(len(self.attempts))),
        ]

    def record_property(self) -> tuple[str, str]:
        """The whole record as one report property: put on the call report only (so
        that it reaches the xdist controller), never on the item (JUnit shows those)."""
        return RECORD_PROP, json.dumps(self.as_json(), separators=(",", ":"))

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "path": self.path, "target": self.target,
            "seed": self.seed, "outcome": self.outcome, "failures": list(self.failures),
            "violations": list(self.violations), "not_applicable": list(self.not_applicable),
            "expected_violations": list(self.expected_violations), "counts": self.counts,
            "trace": self.trace, "events": self.events, "duration_s": self.duration_s,
            "attempts": [a.as_json() for a in self.attempts], "os_build": self.os_build,
            "explored": self.explored, "setup_events": self.setup_events,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemRecord:
        return cls(
            scenario=str(data["scenario"]), path=str(data.get("path", "")),
            target=str(data["target"]), seed=data.get("seed"), outcome=str(data["outcome"]),
            failures=tuple(str(f) for f in data.get("failures", ())),
            violations=tuple(data.get("violations", ())),
            not_applicable=tuple(data.get("not_applicable", ())),
            expected_violations=tuple(data.get("expected_violations", ())),
            counts=dict(data.get("counts", {})), trace=str(data.get("trace", "")),
            events=int(data.get("events", 0)), duration_s=float(data.get("duration_s", 0.0)),
            attempts=tuple(Attempt(int(a["attempt"]), str(a["outcome"]), str(a["trace"]),
                                   tuple(a.get("failures", ())))
                           for a in data.get("attempts", ())),
            os_build=data.get("os_build"), explored=str(data.get("explored", "")),
            setup_events=_int_or_none(data.get("setup_events")),
        )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_from_properties(props: dict[str, Any]) -> ItemRecord | None:
    """The record a scenario item's report carries, or None (not a scenario item)."""
    text = props.get(RECORD_PROP)
    if not text:
        return None
    return ItemRecord.from_json(json.loads(str(text)))
