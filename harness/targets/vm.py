"""The VM target: scenarios in a libvirt guest made from a profile.

One slot is leased per process (per xdist worker) on first use, booted, and
prepared once: the golden snapshot is taken after deployment. Every scenario
then starts from that snapshot (revert), runs in the guest, and brings its
trace back. How a scenario runs in a guest depends on the profile's ``os``:

``linux``   (the ``linux-tcg`` test guest) the harness itself is the "driver":
            a zipapp of the engine model is copied in over SFTP at deployment,
            and each scenario runs in the guest over SSH, writing the trace there.
``windows`` the WDK-built driver of ``--driver`` is deployed (test signing, the
            certificate, pnputil or sc, optional Driver Verifier) together with
            the step agent (``drivers/agent``, cross-compiled here with
            mingw-w64, cached by source hash). Each scenario is compiled into
            a step plan that the agent runs as a scheduled task while one ETW
            session records the driver's and the agent's TraceLogging events;
            the ``.etl`` comes back and is decoded into the trace
            (:mod:`harness.guest.scenario_run`).

libvirt, paramiko and pywinrm are imported here, not by the core.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, TargetError, UsageError
from harness.scenario.model import Scenario
from harness.scenario.writer import dump_scenario
from harness.targets.base import RunOutput, StepResult, trace_name
from harness.targets.guest_run import STEPS_FILE

#: Where the linux guest keeps the harness and a run's files.
GUEST_HOME = "/opt/callout-harness"
GUEST_RUN = "/tmp/harness-run"
RUN_TIMEOUT_S = 600.0
#: HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND): the guest has no \\.\CalloutHarnessProbe
NO_PROBE_DEVICE = "0x80070002"


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = "".join(c for c in worker if c.isdigit())
    return int(digits) if digits else 0


def _echo_progress(event: object) -> None:
    print(f"[vm] {event}", file=sys.stderr, flush=True)


class VmTarget:
    """See the module docstring. ``close()`` releases the slot (always)."""

    def __init__(self, profile: Any, pool: Any, *, driver: Path | None, out_dir: Path,
                 progress: Any = _echo_progress, name: str | None = None) -> None:
        self.profile = profile  # the leased slot's own, once leased
        self.pool = pool
        self.name = name or profile.name
        self.driver = driver
        self.out_dir = out_dir
        self.progress = progress
        self._stack: ExitStack | None = None
        self._machine: Any = None
        self._guest_pyz: str | None = None
        self._broken: str | None = None
        self._watch: Any = None
        self._agent_remote: str | None = None
        self._manifest: Any = None

    @classmethod
    def from_options(cls, options: Any) -> VmTarget:
        from harness.vm.pool import load_pool, single_slot_pool
        from harness.vm.profile import find_profile

        dirs = [Path(d) for d in options.search_dirs] or [Path("fixtures")]
        out_dir = Path(options.out_dir)
        if options.pool is not None:
            pool = load_pool(options.pool, dirs)
            profiles = {slot.profile.name: slot.profile for slot in pool.slots}
            if not options.vm.startswith("pool:"):
                if options.vm not in profiles:
                    raise UsageError(
                        f"--vm {options.vm}: the pool {options.pool} has slots for "
                        f"{', '.join(sorted(profiles))}"
                    )
                pool = pool.only_profile(options.vm)
            if options.driver is None and any(
                    p.os == "windows" for p in profiles.values()):
                raise UsageError(f"the pool {options.pool} has Windows slots: it needs "
                                 "--driver drivers/NAME/driver.toml")
            return cls(pool.slots[0].profile, pool, driver=options.driver, out_dir=out_dir,
                       progress=options.progress or _echo_progress, name=options.vm)
        else:
            profile = find_profile(options.vm, dirs)
            slot = f"harness-{profile.name}-{os.getpid()}"
            pool = single_slot_pool(profile, name=slot, overlay_dir=out_dir / "vm",
                                    uri=options.vm_uri)
        if profile.os == "windows" and options.driver is None:
            raise UsageError(f"--vm {profile.name} needs --driver drivers/NAME/driver.toml")
        return cls(profile, pool, driver=options.driver, out_dir=out_dir,
                   progress=options.progress or _echo_progress)

    # -- the slot ------------------------------------------------------------

    @property
    def machine(self) -> Any:
        """The leased, booted machine, prepared (golden snapshot) on first use."""
        if self._broken is not None:
            # one failed set-up fails the rest fast, instead of re-leasing per test
            raise TargetError(f"the {self.name} slot could not be set up: {self._broken}")
        if self._machine is None:
            from harness.vm.metadata import new_run_id
            from harness.vm.provision import leased_machine

            stack = ExitStack()
            try:
                machine = stack.enter_context(leased_machine(
                    self.pool, run_id=os.environ.get("CALLOUT_HARNESS_RUN_ID") or new_run_id(),
                    worker_index=_worker_index(), progress=self.progress,
                ))
                self.profile = machine.profile
                if self.profile.os == "linux":
                    from harness.targets.zipapp import build_zipapp

                    pyz = build_zipapp(self.out_dir / "guest")
                    self._guest_pyz = f"{GUEST_HOME}/{pyz.name}"
                machine.prepare_golden(self._deploy)
                from harness.vm.crash import CrashWatch

                self._watch = stack.enter_context(CrashWatch(machine))
            except BaseException as exc:
                self._machine = None
                self._broken = f"{type(exc).__name__}: {exc}"
                stack.close()
                raise
            self._stack, self._machine = stack, machine
        return self._machine

    def _transport(self) -> Any:
        from harness.guest.base import open_transport
        from harness.guest.settings import settings_from_profile

        kind = "ssh" if self.profile.os == "linux" else "winrm"
        spec = self.profile.transports.get(kind)
        if spec is None:
            raise TargetError(f"profile {self.profile.name} has no [transport.{kind}]")
        _host, port = self._machine.endpoint(kind)
        extra = {"guest_shell": "posix"} if kind == "ssh" and self.profile.os == "linux" else {}
        return open_transport(settings_from_profile(spec, port, source=str(self.profile.path),
                                                    **extra))

    def _deploy(self, machine: Any) -> None:
        self._machine = machine
        if self.profile.os == "linux":
            self._deploy_model()
        else:
            self._deploy_driver()

    def _deploy_model(self) -> None:
        from harness.targets.zipapp import build_zipapp

        pyz = build_zipapp(self.out_dir / "guest")
        transport = self._transport()
        try:
            transport.run(f"mkdir -p {GUEST_HOME}", timeout_s=60).check("mkdir in the guest")
            remote = f"{GUEST_HOME}/{pyz.name}"
            transport.put_file(pyz, remote)
            transport.run(f"python3 {remote} --help", timeout_s=120).check(
                "running the harness zipapp in the guest")
        finally:
            transport.close()

    def _driver_manifest(self) -> Any:
        from harness.guest.manifest import load_manifest

        if self._manifest is None:
            assert self.driver is not None
            self._manifest = load_manifest(self.driver)
        return self._manifest

    def _deploy_driver(self) -> None:
        from harness.guest.deploy import Deployment

        manifest = self._driver_manifest()
        transport = self._transport()
        try:
            deployment = Deployment(transport, manifest)
            if deployment.enable_test_signing():
                self._reboot(transport)
            deployment.upload()
            deployment.import_certificate()
            deployment.install()
            deployment.start()
            self._install_agent(transport)
        finally:
            transport.close()

    def _install_agent(self, transport: Any) -> str:
        """Build the agent (cached by source hash) and copy it in unless it is there."""
        from harness.agent.build import build_agent
        from harness.guest.scenario_run import install_agent

        build = build_agent(self.out_dir / "agent")
        self._agent_remote = install_agent(transport, build.image, build.digest)
        return self._agent_remote

    def _reboot(self, transport: Any) -> None:
        from harness.guest.deploy import reboot_and_wait

        elapsed = reboot_and_wait(transport, timeout_s=900)
        self.progress(f"{self.name}: rebooted for test signing in {elapsed:.0f} s")

    # -- running a scenario --------------------------------------------------

    def run(self, scenario: Scenario, *, seed: int, out_dir: Path, attempt: int = 0
            ) -> RunOutput:
        machine = self.machine
        revert_s = machine.reset()
        # on a pool the trace is named for the slot's profile, which the lease chose
        local = Path(out_dir) / trace_name(scenario, self.profile.name, seed, attempt)
        evidence_dir = local.with_suffix(".crash")
        try:
            transport = self._transport()
            try:
                if self.profile.os == "linux":
                    steps = self._run_in_linux_guest(transport, scenario, seed, local)
                else:
                    steps = self._run_in_windows_guest(transport, scenario, seed, local,
                                                       attempt)
            finally:
                transport.close()
        except HarnessError:
            # a guest that died mid-run fails the test as a crash, with evidence
            self._watch.check(evidence_dir)
            raise
        self._watch.check(evidence_dir)
        return RunOutput(self.profile.name, seed, local, steps,
                         {"revert_s": round(revert_s, 3), "os_build": self._os_build()})

    def _run_in_linux_guest(self, transport: Any, scenario: Scenario, seed: int,
                            local: Path) -> dict[str, StepResult]:
        assert self._guest_pyz is not None
        work = f"{GUEST_RUN}/{scenario.name}"
        transport.run(f"rm -rf {shlex.quote(work)} && mkdir -p {shlex.quote(work)}/out",
                      timeout_s=60).check("preparing the guest's run folder")
        staged = local.with_suffix(".scenario.toml")
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(dump_scenario(scenario), encoding="utf-8")
        transport.put_file(staged, f"{work}/scenario.toml")
        staged.unlink()
        command = (
            f"python3 {shlex.quote(self._guest_pyz)} --scenario {shlex.quote(work)}/scenario.toml"
            f" --seed {seed} --out {shlex.quote(work)}/out"
            f" --name {shlex.quote(self.profile.name)}"
        )
        transport.run(command, timeout_s=RUN_TIMEOUT_S).check(
            f"running scenario {scenario.name} in the guest")
        results = local.with_suffix(".steps.json")
        transport.get_file(f"{work}/out/{STEPS_FILE}", results)
        data = json.loads(results.read_text(encoding="utf-8"))
        results.unlink()
        transport.get_file(f"{work}/out/{data['trace']}", local)
        return {name: StepResult(name, r.get("outcome"), r.get("status"), r.get("detail", ""))
                for name, r in data["steps"].items()}

    def _run_in_windows_guest(self, transport: Any, scenario: Scenario, seed: int,
                              local: Path, attempt: int) -> dict[str, StepResult]:
        from harness.agent.plan import compile_plan
        from harness.guest.scenario_run import RunPaths, WindowsScenarioRun

        manifest = self._driver_manifest()
        # after a revert the golden image has the agent; a newer build is copied in
        agent = self._install_agent(transport)
        plan = compile_plan(scenario, seed=seed,
                            callouts={c.layer: c.key for c in manifest.callouts})
        run = WindowsScenarioRun(transport, agent=agent, driver_provider=manifest.etw_provider,
                                 run_timeout_s=RUN_TIMEOUT_S, progress=self.progress)
        steps, meta = run.run(plan, RunPaths.for_run(scenario.name, seed, attempt), local,
                              target=self.profile.name, scenario=scenario.name, seed=seed,
                              driver=manifest.name)
        if meta["agent_error"]:
            raise TargetError(f"the step agent refused the plan of {scenario.name}: "
                              f"{meta['agent_error']}")
        probe = meta["probe"]
        if probe is not None and probe.status == NO_PROBE_DEVICE:
            # not the probe (a user's own driver takes its settings its own way)
            self.progress(f"{scenario.name}: no probe device in the guest; the scenario's "
                          "[callout] settings were not sent")
        elif probe is not None and probe.status not in (None, "STATUS_SUCCESS"):
            # the probe would run with the knobs of another scenario: not a valid run
            raise TargetError(f"{scenario.name}: the probe's [callout] settings did not reach "
                              f"the driver: {probe.detail}")
        return steps

    def _os_build(self) -> str:
        return f"{self.profile.name} ({self.profile.os})"

    def close(self) -> None:
        stack, self._stack, self._machine = self._stack, None, None
        if stack is not None:
            stack.close()
