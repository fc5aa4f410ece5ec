"""The streaming contract checker.

It reads a trace once, dispatching each event only to the monitors that
consume its kind, and returns the violations with their evidence and the
rules that were not applicable.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contract.base import Monitor, Sink, Violation
from harness.contract.catalog import RULES
from harness.trace.events import Event
from harness.trace.reader import TraceReader

#: The family modules, each exporting ``MONITORS``: a tuple of Monitor classes.
FAMILY_MODULES = ("pc", "pk", "pi", "st", "ep", "fc", "tx", "ob", "ra")

_monitor_classes: tuple[type[Monitor], ...] | None = None


def monitor_classes() -> tuple[type[Monitor], ...]:
    """Every monitor class of every family, imported once."""
    global _monitor_classes
    if _monitor_classes is None:
        found: list[type[Monitor]] = []
        for name in FAMILY_MODULES:
            module = importlib.import_module(f"harness.contract.{name}")
            found.extend(module.MONITORS)
        _monitor_classes = tuple(found)
    return _monitor_classes


@dataclass
class CheckResult:
    """The verdict on one trace."""

    path: str
    events: int
    violations: list[Violation]
    not_applicable: list[str]
    header: dict[str, Any] | None = None
    selected: frozenset[str] = field(default_factory=frozenset)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no error-severity rule is broken (warnings do not fail a trace)."""
        return not self.errors

    def rules_broken(self) -> list[str]:
        return sorted({v.rule for v in self.violations})

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "events": self.events,
            "violations": [v.as_json() for v in self.violations],
            "not_applicable": self.not_applicable,
        }


class Checker:
    """Feed events one at a time, then ``finish()`` for the verdict."""

    def __init__(self, rules: Iterable[str] | None = None, path: str = "<events>") -> None:
        self.selected = frozenset(RULES) if rules is None else frozenset(rules)
        self.path = path
        self.sink = Sink(self.selected)
        self.monitors: list[Monitor] = [
            cls(self.sink)
            for cls in monitor_classes()
            if self.selected.intersection(cls.RULES)
        ]
        table: dict[str, list[Callable[[Event], None]]] = {}
        for monitor in self.monitors:
            for kind, fn in monitor.handlers().items():
                table.setdefault(kind, []).append(fn)
        self._table: dict[str, tuple[Callable[[Event], None], ...]] = {
            k: tuple(v) for k, v in table.items()
        }
        self.count = 0
        self.header: dict[str, Any] | None = None

    def set_header(self, header: dict[str, Any] | None) -> None:
        """Give the monitors the trace header (call before the first event)."""
        self.header = header
        if header:
            for monitor in self.monitors:
                monitor.accept_header(header)

    def feed(self, ev: Event) -> None:
        self.count += 1
        handlers = self._table.get(ev["ev"])
        if handlers:
            for fn in handlers:
                fn(ev)

    def feed_all(self, events: Iterable[Event]) -> None:
        table_get = self._table.get
        n = 0
        for ev in events:
            n += 1
            handlers = table_get(ev["ev"])
            if handlers:
                for fn in handlers:
                    fn(ev)
        self.count += n

    def finish(self) -> CheckResult:
        for monitor in self.monitors:
            monitor.finish()
        violations = sorted(
            self.sink.violations,
            key=lambda v: (v.events[0] if v.events else float("inf"), v.rule),
        )
        not_applicable = sorted(
            rid for rid in self.selected if rid not in self.sink.applicable
        )
        return CheckResult(
            self.path, self.count, violations, not_applicable, self.header, self.selected
        )


def check_events(
    events: Iterable[Event], rules: Iterable[str] | None = None, path: str = "<events>"
) -> CheckResult:
    """Check already-parsed events (e.g. straight from the engine model)."""
    checker = Checker(rules, path)
    checker.feed_all(events)
    return checker.finish()


def check_file(path: str | Path, rules: Iterable[str] | None = None) -> CheckResult:
    """Read and check one trace file; raises TraceFormatError on bad input."""
    reader = TraceReader(path)
    checker = Checker(rules, str(path))
    events = iter(reader)
    first = next(events, None)  # reading the first line reads the header, if any
    checker.set_header(reader.header)
    if first is not None:
        checker.feed(first)
        checker.feed_all(events)
    return checker.finish()
