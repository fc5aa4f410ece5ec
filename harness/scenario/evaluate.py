"""Judge a scenario's run: contract rules, observed outcomes, statuses and counts.

The verdict is the same whatever the target: the trace is checked against
the rules the scenario selects, counts are computed from the trace, and the
steps' observations are compared with the expectations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.contract.checker import CheckResult, check_file
from harness.scenario.model import Scenario
from harness.scenario.output import RunOutput
from harness.trace.events import Event, layer_family
from harness.trace.reader import TraceReader
from harness.trace.status import succeeded

PASSED, FAILED = "passed", "failed"


@dataclass
class ScenarioResult:
    scenario: Scenario
    run: RunOutput
    check: CheckResult
    counts: dict[str, int]
    failures: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return FAILED if self.failures else PASSED

    @property
    def unexpected(self) -> list[str]:
        """Rule IDs that broke but were not expected to."""
        return sorted({v.rule for v in self.check.violations} - self.scenario.expect.violations)


def count_events(events: Iterable[Event]) -> dict[str, int]:
    """The counts an expectation may name (see ``harness.scenario.model.COUNTS``)."""
    c = dict.fromkeys(
        ("closures", "releases", "assignments", "listens", "connects", "accepts",
         "reauthorizations", "pends", "pended_closures", "injections", "policy_changes",
         "forced_aborts", "txn_timeouts"), 0)
    by_layer = {
        "ALE_ENDPOINT_CLOSURE": "closures", "ALE_RESOURCE_RELEASE": "releases",
        "ALE_RESOURCE_ASSIGNMENT": "assignments", "ALE_AUTH_LISTEN": "listens",
    }
    for ev in events:
        kind = ev["ev"]
        if kind == "classify":
            family = layer_family(str(ev.get("layer", "")))
            if ev.get("reauth"):
                c["reauthorizations"] += 1
            elif family in by_layer:
                c[by_layer[family]] += 1
            elif ev.get("injection", "none") == "none":
                if family == "ALE_AUTH_CONNECT":
                    c["connects"] += 1
                elif family == "ALE_AUTH_RECV_ACCEPT":
                    c["accepts"] += 1
        elif kind == "pend_operation" and succeeded(ev.get("status")):
            c["pends"] += 1
        elif kind == "pend_classify" and succeeded(ev.get("status")):
            c["pended_closures"] += 1
        elif kind == "inject" and succeeded(ev.get("status")):
            c["injections"] += 1
        elif kind == "policy_change":
            c["policy_changes"] += 1
        elif kind == "txn_forced_abort":
            c["forced_aborts"] += 1
        elif kind == "txn_begin" and ev.get("status") == "FWP_E_TIMEOUT":
            c["txn_timeouts"] += 1
    return c


def evaluate(scenario: Scenario, run: RunOutput) -> ScenarioResult:
    """Check the run's trace and compare what happened with what was expected."""
    expect = scenario.expect
    check = check_file(run.trace_path, expect.rules)
    counts = count_events(TraceReader(run.trace_path))
    failures: list[str] = []
    fired = {v.rule for v in check.violations}
    # A scenario states every violation it expects, warnings included: an
    # unexpected warning fails it too (``check`` alone lets warnings pass).
    for rule in sorted(fired - expect.violations):
        first = next(v for v in check.violations if v.rule == rule)
        kind = "warned" if first.severity == "warning" else "broken"
        failures.append(f"{rule} {kind}: {first.message} (events {list(first.events)})")
    for rule in sorted(expect.violations - fired):
        failures.append(f"{rule} expected to be broken, but was not")
    for rule in sorted(expect.applicable & set(check.not_applicable)):
        failures.append(f"{rule} expected to apply, but the trace never exercised it")
    for step_id, want in expect.outcomes.items():
        got = run.steps.get(step_id)
        if got is None or got.outcome != want:
            failures.append(
                f"step {step_id}: expected {want}, observed {got.outcome if got else 'nothing'}"
            )
    for step_id, want in expect.statuses.items():
        got = run.steps.get(step_id)
        if got is None or got.status != want:
            failures.append(
                f"step {step_id}: expected status {want}, got {got.status if got else 'none'}"
            )
    for name, want_count in expect.counts.items():
        if counts.get(name) != want_count:
            failures.append(f"count {name}: expected {want_count}, trace has {counts.get(name)}")
    return ScenarioResult(scenario, run, check, counts, failures)
