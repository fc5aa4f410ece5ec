"""A run of scenarios on one target: the logic behind the pytest plugin and ``run``.

The plugin and the CLI stay thin; both call :class:`HarnessSession`, which
validates the options when it is made, owns the target, and runs one item at
a time (:meth:`HarnessSession.run_item`: explore or retries included),
returning the one record type every front end shares
(:class:`~harness.scenario.record.ItemRecord`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, UsageError
from harness.scenario.evaluate import ScenarioResult, evaluate
from harness.scenario.model import Scenario
from harness.scenario.record import Attempt, ItemRecord
from harness.targets.base import Target


@dataclass(frozen=True)
class SessionOptions:
    vm: str = "sim"
    callout: str = "reference"
    seed: int | None = None
    out_dir: Path = Path("harness-out")
    faults: tuple[str, ...] = ()
    pool: Path | None = None
    driver: Path | None = None
    explore: int = 0
    #: run a failed scenario up to this many more times (a later pass is flaky)
    retries: int = 0
    vm_uri: str | None = None
    #: where long VM steps (boot, revert, image copy) report progress
    progress: Callable[[object], None] | None = None
    search_dirs: tuple[Path, ...] = ()


def check_vm_name(vm: str, search_dirs: tuple[Path, ...]) -> None:
    """``--vm NAME`` names ``sim`` or a profile file: else a usage error listing them."""
    if vm == "sim" or vm.startswith("pool:"):
        return
    from harness.vm.profile import PROFILE_SUFFIX, available_profiles

    dirs = search_dirs or (Path("fixtures"),)
    known = available_profiles(dirs)
    if vm not in known:
        where = ", ".join(str(d) for d in dirs)
        raise UsageError(f"--vm {vm}: no profile {vm}{PROFILE_SUFFIX} in {where}; "
                         f"known: sim, {', '.join(known) or '(none)'}")


def report_header(options: SessionOptions) -> dict[str, object]:
    """What the report's header says ran: the target and the code under test."""
    header: dict[str, object] = {"target": options.vm}
    if options.vm == "sim":
        header["callout"] = options.callout
        if options.faults:
            header["engine faults"] = ", ".join(options.faults)
    elif options.driver is not None:
        header["driver"] = str(options.driver)
    return header


def make_target(options: SessionOptions) -> Target:
    """The target an option set names: ``sim`` or a VM profile name."""
    if options.pool is None:
        check_vm_name(options.vm, options.search_dirs)
    if options.vm == "sim":
        if options.callout.startswith("c:"):
            # driver C code runs each scenario in a child: a crash fails that scenario only
            from harness.csim.target import IsolatedSimTarget

            return IsolatedSimTarget(callout=options.callout, faults=options.faults)
        from harness.targets.sim import SimTarget

        return SimTarget(callout=options.callout, faults=options.faults)
    if options.callout != "reference":
        raise UsageError("--callout applies to --vm sim only (a VM runs the real driver)")
    from harness.targets.vm import VmTarget

    return VmTarget.from_options(options)


@dataclass
class HarnessSession:
    """Built from its options, it validates them at once (callout, engine
    faults, the target's profile or pool): a mistake is a usage error before
    any scenario runs. A VM target leases its slot only when first used."""

    options: SessionOptions
    _target: Target | None = None

    def __post_init__(self) -> None:
        from harness.engine.faults import parse_faults

        parse_faults(self.options.faults)
        if self.options.vm != "sim" and self.options.faults:
            raise UsageError("--engine-fault applies to --vm sim only")
        self._target = make_target(self.options)

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = make_target(self.options)
        return self._target

    @property
    def target_name(self) -> str:
        return self.options.vm

    def seed_for(self, scenario: Scenario) -> int:
        return scenario.seed if self.options.seed is None else self.options.seed

    def run(self, scenario: Scenario, seed: int | None = None, attempt: int = 0,
            trace_dir: Path | None = None) -> ScenarioResult:
        """Run and judge one scenario; its trace goes to ``trace_dir`` (default
        ``<out>/traces``)."""
        seed = self.seed_for(scenario) if seed is None else seed
        out = trace_dir or self.options.out_dir / "traces"
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        run = self.target.run(scenario, seed=seed, out_dir=out, attempt=attempt)
        result = evaluate(scenario, run)
        result.run.meta.setdefault("duration_s", time.perf_counter() - started)
        return result

    def run_item(self, scenario: Scenario) -> ItemRecord:
        """Run one scenario item as the options say and judge it: explored
        under ``explore`` schedules, or retried up to ``retries`` times.

        A usage error propagates; any other harness error (a VM that broke,
        a callout that crashed) is an ``error`` record naming it, so one bad
        item never stops a run.
        """
        try:
            if self.options.explore:
                from harness.scenario.explore import explore

                found = explore(self, scenario, self.options.explore)
                return ItemRecord.from_result(found.result, explored=found.describe().strip())
            return self._run_with_retries(scenario)
        except UsageError:
            raise
        except HarnessError as exc:
            seed = self.seed_for(scenario)
            return ItemRecord.error(scenario.name, str(scenario.path), self.target_name, seed,
                                    f"{type(exc).__name__}: {exc}")

    def _run_with_retries(self, scenario: Scenario) -> ItemRecord:
        """Every attempt keeps its own trace; the record lists them all."""
        attempts: list[Attempt] = []
        result = self.run(scenario)
        while True:
            attempts.append(Attempt(len(attempts), result.outcome, str(result.run.trace_path),
                                    tuple(result.failures)))
            if not result.failures or len(attempts) > self.options.retries:
                return ItemRecord.from_result(result, tuple(attempts))
            result = self.run(scenario, attempt=len(attempts))

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
            self._target = None


