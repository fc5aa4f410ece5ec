"""The pytest plugin of callout-harness (entry point ``pytest11``).

Thin by design: options, collection of scenario files, fixtures and report
hooks. The logic lives in :mod:`harness.session` and below. Heavy clients
(libvirt, pywinrm, paramiko) are imported only by the VM target, when a
test asks for one.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError, UsageError
from harness.options import add_to_pytest

_SESSION_KEY = pytest.StashKey["Any"]()
#: A scenario item's record (harness.scenario.record.ItemRecord), once it ran.
RECORD_KEY = pytest.StashKey["Any"]()
#: The plugin object that gathers the records from reports (on the xdist controller too).
REPORT_PLUGIN = "callout-harness-report"

# Nightly CI and certification (--certify, --errata, --harness-retries) live in
# their own plugin module, loaded with this one.
pytest_plugins = ["harness.plugin_ci"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("callout-harness", "WFP callout driver scenarios")
    add_to_pytest(group)
    group.addoption("--harness-out", dest="harness_out", metavar="DIR", default=None,
                    help="directory for traces and the HTML report (default harness-out)")
    group.addoption("--vm-pool", dest="harness_pool", metavar="FILE", default=None,
                    help="pool file of VM slots; each xdist worker leases one")
    parser.addini("harness_vm", "default --vm target", default="sim")
    parser.addini("harness_out", "default --harness-out directory", default="harness-out")
    parser.addini("harness_scenario_dirs", "directories whose *.toml files are scenarios",
                  type="linelist", default=["scenarios"])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "harness_target(*names): run the test only on these targets (e.g. 'sim', 'win11'); "
        "elsewhere it is skipped with the reason",
    )
    config.addinivalue_line(
        "markers", "harness_scenario: a scenario file item (select them with -m harness_scenario)"
    )
    from harness.guest.credentials import install_redaction

    install_redaction()  # log records and reports never carry a secret, on every process
    config.pluginmanager.register(_ReportCollector(config), REPORT_PLUGIN)
    _check_target(config)
    _check_driver(config)
    # A bad --callout, --engine-fault or target set-up (a profile whose images
    # are not there) stops the run once here, not once per scenario.
    try:
        harness_session(config)
    except HarnessError as exc:
        raise pytest.UsageError(f"{type(exc).__name__}: {exc}") from None


def _check_target(config: pytest.Config) -> None:
    """An unknown ``--vm`` is a usage error at start-up, not a failure per test."""
    vm = config.getoption("harness_vm")
    if not vm or config.getoption("harness_pool"):
        return
    from harness.session import check_vm_name

    try:
        check_vm_name(vm, (Path(config.rootpath) / "fixtures",))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _check_driver(config: pytest.Config) -> None:
    """A bad ``--driver`` manifest is a usage error at start-up."""
    driver = config.getoption("harness_driver")
    if not driver:
        return
    from harness.guest.manifest import load_manifest

    try:
        load_manifest(driver, check_binaries=False)
    except HarnessError as exc:
        raise pytest.UsageError(f"--driver: {exc}") from None


def _options(config: pytest.Config) -> Any:
    from harness.session import SessionOptions

    out = config.getoption("harness_out") or config.getini("harness_out")
    out_dir = Path(out)
    if not out_dir.is_absolute():
        out_dir = Path(config.rootpath) / out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--harness-out {out}: expected a directory for traces and the "
                         "report, found a file")
    vm = _target_name(config)
    pool = config.getoption("harness_pool")
    driver = config.getoption("harness_driver")
    return SessionOptions(
        vm=vm,
        callout=config.getoption("harness_callout") or "reference",
        seed=config.getoption("harness_seed"),
        out_dir=out_dir,
        faults=tuple(config.getoption("harness_faults")),
        pool=Path(pool) if pool else None,
        driver=Path(driver) if driver else None,
        explore=config.getoption("harness_explore"),
        retries=config.getoption("harness_retries", 0) or 0,
        vm_uri=config.getoption("harness_vm_uri"),
        progress=_progress_writer(config),
        search_dirs=(Path(config.rootpath) / "fixtures",),
    )


def _progress_writer(config: pytest.Config) -> Callable[[object], None] | None:
    """Long VM steps report to the terminal directly, past output capture."""

    def write(event: object) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"[vm] {event}")

    return write


def _target_name(config: pytest.Config) -> str:
    """``--vm``, or ``pool:NAME`` for ``--vm-pool NAME.toml`` without ``--vm``."""
    vm = config.getoption("harness_vm")
    pool = config.getoption("harness_pool")
    if vm is None and pool:
        return f"pool:{Path(pool).stem}"
    return str(vm or config.getini("harness_vm"))


def harness_session(config: pytest.Config) -> Any:
    """The run's :class:`~harness.session.HarnessSession`, made on first use."""
    from harness.session import HarnessSession

    session = config.stash.get(_SESSION_KEY, None)
    if session is None:
        session = HarnessSession(_options(config))
        config.stash[_SESSION_KEY] = session
    return session


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION_KEY, None)
    if session is not None:
        session.close()


# -- collection --------------------------------------------------------------

