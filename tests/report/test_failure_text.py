"""The failure text and the report header a driver developer reads."""

from __future__ import annotations

from pathlib import Path

from harness.report.failure import describe_failure, write_run_report
from harness.scenario.loader import load_scenario
from harness.session import HarnessSession, SessionOptions, report_header

REPO = Path(__file__).resolve().parents[2]


def run(name: str, tmp_path: Path, **options: object):  # type: ignore[no-untyped-def]
    session_options = SessionOptions(out_dir=tmp_path, **options)  # type: ignore[arg-type]
    session = HarnessSession(session_options)
    return session_options, session.run_item(load_scenario(REPO / "scenarios" / f"{name}.toml"))


def test_knock_on_failures_sit_under_the_rules(tmp_path: Path) -> None:
    _, record = run("connect-pend-permit", tmp_path, callout="mutant:forgets_complete")
    text = describe_failure(record)
    lines = text.splitlines()
    rule_lines = [i for i, line in enumerate(lines) if line.startswith("  - PC001")]
    step_lines = [i for i, line in enumerate(lines) if "step c1: expected allowed" in line]
    assert rule_lines and step_lines and step_lines[0] > rule_lines[0]
    assert lines[step_lines[0]].startswith("      - ")
    assert "    and, following from them:" in lines
    # PC001 names the classify that pended, with its layer and endpoint
    assert "(pended in classify" in text and "at ALE_AUTH_CONNECT_V4, endpoint" in text
    # times print rounded: no float noise in any evidence line
    assert "0000000" not in text and "9999999" not in text


def test_report_header_names_the_callout_and_expected_violations_are_marked(
    tmp_path: Path,
) -> None:
    options, bad = run("connect-pend-permit", tmp_path / "a", callout="mutant:forgets_complete")
    _, negative = run("client-leaves-transaction-open", tmp_path / "b")
    assert negative.outcome == "passed" and negative.violations
    page = write_run_report(tmp_path, [("a", "failed", bad), ("b", "passed", negative)],
                            **report_header(options)).read_text()
    assert "callout mutant:forgets_complete" in page
    assert "TX008 (expected)" in page
    assert "PC001 (expected)" not in page
