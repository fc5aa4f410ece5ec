"""The verdict of an item: retries kept visible, known issues, and the run's stale errata.

A failed scenario may be run again (``--harness-retries N``); every attempt
keeps its own trace (``...-try1.jsonl``, ``...-try2.jsonl``) and is listed in
the item's record (:class:`~harness.scenario.record.ItemRecord`), and a pass
after a retry is *flaky*, never a plain pass.

:class:`ItemOutcome` is what the bundle, ``results.json`` and the history
read: a record with its final verdict. :func:`judge_record` and
:func:`errata_report` make an item ``known``, ``flaky`` or red for the same
reasons whichever front end made the run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errata import DEFAULT_STALE_RUNS, Errata, StaleEntry, judge, stale_entries
from harness.scenario.record import OUTCOMES, RED, Attempt

if TYPE_CHECKING:
    from harness.scenario.record import ItemRecord

__all__ = ["OUTCOMES", "RED", "Attempt", "ErrataReport", "ItemOutcome", "errata_report",
           "judge_item", "judge_record"]


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


def judge_record(record: ItemRecord, *, errata: Errata | None = None,
                 nodeid: str | None = None, today: dt.date | None = None) -> ItemOutcome:
    """The verdict of a run item's record (errata, retries)."""
    return judge_item(record.as_json(), list(record.attempts), os_build=record.os_build,
                      errata=errata, nodeid=nodeid, today=today)


@dataclass
class ErrataReport:
    """The errata section of ``results.json`` and the stale entries of this run."""

    section: dict[str, Any] | None
    stale: list[StaleEntry]


def errata_report(
    errata: Errata | None,
    items: list[ItemOutcome],
    *,
    previous: list[dict[str, Any]] | None = None,
    stale_runs: int = DEFAULT_STALE_RUNS,
    today: dt.date | None = None,
) -> ErrataReport:
    """Which entries matched this run, and which are stale by the history file."""
    if errata is None:
        return ErrataReport(None, [])
    matched = sorted({ident for item in items for ident in item.known_issues})
    stale = stale_entries(errata, matched, previous or [], stale_runs, today)
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