def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix != ".toml":
        return None
    dirs = parent.config.getini("harness_scenario_dirs")
    # a scenario file named on the command line is collected wherever it is
    if parent.session.isinitpath(file_path) or file_path.parent.name in dirs or any(
        str(file_path.parent).endswith(str(Path(d))) for d in dirs
    ):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one item per target; a mistake is a one-line collect error."""

    def collect(self) -> Iterator[pytest.Item]:
        from harness.errors import ScenarioError
        from harness.scenario.loader import load_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        target = _target_name(self.config)
        yield ScenarioItem.from_parent(self, name=f"{scenario.name}[{target}]",
                                       scenario=scenario)

    class CollectError(Exception):
        pass

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, self.CollectError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class ScenarioFailed(Exception):
    """A scenario item's failure, carrying the text pytest shows for it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ScenarioItem(pytest.Item):
    """One scenario on the run's target, judged by :mod:`harness.scenario.evaluate`."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.add_marker(pytest.mark.harness_scenario)

    def runtest(self) -> None:
        from harness.report.failure import describe_failure

        record = harness_session(self.config).run_item(self.scenario)
        self.stash[RECORD_KEY] = record
        self.user_properties.extend(record.properties())
        if record.outcome == "error":
            raise ScenarioFailed(record.failures[0])
        if record.failures:
            raise ScenarioFailed(describe_failure(record, replay=self._replay(record)))

    def _replay(self, result: Any) -> str:
        vm = _target_name(self.config)
        callout = self.config.getoption("harness_callout")
        parts = ["pytest", str(self.path.relative_to(self.config.rootpath))
                 if self.path.is_relative_to(self.config.rootpath) else str(self.path)]
        pool = self.config.getoption("harness_pool")
        target = ["--vm-pool", str(pool)] if vm.startswith("pool:") and pool else ["--vm", vm]
        parts += [*target, "--seed", str(result.seed)]
        if callout:
            parts += ["--callout", callout]
        for fault in self.config.getoption("harness_faults") or ():
            parts += ["--engine-fault", fault]
        return " ".join(parts)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.scenario.name}"


# -- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Any:
    """The :class:`~harness.targets.base.Target` this run uses (``--vm``)."""
    return harness_session(request.config).target


class TraceHandle:
    """The trace of the last scenario ``run_scenario`` ran in this test."""

    def __init__(self) -> None:
        self.path: Path | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        from harness.trace.reader import TraceReader

        if self.path is None:
            raise UsageError("no scenario has run in this test yet: call run_scenario first")
        return list(TraceReader(self.path))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["ev"] == kind]


@pytest.fixture
def trace() -> TraceHandle:
    """The trace of the most recent ``run_scenario`` call in this test."""
    return TraceHandle()


@pytest.fixture
def run_scenario(request: pytest.FixtureRequest, trace: TraceHandle) -> Callable[..., Any]:
    """Run a scenario (a name from the catalog, a path, or a Scenario) on ``--vm``.

    Returns the :class:`~harness.scenario.evaluate.ScenarioResult`; the trace is
    written under ``--harness-out`` and also reachable through ``trace``.
    """
    from harness.scenario.lookup import resolve_scenario

    session = harness_session(request.config)

    def run(scenario: Any, *, seed: int | None = None) -> Any:
        sc = resolve_scenario(scenario, Path(request.config.rootpath))
        result = session.run(sc, seed=seed)
        trace.path = result.run.trace_path
        return result

    return run


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """The call report of a scenario item carries its whole record (see RECORD_KEY)."""
    outcome = yield
    record = item.stash.get(RECORD_KEY, None)
    if call.when == "call" and record is not None:
        outcome.get_result().user_properties.append(record.record_property())


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("harness_target")
    if marker is None:
        return
    current = _target_name(item.config)
    if current not in marker.args:
        pytest.skip(f"needs target {' or '.join(marker.args)}; this run uses --vm {current}")


# -- reporting ---------------------------------------------------------------

class _ReportCollector:
    """Gathers scenario records from reports; on the xdist controller too,
    so the HTML report covers every worker's items."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.entries: list[tuple[str, str, Any]] = []
        #: the record of each scenario item's call report, by node id (harness.plugin_ci)
        self.records: dict[str, Any] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # First of all logreport hooks, so that JUnit XML never sees the record blob.
        # On an xdist worker the report goes to the controller as it is.
        if report.when != "call" or hasattr(self.config, "workerinput"):
            return
        from harness.scenario.record import OUTCOME_PROP, RECORD_PROP, record_from_properties

        props = dict(report.user_properties)
        record = record_from_properties(props)
        if record is None:
            return
        report.user_properties = [(k, v) for k, v in report.user_properties
                                  if k != RECORD_PROP]
        self.records[report.nodeid] = record
        # known / flaky (harness.plugin_ci) are outcomes pytest itself does not have
        outcome = str(props.get(OUTCOME_PROP) or report.outcome)
        self.entries.append((report.nodeid, outcome, record))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput") or not self.entries:
            return
        from harness.report.failure import write_run_report
        from harness.session import report_header

        options = _options(self.config)
        header = report_header(options)
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            header["interrupted"] = f"after {len(self.entries)} item(s)"
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        try:
            path = write_run_report(options.out_dir, self.entries, **header)
        except KeyboardInterrupt:
            if reporter is not None:
                reporter.write_line("callout-harness: interrupted while writing the report; "
                                    "no report was written")
            return
        if reporter is not None:
            reporter.write_line(f"callout-harness report: {path}")
