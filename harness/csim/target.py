"""The ``sim`` target for C callouts: every run in a child process.

It is the engine-model target (:class:`~harness.targets.sim.SimTarget`) with
one difference: a ``c:`` callout's scenario runs in a child (a forked worker,
or a fresh interpreter for the sanitizer build), so a crash in driver code
fails that scenario as "driver crashed" and never the caller. In the child
the same target runs the scenario in-process.
"""

from __future__ import annotations

from pathlib import Path

from harness.csim.isolate import run_isolated
from harness.csim.process import in_child
from harness.scenario.model import Scenario
from harness.scenario.output import RunOutput
from harness.targets.base import trace_name
from harness.targets.sim import SimTarget


class IsolatedSimTarget(SimTarget):
    """:class:`SimTarget` whose runs happen in a child process (see the module docstring)."""

    def run(
        self, scenario: Scenario, *, seed: int, out_dir: Path, attempt: int = 0
    ) -> RunOutput:
        if in_child():
            return super().run(scenario, seed=seed, out_dir=out_dir, attempt=attempt)
        path = Path(out_dir) / trace_name(scenario, self.name, seed, attempt)
        return run_isolated(
            lambda: super(IsolatedSimTarget, self).run(scenario, seed=seed, out_dir=out_dir,
                                                       attempt=attempt),
            scenario.name, path,
            job=(self.callout_spec, self.faults, str(scenario.path), seed, str(out_dir),
                 attempt),
        )
