"""Known issues ("errata"): failures a team has accepted for a while, on purpose.

An errata file is TOML with one ``[[known]]`` table per known issue::

    [[known]]
    rule = "PC001"              # a rule ID, and/or
    scenario = "connect-*"      # a glob over scenario names
    target = "win11*"           # a glob over target names
    os_build = "22631.*"        # optional: a glob over the target's OS build
    reason = "pend leak fixed in driver 2.4, see bug 1234"
    owner = "alice"
    created = 2026-10-01
    expires = 2026-12-01        # the first day the entry no longer applies

A failing item whose every failure is matched by a live entry is reported as
``known``: neither green nor red. Once the entry has expired the same failure
is red again, and the message says which entry expired and when. An entry
that matched nothing for N consecutive runs is *stale* (counted from the
history file, see :func:`stale_entries`). A malformed entry is one
:class:`~harness.errors.ErrataError` line naming the file, the line and the key.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ErrataError, describe
from harness.tomlfile import Document, Table

DEFAULT_STALE_RUNS = 5
#: A bound on --errata-stale-runs.
MAX_STALE_RUNS = 1000
#: A failure line of a scenario result that concerns one rule starts with its ID.
_RULE_FAILURE = re.compile(r"^([A-Z]{2}\d{3})\b")
_KEYS = ("rule", "scenario", "target", "os_build", "reason", "owner", "created", "expires")


@dataclass(frozen=True)
class KnownIssue:
    """One ``[[known]]`` entry of an errata file."""

    path: str
    line: int | None
    rule: str | None
    scenario: str | None
    target: str
    os_build: str | None
    reason: str
    owner: str
    created: dt.date
    expires: dt.date

    @property
    def ident(self) -> str:
        """What the entry matches; stable when lines move (history uses it)."""
        return (f"rule={self.rule or '*'} scenario={self.scenario or '*'} "
                f"target={self.target} os_build={self.os_build or '*'}")

    @property
    def where(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"

    def describe(self) -> str:
        what = " ".join(p for p in (self.rule, self.scenario and f"scenario {self.scenario}")
                        if p)
        build = f" build {self.os_build}" if self.os_build else ""
        return f"{self.where} [{what} on {self.target}{build}]"

    def live(self, today: dt.date) -> bool:
        return today < self.expires

    def matches(self, scenario: str, target: str, os_build: str | None,
                rule: str | None) -> bool:
        """Whether this entry covers one failure (``rule`` None: not about a rule)."""
        if not fnmatch.fnmatchcase(target, self.target):
            return False
        if self.os_build is not None and (
            os_build is None or not fnmatch.fnmatchcase(os_build, self.os_build)
        ):
            return False
        if self.scenario is not None and not fnmatch.fnmatchcase(scenario, self.scenario):
            return False
        return self.rule is None or self.rule == rule


@dataclass(frozen=True)
class Errata:
    path: Path
    entries: tuple[KnownIssue, ...]

    @property
    def idents(self) -> list[str]:
        return [e.ident for e in self.entries]


@dataclass
class Verdict:
    """What the errata say about one failing item."""

    known: bool
    matched: list[KnownIssue] = field(default_factory=list)
    expired: list[KnownIssue] = field(default_factory=list)

    @property
    def message(self) -> str:
        """Why the item is known, or why it is red again although it once was known."""
        if self.known:
            return "known issue: " + "; ".join(
                f"{e.describe()} {e.reason} (owner {e.owner}, until {e.expires})"
                for e in self.matched
            )
        return "; ".join(
            f"known issue {e.describe()} expired on {e.expires.isoformat()} "
            f"(owner {e.owner}: {e.reason})"
            for e in self.expired
        )


# -- loading -----------------------------------------------------------------

def check_glob(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable glob (an unbalanced ``[``), or None."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                return "an unbalanced '['"
            i = end
        elif pattern[i] == "]":
            return "a ']' without its '['"
        i += 1
    return None


#: At most this many ``[[known]]`` entries, each text at most MAX_TEXT characters.
MAX_ENTRIES = 1_000
MAX_TEXT = 1_000


def _text(t: Table, name: str, value: str | None) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise t.fail(name, expected=f"at most {MAX_TEXT} characters", found=value)
    return value


def _glob(t: Table, name: str, *, required: bool) -> str | None:
    if required:
        value = t.string(name, what="a glob pattern")
    else:
        value = t.string(name, default=None, what="a glob pattern")
    if value is None:
        return None
    _text(t, name, value)
    problem = check_glob(value)
    if problem:
        raise t.doc.fail((*t.key, name), expected="a glob pattern with balanced [ ]",
                         found=f"{describe(value)} with {problem}")
    return str(value)


def _date(t: Table, name: str) -> dt.date:
    value = t.raw(name, expected="a date like 2026-01-31")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise t.fail(name, expected="a date like 2026-01-31", found=value)


def _entry(t: Table, today: dt.date, rules: Iterable[str]) -> KnownIssue:
    rule = t.string("rule", default=None, what="a rule ID such as PC001")
    if rule is not None and rule not in rules:
        raise t.doc.fail((*t.key, "rule"), expected="a rule ID of the contract catalog",
                         found=f"unknown rule {rule!r}")
    scenario = _glob(t, "scenario", required=False)
    if rule is None and scenario is None:
        raise t.doc.fail(t.key, expected="a rule or a scenario (or both)", found="neither")
    target = _glob(t, "target", required=True)
    os_build = _glob(t, "os_build", required=False)
    reason = str(t.string("reason", what="a reason (why the failure is accepted)"))
    owner = str(t.string("owner", what="an owner (who will fix it)"))
    _text(t, "reason", reason)
    _text(t, "owner", owner)
    created = _date(t, "created")
    expires = _date(t, "expires")
    if created > today:
        raise t.doc.fail((*t.key, "created"), expected=f"a date not after today ({today})",
                         found=created.isoformat())
    if expires <= created:
        raise t.doc.fail((*t.key, "expires"), expected=f"a date after created ({created})",
                         found=expires.isoformat())
    t.finish()
    return KnownIssue(str(t.doc.path), t.doc.line_of(t.key), rule, scenario, str(target),
                      os_build, reason, owner, created, expires)


def load_errata(path: str | Path, today: dt.date | None = None) -> Errata:
    """Read and validate an errata file; raises :class:`ErrataError` on any mistake."""
    from harness.contract.catalog import RULES

    today = today or dt.date.today()
    doc = Document(Path(path), ErrataError)
    root = doc.root()
    tables = root.tables("known") if root.has("known") else []
    if len(tables) > MAX_ENTRIES:
        raise root.fail("known", expected=f"at most {MAX_ENTRIES} [[known]] entries",
                        found=f"{len(tables)} of them")
    root.finish()
    entries = tuple(_entry(t, today, RULES) for t in tables)
    return Errata(Path(path), entries)


# -- judging -----------------------------------------------------------------

def failure_rule(failure: str) -> str | None:
    """The rule a failure line is about (``PC001 broken: ...``), or None."""
    found = _RULE_FAILURE.match(failure)
    return found.group(1) if found else None


def judge(errata: Errata, *, scenario: str, target: str, os_build: str | None,
          failures: Sequence[str], today: dt.date | None = None) -> Verdict:
    """Whether a failing item is known: every failure matched by a live entry."""
    today = today or dt.date.today()
    if not failures:
        return Verdict(False)
    matched: dict[str, KnownIssue] = {}
    expired: dict[str, KnownIssue] = {}
    all_live = True
    for failure in failures:
        rule = failure_rule(failure)
        hits = [e for e in errata.entries if e.matches(scenario, target, os_build, rule)]
        live = [e for e in hits if e.live(today)]
        for e in live:
            matched.setdefault(e.ident, e)
        if not live:
            all_live = False
            for e in hits:
                expired.setdefault(e.ident, e)
    if all_live:
        return Verdict(True, list(matched.values()))
    return Verdict(False, list(matched.values()), list(expired.values()))


# -- staleness ---------------------------------------------------------------

@dataclass(frozen=True)
class StaleEntry:
    entry: KnownIssue
    runs: int

    def describe(self) -> str:
        return (f"stale known issue {self.entry.describe()}: matched nothing in the last "
                f"{self.runs} runs (owner {self.entry.owner})")


def stale_entries(
    errata: Errata,
    matched_now: Iterable[str],
    previous: Sequence[dict[str, Any]],
    runs: int = DEFAULT_STALE_RUNS,
    today: dt.date | None = None,
) -> list[StaleEntry]:
    """Live entries that matched nothing in this run and the ``runs - 1`` before it.

    ``previous`` are the ``errata`` sections of earlier runs (oldest first), each
    ``{"entries": [ident, ...], "matched": [ident, ...]}``; a run counts for an
    entry only when the entry existed then, so a new entry is never stale at once.
    """
    today = today or dt.date.today()
    now = set(matched_now)
    out: list[StaleEntry] = []
    for entry in errata.entries:
        if not entry.live(today) or entry.ident in now:
            continue
        count = 1
        for run in reversed(previous):
            if entry.ident not in run.get("entries", ()) or entry.ident in run.get("matched", ()):
                break
            count += 1
        if count >= runs:
            out.append(StaleEntry(entry, count))
    return out
