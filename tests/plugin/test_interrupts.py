"""Ctrl-C under pytest: the harness's hooks stop cleanly, and an interrupted
certification run writes no bundle that would pass for a whole run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CATALOG = Path(__file__).resolve().parents[2] / "scenarios"
INTERRUPT_AFTER_FIRST = """
import pytest

@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if report.when == "call" and "{first}" in report.nodeid:
        raise KeyboardInterrupt
"""


def _catalog(pytester: pytest.Pytester, *names: str) -> None:
    (pytester.path / "scenarios").mkdir()
    for name in names:
        shutil.copy(CATALOG / f"{name}.toml", pytester.path / "scenarios")


def test_interrupted_certify_run_writes_no_bundle(pytester: pytest.Pytester) -> None:
    _catalog(pytester, "connect-pend-permit", "txn-one-per-session", "connect-pend-block")
    pytester.makeconftest(INTERRUPT_AFTER_FIRST.format(first="connect-pend-block"))
    bundle = pytester.path / "bundle"
    result = pytester.runpytest("scenarios", "--certify", str(bundle), "-p", "no:cacheprovider",
                                no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert "the run was interrupted, so no certification bundle was written" in out
    assert not (bundle / "SHA256SUMS").exists()
    assert not list(pytester.path.glob("bundle*.tar.gz"))
    assert "INTERNALERROR" not in out
    # the report says the run was cut short, and is whole
    report = (pytester.path / "harness-out" / "report.html").read_text()
    assert "interrupted after 1 item(s)" in report and report.endswith("</html>")


def test_interrupt_while_judging_a_report_is_not_an_internal_error(
    pytester: pytest.Pytester,
) -> None:
    _catalog(pytester, "connect-pend-permit", "txn-one-per-session")
    pytester.makeconftest("""
import pytest
import harness.plugin_ci as ci

def boom(*args, **kwargs):
    raise KeyboardInterrupt

ci.judge_report = boom
""")
    # in a child process: the conftest breaks the plugin module for the whole process
    result = pytester.runpytest_subprocess("scenarios", "-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "INTERNALERROR" not in out
    assert "Traceback" not in out
