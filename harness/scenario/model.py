"""Scenarios as values: what the loader produces and every target consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

#: Counts an expectation may name, each computed from the trace alone, so a
#: count means the same on every target.
COUNTS: Final[dict[str, str]] = {
    "closures": "ALE_ENDPOINT_CLOSURE classifies",
    "releases": "ALE_RESOURCE_RELEASE classifies",
    "assignments": "ALE_RESOURCE_ASSIGNMENT classifies",
    "listens": "ALE_AUTH_LISTEN classifies",
    "connects": "initial ALE_AUTH_CONNECT classifies (not reauthorizations or reinjections)",
    "accepts": "initial ALE_AUTH_RECV_ACCEPT classifies (not reauthorizations or reinjections)",
    "reauthorizations": "classifies with the reauthorize flag",
    "pends": "successful pend_operation calls",
    "pended_closures": "successful pend_classify calls",
    "injections": "successful inject calls",
    "policy_changes": "policy_change events",
    "forced_aborts": "txn_forced_abort events",
    "txn_timeouts": "txn_begin calls that returned FWP_E_TIMEOUT",
}

OUTCOMES: Final = ("allowed", "blocked")
PEND_POINTS: Final = ("connect", "recv_accept", "closure")


@dataclass(frozen=True)
class Step:
    """One step: ``do`` its kind, ``params`` validated with defaults filled in."""

    index: int
    do: str
    id: str | None
    params: Mapping[str, object]
    delay_ms: float = 0.0
    concurrent: str | None = None
    line: int | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.id or f"{self.do}#{self.index}"

    def get(self, key: str, default: object = None) -> object:
        value = self.params.get(key, default)
        return default if value is None else value

    # Typed reads of validated parameters. The loader has filled in every
    # default from the step vocabulary (harness.scenario.steps), so these
    # carry no defaults of their own; a wrong type is a harness bug.

    def integer(self, key: str) -> int:
        value = self.params.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"step {self.name}: {key} is {value!r}, not an integer")
        return value

    def number(self, key: str) -> float:
        value = self.params.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"step {self.name}: {key} is {value!r}, not a number")
        return float(value)

    def text(self, key: str) -> str:
        value = self.params.get(key)
        if not isinstance(value, str):
            raise TypeError(f"step {self.name}: {key} is {value!r}, not a string")
        return value

    def flag(self, key: str) -> bool:
        return self.params.get(key) is True

    def optional_text(self, key: str) -> str | None:
        value = self.params.get(key)
        return value if isinstance(value, str) else None

    def optional_integer(self, key: str) -> int | None:
        value = self.params.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class CalloutConfig:
    """How the callout under test behaves (knobs of the reference callout on
    the model; configuration of the probe driver on a VM)."""

    pend: frozenset[str] = frozenset(PEND_POINTS)
    delay_ms: float = 10.0
    decision: str = "permit"
    block: frozenset[str] = frozenset()
    stream: str = "out_of_band"
    endpoint_contexts: bool = True
    flow_contexts: bool = True
    pend_on_reauth: bool = False


@dataclass(frozen=True)
class Expectations:
    rules: frozenset[str]
    outcomes: Mapping[str, str] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    violations: frozenset[str] = frozenset()
    applicable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    tags: tuple[str, ...]
    seed: int
    callout: CalloutConfig
    steps: tuple[Step, ...]
    expect: Expectations

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def groups(self) -> list[list[Step]]:
        """Steps in run order: consecutive steps with the same ``concurrent``
        name form one group that starts together and may interleave."""
        out: list[list[Step]] = []
        for s in self.steps:
            if s.concurrent and out and out[-1][0].concurrent == s.concurrent:
                out[-1].append(s)
            else:
                out.append([s])
        return out
