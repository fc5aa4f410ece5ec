"""The nightly-CI half of the pytest plugin: certification bundles, errata, retries.

Loaded by :mod:`harness.plugin` (``pytest_plugins``). Options join the same
"callout-harness" group:

- ``--certify DIR``: at the end of the run, write DIR (JUnit XML, results.json,
  every trace, the HTML report, environment.json, SHA256SUMS) and DIR.tar.gz;
- ``--errata FILE``: failures matched by live known-issue entries are reported
  as ``known`` (not green, not red); an expired entry turns them red again;
- ``--harness-retries N``: a failed scenario runs up to N more times, and a
  later pass is ``flaky``, never a plain pass;
- ``--errata-stale-runs N`` and ``--errata-history FILE``: report entries that
  matched nothing in N consecutive runs.

Under xdist, items are judged on the workers (where they run) and the bundle
is written by the controller only.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from harness.errata import DEFAULT_STALE_RUNS, MAX_STALE_RUNS, Errata, StaleEntry, load_errata
from harness.errors import HarnessError
from harness.options import MAX_RETRIES, whole_number
from harness.plugin import RECORD_KEY, REPORT_PLUGIN
from harness.scenario.record import KNOWN_PROP, MESSAGE_PROP, OUTCOME_PROP, ItemRecord
from harness.verdict import ItemOutcome, default_os_build, errata_report, judge_record

_STATE_KEY = pytest.StashKey["CiRun"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("callout-harness", "WFP callout driver scenarios")
    group.addoption("--certify", dest="harness_certify", metavar="DIR", default=None,
                    help="write a certification bundle to DIR and DIR.tar.gz (JUnit XML, "
                         "results.json, traces, report, environment.json, SHA256SUMS)")
    group.addoption("--certify-key", dest="harness_certify_key", metavar="KEY", default=None,
                    help="SSH private key that signs the bundle's SHA256SUMS "
                         "(ssh-keygen -Y sign); verify with certify verify --trusted")
    group.addoption("--errata", dest="harness_errata", metavar="FILE", default=None,
                    help="known-issues file: failures matched by live entries are 'known'")
    group.addoption("--harness-retries", dest="harness_retries", metavar="N", default=0,
                    type=whole_number(0, MAX_RETRIES),
                    help="run a failed scenario up to N more times; a later pass is 'flaky'")
    group.addoption("--errata-stale-runs", dest="harness_errata_stale_runs", metavar="N",
                    default=DEFAULT_STALE_RUNS, type=whole_number(1, MAX_STALE_RUNS),
                    help="report errata entries that matched nothing in N consecutive runs "
                         f"(default {DEFAULT_STALE_RUNS}; counted with --errata-history)")
    group.addoption("--errata-history", dest="harness_errata_history", metavar="FILE",
                    default=None,
                    help="history file (callout-harness history add) to count stale entries")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def interrupted(session: pytest.Session) -> bool:
    """Whether the run was cut short by Ctrl-C (or SIGTERM turned into it)."""
    return session.exitstatus == pytest.ExitCode.INTERRUPTED or "interrupted" in str(
        session.shouldstop or "")


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: --junitxml must be set before pytest's junitxml plugin configures.
    errata = None
    path = config.getoption("harness_errata", None)
    if path:
        try:
            errata = load_errata(path)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
    certify = config.getoption("harness_certify", None)
    bundle = Path(certify).resolve() if certify else None
    junit = None
    sign_key: Path | None = None
    if bundle is not None and not _is_worker(config):
        from harness.certify.bundle import JUNIT, check_bundle_dir
        from harness.certify.signing import check_sign_key

        try:
            check_bundle_dir(bundle)
            key = config.getoption("harness_certify_key", None)
            sign_key = check_sign_key(Path(key)) if key else None
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
        if not config.option.xmlpath:
            config.option.xmlpath = str(bundle / JUNIT)
        junit = Path(config.option.xmlpath).resolve()
    elif config.getoption("harness_certify_key", None) and not _is_worker(config):
        raise pytest.UsageError("--certify-key signs a bundle: it needs --certify DIR")
    state = CiRun(config, errata, bundle, junit, sign_key)
    config.stash[_STATE_KEY] = state
    config.pluginmanager.register(state, "callout-harness-ci")


# -- judging an item -------------------------------------------------------------

def judge_report(report: pytest.TestReport, record: ItemRecord | None,
                 errata: Errata | None) -> None:
    """Turn a scenario item's call report into known / flaky / red-with-reason."""
    if report.when != "call" or record is None:
        return
    item = judge_record(record, errata=errata, nodeid=report.nodeid)
    if report.failed and item.outcome == "known":
        report.sections.append(("known issue", f"{item.message}\n\n{report.longreprtext}"))
        report.outcome = "passed"
        report.longrepr = None
    elif report.failed and item.message:
        report.longrepr = f"{item.message}\n{report.longreprtext}"
    outcome = item.outcome if report.outcome == "passed" else report.outcome
    report.user_properties.append((OUTCOME_PROP, outcome))
    if item.known_issues:
        report.user_properties.append((KNOWN_PROP, json.dumps(item.known_issues)))
    if item.message:
        report.user_properties.append((MESSAGE_PROP, item.message))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    state = item.config.stash.get(_STATE_KEY, None)
    before = len(report.user_properties)
    try:
        judge_report(report, item.stash.get(RECORD_KEY, None), state.errata if state else None)
    except KeyboardInterrupt:  # Ctrl-C here must stop the run, not be an INTERNALERROR
        item.session.shouldstop = "interrupted (Ctrl-C)"
        return
    # Also on the item, so pytest's JUnit XML (written from the teardown report) has them.
    item.user_properties.extend(report.user_properties[before:])


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if report.when != "call":
        return None
    kind = dict(report.user_properties).get(OUTCOME_PROP)
    if kind == "known":
        return "known", "K", ("KNOWN", {"yellow": True})
    if kind == "flaky":
        return "flaky", "~", ("FLAKY", {"purple": True})
    return None


