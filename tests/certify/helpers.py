"""Tiny scenario projects for pytester runs on the engine model, and synthetic bundle items."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.trace.writer import write_events
from harness.verdict import Attempt, ItemOutcome
from tests.support.tracebuild import TraceBuilder

needs_sim = pytest.mark.skipif(
    importlib.util.find_spec("harness.targets.sim") is None,
    reason="the sim target (harness.targets.sim) is not in this tree yet",
)

#: Pends a connect: the 'forgets_complete' mutant leaves the pend open (PC001).
PEND_CONNECT = """\
description = "pend an outbound connect, then close it"

[callout]
pend = ["connect"]
delay_ms = 30

[[steps]]
id = "c1"
do = "tcp_connect"

[[steps]]
do = "close"
of = "c1"

[expect]
rules = ["PC001"]
"""

#: Never pends, so it passes whatever the mutant does with completions.
PLAIN_CONNECT = PEND_CONNECT.replace('pend = ["connect"]', "pend = []").replace(
    "pend an outbound connect", "an outbound connect answered at once")

#: A target that fails the first attempt of every scenario and passes the
#: retries: the engine model with a pend-leaking callout, then the reference one.
FLAKY_CONFTEST = """
import harness.session
from harness.targets.sim import SimTarget


class FlakyTarget:
    name = "sim"

    def __init__(self):
        self.broken = SimTarget(callout="mutant:forgets_complete")
        self.good = SimTarget()
        self.seen = set()

    def run(self, scenario, *, seed, out_dir, attempt=0):
        first = scenario.name not in self.seen
        self.seen.add(scenario.name)
        target = self.broken if first else self.good
        return target.run(scenario, seed=seed, out_dir=out_dir, attempt=attempt)

    def close(self):
        pass


_original = harness.session.make_target


def pytest_configure(config):
    harness.session.make_target = lambda options: FlakyTarget()


def pytest_unconfigure(config):
    # pytester runs in-process: leave the module as it was found.
    harness.session.make_target = _original
"""


def scenario_project(pytester: pytest.Pytester, *, flaky: bool = False) -> None:
    """scenarios/pend-connect.toml and scenarios/plain-connect.toml (and a flaky target)."""
    scenarios = pytester.mkdir("scenarios")
    (scenarios / "pend-connect.toml").write_text(PEND_CONNECT, encoding="utf-8")
    (scenarios / "plain-connect.toml").write_text(PLAIN_CONNECT, encoding="utf-8")
    if flaky:
        pytester.makeconftest(FLAKY_CONFTEST)


def errata_file(pytester: pytest.Pytester, *, expires: str = "2999-01-01",
                created: str = "2026-01-01", rule: str = "PC001") -> str:
    path = pytester.path / "errata.toml"
    path.write_text(
        "[[known]]\n"
        f'rule = "{rule}"\n'
        'target = "si*"\n'
        'reason = "pend leak in the retry path, bug 1234"\n'
        'owner = "alice"\n'
        f"created = {created}\n"
        f"expires = {expires}\n",
        encoding="utf-8",
    )
    return str(path)


# -- synthetic items (no target needed) ------------------------------------------

OK = "STATUS_SUCCESS"


def _trace(path: Path, leak: bool) -> int:
    tb = TraceBuilder()
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=5, proto="tcp", dir="out", can_pend=True)
    pend = tb.add("pend_operation", id=c, ctx="c1", status=OK)
    tb.done(c, "BLOCK", True)
    if not leak:
        tb.add("complete_operation", ctx="c1", dt=0.05)
    write_events(path, tb.events, target="sim")
    return pend


#: The rules the synthetic items are judged by (as a scenario's ``expect.rules``).
RULES = ["PC001"]


def _record(name: str, trace: Path, failures: list[str], violations: list[dict]) -> dict:
    from harness.contract.checker import check_file

    # What the checker itself says of the trace, as the plugin records it.
    assert [v.as_json() for v in check_file(trace, RULES).violations] == violations
    return {"scenario": name, "target": "sim", "seed": 7, "outcome": "failed" if failures else "passed",
            "failures": failures, "violations": violations, "expected_violations": [],
            "rules": RULES, "trace": str(trace), "duration_s": 0.25}


def make_items(work: Path) -> list[ItemOutcome]:
    work.mkdir(parents=True, exist_ok=True)
    ok = work / "connect-ok.sim.seed7.jsonl"
    _trace(ok, leak=False)
    bad = work / "connect-leak.sim.seed7.jsonl"
    pend = _trace(bad, leak=True)
    first, retry = work / "flaky.sim.seed7.jsonl", work / "flaky.sim.seed7-try1.jsonl"
    _trace(first, leak=True)
    _trace(retry, leak=False)
    leak = {"rule": "PC001", "party": "driver", "severity": "error",
            "message": "pend ctx 'c1' (pended in classify 'k1' at ALE_AUTH_CONNECT_V4, "
                       "endpoint 5) was never completed",
            "events": [pend - 1, pend]}  # the classify that pended, and the pend
    failure = f"PC001 broken: {leak['message']} (events [{pend - 1}, {pend}])"
    return [
        ItemOutcome(_record("connect-ok", ok, [], []), "passed",
                    [Attempt(0, "passed", str(ok))], "engine-model"),
        ItemOutcome(_record("connect-leak", bad, [failure], [leak]), "failed",
                    [Attempt(0, "failed", str(bad), (failure,))], "engine-model"),
        ItemOutcome(_record("flaky", retry, [], []), "flaky",
                    [Attempt(0, "failed", str(first), (failure,)), Attempt(1, "passed", str(retry))],
                    "engine-model"),
    ]
