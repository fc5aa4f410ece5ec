"""Errata files: validation with one-line errors, known vs expired, stale entries."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from harness.errata import Errata, judge, load_errata, stale_entries
from harness.errors import ErrataError

TODAY = dt.date(2026, 11, 20)

GOOD = """\
# known issues of the probe driver
[[known]]
rule = "PC001"
target = "win11*"
os_build = "22631.*"
reason = "pend leak in the retry path, bug 1234"
owner = "alice"
created = 2026-10-01
expires = 2026-12-01

[[known]]
scenario = "txn-*"
target = "*"
reason = "BFE timeout differs on the model"
owner = "bob"
created = 2026-09-01
expires = 2026-11-01
"""

PC001 = "PC001 broken: pend ctx 7 was never completed (events [110])"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "errata.toml"
    path.write_text(text, encoding="utf-8")
    return path


def entry(**overrides: str) -> str:
    fields = {"rule": '"PC001"', "target": '"win11*"', "reason": '"a reason"',
              "owner": '"alice"', "created": "2026-10-01", "expires": "2026-12-01"}
    fields.update(overrides)
    lines = [f"{k} = {v}" for k, v in fields.items() if v != "-"]
    return "[[known]]\n" + "\n".join(lines) + "\n"


def test_a_valid_file_loads_every_entry(tmp_path: Path) -> None:
    errata = load_errata(write(tmp_path, GOOD), today=TODAY)
    first, second = errata.entries
    assert (first.rule, first.target, first.os_build, first.line) == ("PC001", "win11*", "22631.*", 2)
    assert (second.rule, second.scenario, second.line) == (None, "txn-*", 11)
    assert first.expires == dt.date(2026, 12, 1)


@pytest.mark.parametrize(("body", "message"), [
    (entry(rule='"PC999"'), ':2: known[0].rule: expected a rule ID of the contract catalog, '
                            "found unknown rule 'PC999'"),
    (entry(expires="2026-10-01"), ":7: known[0].expires: expected a date after created "
                                  "(2026-10-01), found 2026-10-01"),
    (entry(created="2026-12-24", expires="2027-01-31"),
     ":6: known[0].created: expected a date not after today (2026-11-20), found 2026-12-24"),
    (entry(target='"win11[abc"'), ":3: known[0].target: expected a glob pattern with balanced "
                                  "[ ], found string 'win11[abc' with an unbalanced '['"),
    (entry(reason="-"), ":1: known[0].reason: expected a reason (why the failure is accepted), "
                        "found nothing"),
    (entry(owner="-"), ":1: known[0].owner: expected an owner (who will fix it), found nothing"),
    (entry(rule="-"), ":1: known[0]: expected a rule or a scenario (or both), found neither"),
    (entry(expires='"soon"'), ":7: known[0].expires: expected a date like 2026-01-31, "
                              "found string 'soon'"),
    (entry(ticket='"JIRA-1"'), ":8: known[0].ticket: expected one of"),
])
def test_each_invalid_entry_is_one_line_naming_file_line_and_key(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ErrataError) as info:
        load_errata(path, today=TODAY)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}{message}")


def test_the_error_points_at_the_entry_it_is_in(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "\n" + entry(rule='"XX001"'))
    with pytest.raises(ErrataError, match=r"errata.toml:20: known\[2\]\.rule: "):
        load_errata(path, today=TODAY)


def _errata(tmp_path: Path) -> Errata:
    return load_errata(write(tmp_path, GOOD), today=TODAY)


def test_a_failure_matched_by_a_live_entry_is_known(tmp_path: Path) -> None:
    verdict = judge(_errata(tmp_path), scenario="connect-pend", target="win11-a",
                    os_build="22631.2861", failures=[PC001], today=TODAY)
    assert verdict.known
    assert "pend leak in the retry path" in verdict.message
    assert "until 2026-12-01" in verdict.message


def test_target_and_os_build_must_match_too(tmp_path: Path) -> None:
    errata = _errata(tmp_path)
    for target, build in (("win10", "22631.1"), ("win11", "19045.1"), ("win11", None)):
        assert not judge(errata, scenario="s", target=target, os_build=build,
                         failures=[PC001], today=TODAY).known


def test_every_failure_must_be_matched(tmp_path: Path) -> None:
    verdict = judge(_errata(tmp_path), scenario="connect-pend", target="win11",
                    os_build="22631.1", failures=[PC001, "step c1: expected allowed, observed "
                                                         "blocked"], today=TODAY)
    assert not verdict.known
    assert verdict.message == ""


def test_a_scenario_entry_covers_every_failure_of_the_scenario(tmp_path: Path) -> None:
    before_expiry = dt.date(2026, 10, 31)
    verdict = judge(_errata(tmp_path), scenario="txn-read-only", target="sim", os_build=None,
                    failures=[PC001, "count pends: expected 1, trace has 0"],
                    today=before_expiry)
    assert verdict.known


def test_an_expired_entry_makes_the_failure_red_again_and_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    verdict = judge(load_errata(path, today=TODAY), scenario="txn-read-only", target="sim",
                    os_build=None, failures=[PC001], today=TODAY)
    assert not verdict.known
    assert verdict.message == (
        f"known issue {path}:11 [scenario txn-* on *] expired on 2026-11-01 "
        "(owner bob: BFE timeout differs on the model)"
    )


def test_the_expiry_day_itself_is_expired(tmp_path: Path) -> None:
    errata = _errata(tmp_path)

    def known_on(day: dt.date) -> bool:
        return judge(errata, scenario="s", target="win11", os_build="22631.5",
                     failures=[PC001], today=day).known

    assert known_on(dt.date(2026, 11, 30))
    assert not known_on(dt.date(2026, 12, 1))


def test_stale_after_n_consecutive_runs_without_a_match(tmp_path: Path) -> None:
    errata = _errata(tmp_path)
    pc001 = errata.entries[0].ident
    unmatched = {"entries": [pc001], "matched": []}
    # This run plus 4 earlier runs that did not match it: 5 in a row.
    stale = stale_entries(errata, [], [unmatched] * 4, runs=5, today=TODAY)
    assert [s.entry.ident for s in stale] == [pc001]
    assert stale[0].describe().startswith(f"stale known issue {errata.entries[0].describe()}: "
                                          "matched nothing in the last 5 runs")
    # Only 4 in a row: not yet.
    assert stale_entries(errata, [], [unmatched] * 3, runs=5, today=TODAY) == []
    # A match breaks the streak; so does a run where the entry did not exist yet.
    matched = {"entries": [pc001], "matched": [pc001]}
    absent = {"entries": [], "matched": []}
    assert stale_entries(errata, [], [unmatched, matched, *[unmatched] * 3], runs=5,
                         today=TODAY) == []
    assert stale_entries(errata, [], [absent, *[unmatched] * 3], runs=5, today=TODAY) == []
    # Matching in this run is never stale; expired entries are expired, not stale.
    assert stale_entries(errata, [pc001], [unmatched] * 9, runs=5, today=TODAY) == []


def test_an_entry_matching_part_of_a_red_item_is_used_not_stale(tmp_path: Path) -> None:
    from harness.verdict import errata_report, judge_item

    errata = _errata(tmp_path)
    record = {"scenario": "connect-pend", "target": "win11", "seed": 1, "trace": "t.jsonl",
              "failures": [PC001, "step c1: expected allowed, observed blocked"]}
    item = judge_item(record, [], os_build="22631.1", errata=errata, today=TODAY)
    assert item.outcome == "failed"  # the step failure is not a known issue
    assert item.known_issues == [errata.entries[0].ident]
    history = tmp_path / "history.jsonl"
    unmatched = {"items": [], "errata": {"entries": [errata.entries[0].ident], "matched": []}}
    history.write_text((json.dumps(unmatched) + "\n") * 9)
    from harness.history.records import errata_sections

    report = errata_report(errata, [item], previous=errata_sections(history), stale_runs=5,
                           today=TODAY)
    assert report.stale == []
    assert report.section is not None and report.section["matched"] == [errata.entries[0].ident]


def test_entry_count_and_text_lengths_are_bounded(tmp_path: Path) -> None:
    from harness.errata import MAX_ENTRIES, MAX_TEXT

    entry = GOOD.split("\n\n")[0].replace("# known issues of the probe driver\n", "") + "\n\n"
    with pytest.raises(ErrataError, match=rf"known: expected at most {MAX_ENTRIES} \[\[known\]\] entries"):
        load_errata(write(tmp_path, entry * (MAX_ENTRIES + 1)), today=TODAY)
    long_reason = GOOD.replace("bug 1234", "x" * MAX_TEXT)
    with pytest.raises(ErrataError, match=rf":6: known\[0\].reason: expected at most {MAX_TEXT} characters, found string 'pend"):
        load_errata(write(tmp_path, long_reason), today=TODAY)
