"""--explore: seeded interleavings, shrinking to a minimal schedule that replays exactly."""

from __future__ import annotations

from pathlib import Path

from harness.cli import main
from harness.scenario.evaluate import evaluate
from harness.scenario.explore import explore, signature
from harness.scenario.loader import load_scenario
from harness.session import HarnessSession, SessionOptions

REPO = Path(__file__).resolve().parents[2]


def test_explore_passes_clean_scenario(tmp_path: Path) -> None:
    session = HarnessSession(SessionOptions(out_dir=tmp_path))
    sc = load_scenario(REPO / "scenarios" / "connect-concurrent-mixed.toml")
    found = explore(session, sc, 4)
    assert found.failing_seed is None and found.tried == 4
    seeds = sorted(int(t.name.split(".seed")[1].split(".")[0])
                   for t in (tmp_path / "traces").glob("*.jsonl"))
    assert seeds == [1, 2, 3, 4]
    assert "all passed" in found.describe()


def test_explore_shrinks_and_the_minimal_schedule_replays(tmp_path: Path) -> None:
    options = SessionOptions(out_dir=tmp_path, callout="mutant:flips_reauth_decision")
    session = HarnessSession(options)
    sc = load_scenario(REPO / "scenarios" / "connect-concurrent-mixed.toml")
    found = explore(session, sc, 3)
    assert found.failing_seed is not None and found.minimal is not None
    assert len(found.minimal.steps) < len(sc.steps)
    assert found.minimal_path is not None and found.minimal_path.is_file()
    text = found.describe()
    assert f"seed {found.failing_seed}" in text and "--callout mutant:flips_reauth_decision" in text
    # replay the written file with the printed seed: the same failure, exactly
    replayed = load_scenario(found.minimal_path)
    again = HarnessSession(SessionOptions(out_dir=tmp_path / "again",
                                          callout="mutant:flips_reauth_decision"))
    r1 = again.run(replayed, seed=found.failing_seed)
    r2 = again.run(replayed, seed=found.failing_seed)
    assert r1.failures and signature(r1) & signature(found.result)
    assert r1.run.trace_path.read_bytes() == r2.run.trace_path.read_bytes()
    assert evaluate(replayed, r1.run).failures == r1.failures


def test_run_cli_explore_prints_the_schedule(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["run", "--scenario", "connect-concurrent-mixed", "--explore", "2",
                 "--callout", "mutant:flips_reauth_decision", "--out", str(tmp_path),
                 "--scenarios-dir", str(REPO / "scenarios")])
    assert code == 1
    err = capsys.readouterr().err
    assert "minimal failing schedule: seed 1" in err
    assert "replay: callout-harness run --scenario" in err


def test_the_failing_trace_is_the_one_that_failed(tmp_path: Path) -> None:
    """Shrinking never overwrites the failing run's trace: ``check`` on the
    trace a failure names agrees with the printed violations."""
    from harness.contract.checker import check_file

    session = HarnessSession(SessionOptions(out_dir=tmp_path,
                                            callout="mutant:flips_reauth_decision"))
    sc = load_scenario(REPO / "scenarios" / "connect-concurrent-mixed.toml")
    found = explore(session, sc, 3)
    assert found.failing_seed is not None and found.minimal is not None
    named = found.result.run.trace_path
    assert named.parent == tmp_path / "traces"
    judged = check_file(named)
    assert [v.as_json() for v in judged.violations] == [
        v.as_json() for v in found.result.check.violations]
    assert judged.events == found.result.check.events
    assert list((tmp_path / "explore" / "shrink").glob("*.jsonl"))


def test_explore_progress_line_reads_once(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["run", "--scenario", "connect-pend-permit", "--explore", "2",
                 "--out", str(tmp_path), "--scenarios-dir", str(REPO / "scenarios")])
    assert code == 0
    err = capsys.readouterr().err
    assert "all passed passed" not in err
    assert "connect-pend-permit ... passed" in err
    assert "explored 2 schedule(s): all passed" in err