# -- the run's end: the bundle (controller only) -----------------------------------

def item_from_report(nodeid: str, props: dict[str, Any], record: ItemRecord | None,
                     vm: str) -> ItemOutcome:
    """The bundle's view of an item, from its report's record and properties."""
    outcome = str(props.get(OUTCOME_PROP) or props["outcome"])
    if record is None:  # the harness could not run it: an error, with its text
        name = nodeid.rsplit("::", 1)[-1].split("[", 1)[0]
        text = str(props.get("text", ""))
        record = ItemRecord.error(name, "", str(props.get("target", vm)), None,
                                  text.splitlines()[0] if text else "error")
        return ItemOutcome(record.as_json(), "error", list(record.attempts), message=text,
                           nodeid=nodeid)
    known = [str(k) for k in json.loads(str(props.get(KNOWN_PROP) or "[]"))]
    return ItemOutcome(record.as_json(), outcome, list(record.attempts),
                       record.os_build or default_os_build(record.target),
                       known, str(props.get(MESSAGE_PROP, "")), nodeid)


class CiRun:
    """One pytest run's errata, bundle directory and scenario reports (a plugin object)."""

    def __init__(self, config: pytest.Config, errata: Errata | None, certify: Path | None,
                 junit: Path | None, sign_key: Path | None = None) -> None:
        self.config = config
        self.errata = errata
        self.certify = certify
        self.junit = junit
        self.sign_key = sign_key
        self.entries: list[tuple[str, dict[str, Any], ItemRecord | None]] = []
        self.bundle: Any = None
        self.skipped_bundle = False
        self.stale: list[StaleEntry] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        props = dict(report.user_properties)
        collector = self.config.pluginmanager.get_plugin(REPORT_PLUGIN)
        record = collector.records.get(report.nodeid) if collector is not None else None
        if record is not None or "harness_scenario" in report.keywords:
            self.entries.append((report.nodeid, {**props, "outcome": report.outcome,
                                                 "text": report.longreprtext}, record))

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, Any, None]:
        # After every plain sessionfinish (pytest's JUnit XML is written by then) and
        # before the terminal summary, which says where the bundle went.
        yield
        if _is_worker(self.config) or (self.certify is None and self.errata is None):
            return
        if interrupted(session):
            # A bundle of part of a run would verify as a whole one: write none.
            self.skipped_bundle = self.certify is not None
            return
        try:
            self._finish()
        except KeyboardInterrupt:
            self.skipped_bundle = self.certify is not None
            _say(self.config, "callout-harness: interrupted while writing the bundle; "
                              "no bundle was written")

    def _finish(self) -> None:
        config = self.config
        vm = config.getoption("harness_vm") or config.getini("harness_vm")
        items = [item_from_report(nodeid, props, record, vm)
                 for nodeid, props, record in sorted(self.entries, key=lambda e: e[0])]
        history_opt = config.getoption("harness_errata_history", None)
        history = Path(history_opt) if history_opt else None
        runs = config.getoption("harness_errata_stale_runs", DEFAULT_STALE_RUNS)
        if self.certify is None:
            from harness.history.records import errata_sections

            previous = errata_sections(history) if history is not None else []
            self.stale = errata_report(self.errata, items, stale_runs=runs,
                                       previous=previous).stale
            return
        from harness.certify.bundle import finish_bundle

        driver = config.getoption("harness_driver", None)
        self.bundle, report = finish_bundle(
            self.certify, items, vm=vm, driver=Path(driver) if driver else None,
            root=Path(config.rootpath), errata=self.errata, junit=self.junit,
            history=history, stale_runs=runs,
            command=["pytest", *config.invocation_params.args], sign_key=self.sign_key,
        )
        self.stale = report.stale

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if _is_worker(self.config):
            return
        tr = terminalreporter
        known = tr.stats.get("known", [])
        flaky = tr.stats.get("flaky", [])
        if known or flaky or self.stale:
            tr.write_sep("=", "callout-harness: known issues, flaky items, stale errata")
        for report in known:
            message = dict(report.user_properties).get(MESSAGE_PROP, "")
            tr.write_line(f"KNOWN {report.nodeid}: {message}")
        for report in flaky:
            tries = int(dict(report.user_properties).get("attempts", 2))
            tr.write_line(f"FLAKY {report.nodeid}: passed on attempt {tries} after "
                          f"{tries - 1} failed attempt(s)")
        for stale in self.stale:
            tr.write_line(stale.describe())
        if self.bundle is not None:
            tr.write_line(f"callout-harness certification bundle: {self.bundle.directory} "
                          f"({self.bundle.archive.name})")
        elif self.skipped_bundle:
            tr.write_line(f"callout-harness: the run was interrupted, so no certification "
                          f"bundle was written to {self.certify}")
