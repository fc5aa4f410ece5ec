"""Explore interleavings of a scenario's concurrent steps, and shrink a failure.

Events due at the same virtual instant run in an order drawn from the seeded
RNG, so each seed is one schedule. ``explore`` tries N seeds; on the first
failure it shrinks the scenario (delta debugging over its steps, the seed
held fixed) to a minimal step list that still fails the same way, writes
that scenario next to the traces, and prints the seed plus the step list:
running that file with that seed replays the failure exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.scenario.evaluate import ScenarioResult
from harness.scenario.model import Expectations, Scenario, Step
from harness.scenario.steps import STEP_KINDS
from harness.scenario.writer import dump_scenario


@dataclass
class ExploreResult:
    result: ScenarioResult
    tried: int
    failing_seed: int | None = None
    minimal: Scenario | None = None
    minimal_path: Path | None = None
    replay_options: str = ""

    def describe(self) -> str:
        if self.failing_seed is None or self.minimal is None:
            return f"\nexplored {self.tried} schedule(s): all passed"
        steps = ", ".join(f"{s.name}={s.do}" for s in self.minimal.steps)
        text = (
            f"\nexplored {self.tried} schedule(s); first failure at seed {self.failing_seed}"
            f"\nminimal failing schedule: seed {self.failing_seed}, "
            f"{len(self.minimal.steps)} step(s): [{steps}]"
        )
        if self.minimal_path is not None:
            text += (
                f"\nreplay: callout-harness run --scenario {self.minimal_path} "
                f"--seed {self.failing_seed}{self.replay_options}"
            )
        return text


def signature(result: ScenarioResult) -> frozenset[str]:
    """What a failure is, for shrinking: the broken rules, or the failed expectations."""
    rules = result.unexpected
    if rules:
        return frozenset(rules)
    return frozenset(f.split(":")[0] for f in result.failures)


def explore(session: Any, scenario: Scenario, tries: int) -> ExploreResult:
    """Run ``scenario`` under ``tries`` seeds from its own; shrink the first failure."""
    base = session.seed_for(scenario)
    last: ScenarioResult | None = None
    for i in range(max(tries, 1)):
        seed = base + i
        last = session.run(scenario, seed=seed)
        if last.failures:
            # The shrinking runs write their traces under explore/, never over
            # the trace of the failure this result names.
            out = session.options.out_dir / "explore"
            minimal = shrink(session, scenario, seed, signature(last), out / "shrink")
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{scenario.name}.seed{seed}.min.toml"
            path.write_text(dump_scenario(minimal), encoding="utf-8")
            opts = session.options
            extra = f" --vm {opts.vm}" if opts.vm != "sim" else ""
            if opts.callout != "reference":
                extra += f" --callout {opts.callout}"
            for fault in opts.faults:
                extra += f" --engine-fault {fault}"
            return ExploreResult(last, i + 1, seed, minimal, path, extra)
    assert last is not None
    return ExploreResult(last, max(tries, 1))


def without(scenario: Scenario, drop: set[int]) -> Scenario:
    """``scenario`` minus the steps at ``drop`` and everything that refers to them."""
    removed_ids: set[str] = set()
    kept: list[Step] = []
    for step in scenario.steps:
        refs = {
            v for k, v in step.params.items()
            if STEP_KINDS[step.do][1].get(k) is not None
            and STEP_KINDS[step.do][1][k].type == "ref" and isinstance(v, str)
        }
        if step.index in drop or refs & removed_ids:
            if step.id:
                removed_ids.add(step.id)
            continue
        kept.append(step)
    renumbered = tuple(replace(s, index=i) for i, s in enumerate(kept))
    e = scenario.expect
    expect = Expectations(
        rules=e.rules,
        outcomes=MappingProxyType({k: v for k, v in e.outcomes.items() if k not in removed_ids}),
        statuses=MappingProxyType({k: v for k, v in e.statuses.items() if k not in removed_ids}),
        counts=MappingProxyType({}),  # counts describe the whole scenario, not a part
        violations=e.violations,
        applicable=frozenset(),
    )
    callout = replace(scenario.callout, block=scenario.callout.block - removed_ids)
    return replace(scenario, steps=renumbered, expect=expect, callout=callout)


def shrink(session: Any, scenario: Scenario, seed: int, sig: frozenset[str],
           trace_dir: Path) -> Scenario:
    """Delta debugging (ddmin) over steps: the smallest scenario failing with ``sig``.

    Each candidate's trace is written to ``trace_dir`` (one file per try)."""
    tries = 0

    def fails(candidate: Scenario) -> bool:
        nonlocal tries
        if not candidate.steps:
            return False
        tries += 1
        result = session.run(candidate, seed=seed, attempt=tries, trace_dir=trace_dir)
        return bool(result.failures) and bool(signature(result) & sig)

    current = scenario
    chunks = 2
    while len(current.steps) >= 2:
        size = max(1, len(current.steps) // chunks)
        indices = [s.index for s in current.steps]
        reduced = False
        for start in range(0, len(indices), size):
            drop = set(indices[start:start + size])
            candidate = without(current, drop)
            if len(candidate.steps) < len(current.steps) and fails(candidate):
                current = candidate
                chunks = max(chunks - 1, 2)
                reduced = True
                break
        if not reduced:
            if size == 1:
                break
            chunks = min(chunks * 2, len(current.steps))
    return current
