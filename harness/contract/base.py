"""What a rule family's monitor is, and what a violation looks like.

A *monitor* is the state machine of one rule family (or part of one) over the
event stream. It declares the rule IDs it judges in ``RULES`` and handles the
event kinds it consumes with methods named ``on_<kind>``; the checker calls
only the handlers of the kinds that occur, and only for monitors with a
selected rule. A monitor keeps state for live handles only and forgets what
is finished, so memory grows with what is open, not with trace length.

A monitor marks a rule *applicable* (``touch``) when it sees that rule's
input; a rule never touched is reported as not applicable, never as passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from harness.contract.catalog import RULES, Rule
from harness.trace.events import KINDS, Event


@dataclass(frozen=True)
class Violation:
    """One broken rule, with the ``seq`` numbers of the events that prove it."""

    rule: str
    party: str
    severity: str
    message: str
    events: tuple[int, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "party": self.party,
            "severity": self.severity,
            "message": self.message,
            "events": list(self.events),
        }


class Sink:
    """Collects what monitors report for one trace."""

    __slots__ = ("applicable", "selected", "violations")

    def __init__(self, selected: frozenset[str]) -> None:
        self.selected = selected
        self.violations: list[Violation] = []
        self.applicable: set[str] = set()

    def report(self, rule: Rule, message: str, seqs: Iterable[int | None]) -> None:
        self.applicable.add(rule.id)
        if rule.id not in self.selected:
            return
        events = tuple(sorted({s for s in seqs if s is not None}))
        self.violations.append(Violation(rule.id, rule.party, rule.severity, message, events))


class Monitor:
    """Base class of rule-family monitors; see the module docstring."""

    RULES: ClassVar[tuple[str, ...]] = ()
    _handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for rid in cls.RULES:
            if rid not in RULES:
                raise TypeError(f"monitor {cls.__name__} names unknown rule {rid!r}")
        handlers: dict[str, str] = {}
        for name in dir(cls):
            if name.startswith("on_"):
                kind = name[3:]
                if kind not in KINDS:
                    raise TypeError(
                        f"monitor {cls.__name__}: {name} handles unknown event kind {kind!r}"
                    )
                handlers[kind] = name
        cls._handlers = handlers

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._applicable = sink.applicable

    def report(self, rule_id: str, message: str, *seqs: int | None) -> None:
        """Record a violation of ``rule_id`` proven by the events ``seqs``."""
        self._sink.report(RULES[rule_id], message, seqs)

    def touch(self, *rule_ids: str) -> None:
        """Mark rules as applicable: their input occurred in the trace."""
        self._applicable.update(rule_ids)

    def handlers(self) -> dict[str, Callable[[Event], None]]:
        """Bound ``on_<kind>`` handlers by event kind."""
        return {kind: getattr(self, name) for kind, name in self._handlers.items()}

    def accept_header(self, header: dict[str, object]) -> None:
        """The trace's header, before its first event (e.g. pre-existing objects)."""

    def finish(self) -> None:
        """End of trace: report whatever is still open and can never close now."""


def seconds(value: float) -> str:
    """A time for a message: ``60.016`` (at most millisecond-ish precision,
    no float noise such as ``60.01599999995083``)."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def duration_ms(value: float) -> str:
    """A duration given in milliseconds, in the unit that reads best:
    ``250 ms``, ``15 s``, ``3600 s`` (never ``3.6e+06 ms``)."""
    ms = float(value)
    if abs(ms) >= 1000:
        return f"{seconds(ms / 1000)} s"
    return f"{seconds(ms)} ms"


def handle(value: object) -> str:
    """A handle or id as shown in messages."""
    return repr(value) if isinstance(value, str) else str(value)
