"""A run of scenarios on one target: the logic behind the pytest plugin and ``run``.

The plugin and the CLI stay thin; both call :class:`HarnessSession`, which
owns the target, runs and judges scenarios, keeps traces in the output
directory, and renders the HTML report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.scenario.evaluate import ScenarioResult, evaluate
from harness.scenario.model import Scenario
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


def make_target(options: SessionOptions) -> Target:
    """The target an option set names: ``sim`` or a VM profile name."""
    if options.pool is None:
        check_vm_name(options.vm, options.search_dirs)
    if options.vm == "sim":
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

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
            self._target = None


