"""The verdict of an item: retries kept visible, known issues, and the run's stale errata.

A failed scenario may be run again (``--harness-retries N``); every attempt
keeps its own trace (``...-try1.jsonl``, ``...-try2.jsonl``), and a pass after
a retry is *flaky*, never a plain pass. The attempts of an item are written
next to its last trace (``<trace>.attempts.json``) so that the xdist
controller, ``certify run`` and the bundle all see the same story.

:class:`ItemOutcome` is the one record every consumer shares: the pytest
plugin builds it from reports, ``certify run`` from results, the bundle,
``results.json`` and the history read it. :func:`judge_item` and
:func:`errata_report` make an item ``known``, ``flaky`` or red for the same
reasons whichever way the run was made.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errata import DEFAULT_STALE_RUNS, Errata, StaleEntry, judge, stale_entries

if TYPE_CHECKING:
    from harness.scenario.evaluate import ScenarioResult
    from harness.scenario.model import Scenario
    from harness.session import HarnessSession

OUTCOMES = ("passed", "failed", "error", "known", "flaky", "skipped")
#: Outcomes that make a run red.
RED = frozenset({"failed", "error"})


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


def attempts_file(trace: str | Path) -> Path:
    """Where the attempts of the item whose last trace is ``trace`` are kept."""
    return Path(f"{trace}.attempts.json")


def run_with_retries(
    session: HarnessSession, scenario: Scenario, retries: int
) -> tuple[ScenarioResult, int]:
    """Run ``scenario``; while it fails, run it again, up to ``retries`` more times.

    Returns the last result and the number of attempts. Every attempt's trace
    is kept under its own name, and the attempts are recorded next to the
    last trace (:func:`attempts_file`).
    """
    attempts: list[Attempt] = []
    result = session.run(scenario)
    while True:
        attempts.append(Attempt(len(attempts), result.outcome, str(result.run.trace_path),
                                tuple(result.failures)))
        if not result.failures or len(attempts) > retries:
            break
        result = session.run(scenario, attempt=len(attempts))
    os_build = result.run.meta.get("os_build")
    data = {"attempts": [a.as_json() for a in attempts],
            "os_build": str(os_build) if os_build else None}
    attempts_file(result.run.trace_path).write_text(json.dumps(data, indent=1), "utf-8")
    return result, len(attempts)


def read_attempts(trace: str | Path) -> tuple[list[Attempt], str | None]:
    """The attempts recorded for ``trace`` (just the one when none were recorded)."""
    try:
        data = json.loads(attempts_file(trace).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], None
    attempts = [
        Attempt(int(a["attempt"]), str(a["outcome"]), str(a["trace"]),
                tuple(a.get("failures", ())))
        for a in data.get("attempts", [])
    ]
    return attempts, data.get("os_build")


def default_os_build(target: str) -> str | None:
    """The OS build of a target that does not report one (the model has a fixed one)."""
    return "engine-model" if target == "sim" else None


@dataclass
class ItemOutcome:
    """One scenario on one target, as the bundle and the history see it.

    ``record`` is the item's result record (:func:`harness.scenario.failure.result_record`);
    ``outcome`` is the final verdict: passed, failed, error, known, flaky or skipped.
    """

    record: dict[str, Any]
    outcome: str
    attempts: list[Attempt] = field(default_factory=list)
    os_build: str | None = None
    known_issues: list[str] = field(default_factory=list)  # idents of matching live entries
    message: str = ""
    nodeid: str | None = None

    @property
    def scenario(self) -> str:
        return str(self.record["scenario"])

    @property
    def target(self) -> str:
        return str(self.record["target"])

    @property
    def item_id(self) -> str:
        return f"{self.scenario}[{self.target}]"

    @property
    def traces(self) -> list[str]:
        """Every trace of the item, first attempt first, the final one last."""
        paths = [a.trace for a in self.attempts if a.trace]
        final = str(self.record.get("trace") or "")
        if final and final not in paths:
            paths.append(final)
        return paths


def final_outcome(passed: bool, attempts: int) -> str:
    """``flaky`` for a pass that needed a retry: a retry never hides."""
    if passed:
        return "flaky" if attempts > 1 else "passed"
    return "failed"


def judge_item(
    record: dict[str, Any],
    attempts: list[Attempt],
    *,
    os_build: str | None = None,
    errata: Errata | None = None,
    today: dt.date | None = None,
    nodeid: str | None = None,
) -> ItemOutcome:
    """The verdict of an item from its last result record and its attempts."""
    failures = [str(f) for f in record.get("failures", [])]
    build = os_build or default_os_build(str(record["target"]))
    if not attempts:
        attempts = [Attempt(0, str(record.get("outcome", "failed")), str(record["trace"]),
                            tuple(failures))]
    item = ItemOutcome(record, final_outcome(not failures, len(attempts)), attempts, build,
                       nodeid=nodeid)
    if failures and errata is not None:
        verdict = judge(errata, scenario=item.scenario, target=item.target, os_build=build,
                        failures=failures, today=today)
        item.message = verdict.message
        # Entries that matched some failure count as used (never stale) even when
        # other failures keep the item red.
        item.known_issues = [e.ident for e in verdict.matched]
        if verdict.known:
            item.outcome = "known"
    return item


@dataclass
class ErrataReport:
    """The errata section of ``results.json`` and the stale entries of this run."""

    section: dict[str, Any] | None
    stale: list[StaleEntry]


def errata_report(
    errata: Errata | None,
    items: list[ItemOutcome],
    *,
    history: Path | None = None,
    stale_runs: int = DEFAULT_STALE_RUNS,
    today: dt.date | None = None,
) -> ErrataReport:
    """Which entries matched this run, and which are stale by the history file."""
    if errata is None:
        return ErrataReport(None, [])
    from harness.history.store import errata_sections

    matched = sorted({ident for item in items for ident in item.known_issues})
    previous = errata_sections(history) if history is not None else []
    stale = stale_entries(errata, matched, previous, stale_runs, today)
    section = {
        "file": errata.path.name,
        "entries": errata.idents,
        "matched": matched,
        "stale_runs": stale_runs,
        "stale": [
            {"entry": s.entry.ident, "where": s.entry.where, "owner": s.entry.owner,
             "runs": s.runs}
            for s in stale
        ],
    }
    return ErrataReport(section, stale)
