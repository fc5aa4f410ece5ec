"""Scenario files: a good one loads; each kind of mistake is one line naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario import load_catalog, load_scenario

GOOD = """
name = "connect-pend"
description = "pend a connect, permit it"
tags = ["pend"]
seed = 3

[callout]
pend = ["connect"]
delay_ms = 25
block = ["c2"]

[[steps]]
id = "s1"
do = "session_open"
dynamic = true
wait_ms = "infinite"

[[steps]]
id = "c1"
do = "tcp_connect"
family = "v6"
concurrent = "pair"

[[steps]]
id = "c2"
do = "tcp_connect"
concurrent = "pair"

[[steps]]
do = "close"
of = "c1"
delay_ms = 5

[expect]
rules = ["PC*", "EP002"]
outcomes = { c1 = "allowed", c2 = "blocked" }
statuses = { s1 = "STATUS_SUCCESS" }
counts = { closures = 2, reauthorizations = 2 }
"""


def _write(tmp_path: Path, text: str, name: str = "sc.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_scenario_loads(tmp_path: Path) -> None:
    sc = load_scenario(_write(tmp_path, GOOD))
    assert sc.name == "connect-pend" and sc.seed == 3 and sc.tags == ("pend",)
    assert sc.callout.pend == frozenset({"connect"}) and sc.callout.delay_ms == 25
    assert [s.do for s in sc.steps] == ["session_open", "tcp_connect", "tcp_connect", "close"]
    assert sc.steps[0].params["wait_ms"] == 4294967295
    assert sc.steps[1].params["family"] == "v6" and sc.steps[2].params["family"] == "v4"
    assert [[s.name for s in g] for g in sc.groups()] == [["s1"], ["c1", "c2"], ["close#3"]]
    assert sc.expect.rules == frozenset({f"PC{i:03d}" for i in range(1, 14)} | {"EP002"})
    assert dict(sc.expect.outcomes) == {"c1": "allowed", "c2": "blocked"}
    assert dict(sc.expect.counts) == {"closures": 2, "reauthorizations": 2}


# (what is changed in GOOD, the text expected in the one-line error)
MISTAKES = [
    ("not toml", 'name = "x"\n[[steps]\n', "sc.toml:2: not valid TOML"),
    ("unknown top-level key", 'colour = "red"\n' + GOOD, "sc.toml:1: colour: expected one of"),
    ("unknown step kind", GOOD.replace('do = "close"', 'do = "shutdown"'),
     "sc.toml:30: steps[3].do: expected one of 'tcp_listen'"),
    ("wrong type", GOOD.replace('family = "v6"', "family = 6"),
     "sc.toml:21: steps[1].family: expected one of 'v4', 'v6', found number 6"),
    ("missing required field", GOOD.replace('of = "c1"\n', ""),
     "steps[3].of: expected the id of a tcp_connect or tcp_accept or udp_send or tcp_listen step, found nothing"),
    ("unknown step parameter", GOOD.replace("segments", "x").replace('family = "v6"', 'family = "v6"\nsegmants = 3'),
     "sc.toml:22: steps[1].segmants: expected a parameter of 'tcp_connect'"),
    ("duplicate step id", GOOD.replace('id = "c2"', 'id = "c1"'),
     "sc.toml:25: steps[2].id: duplicate step id 'c1'"),
    ("reference to no step", GOOD.replace('of = "c1"', 'of = "c9"'),
     "steps[3].of: expected the id of an earlier step"),
    ("reference to the wrong kind", GOOD.replace('of = "c1"', 'of = "s1"'),
     "found 's1', a session_open step"),
    ("unknown rule id", GOOD.replace('"EP002"]', '"EP999"]'),
     "expect.rules[1]: expected a rule ID of the contract ('callout-harness rules' lists them), found unknown rule EP999"),
    ("not a rule id", GOOD.replace('"EP002"]', '"nonsense"]'),
     "expect.rules[1]: expected a rule ID such as PC001, or a family such as EP*, found string 'nonsense'"),
    ("expectation naming no step", GOOD.replace("c2 = \"blocked\"", "c7 = \"blocked\""),
     "expect.outcomes.c7: expected the id of a step, found 'c7', which names no step"),
    ("outcome on a non-connection step", GOOD.replace('c2 = "blocked"', 's1 = "blocked"'),
     "expect.outcomes.s1: expected a tcp_connect or tcp_accept or udp_send or tcp_listen or udp_receive step, found a session_open step"),
    ("bad outcome value", GOOD.replace('c2 = "blocked"', 'c2 = "dropped"'),
     "expect.outcomes.c2: expected 'allowed' or 'blocked', found string 'dropped'"),
    ("unknown count", GOOD.replace("closures = 2", "closings = 2"),
     "expect.counts.closings: expected one of closures"),
    ("negative number", GOOD.replace("delay_ms = 5", "delay_ms = -5"),
     "sc.toml:32: steps[3].delay_ms: expected a number >= 0, found number -5"),
    ("bad wait", GOOD.replace('wait_ms = "infinite"', 'wait_ms = "forever"'),
     "steps[0].wait_ms: expected milliseconds (0 to 4294967295), 'default' or 'infinite'"),
    ("unknown status", GOOD.replace('s1 = "STATUS_SUCCESS"', 's1 = "STATUS_MAYBE"'),
     "expect.statuses.s1: expected a status name such as FWP_E_TIMEOUT, found string 'STATUS_MAYBE'"),
    ("no steps", 'name = "empty"\n', "sc.toml: steps: expected at least one [[steps]] table, found nothing"),
    ("bad pend point", GOOD.replace('pend = ["connect"]', 'pend = ["listen"]'),
     "sc.toml:8: callout.pend[0]: expected one of connect, recv_accept, closure, found string 'listen'"),
    ("block names no step", GOOD.replace('block = ["c2"]', 'block = ["c9"]'),
     "sc.toml:10: callout.block[0]: expected the id of a connection step, found 'c9', which names no step"),
    ("violation outside the rules", GOOD.replace("[expect]", '[expect]\nviolations = ["TX008"]'),
     "expect.rules: expected a selection that includes TX008"),
]


@pytest.mark.parametrize(("text", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistakes_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = str(info.value)
    assert "\n" not in error
    assert error.startswith(str(path))
    assert message in error


def test_duplicate_scenario_names_in_a_catalog(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "a.toml")
    _write(tmp_path, GOOD, "b.toml")
    with pytest.raises(ScenarioError, match=r"b.toml: name: duplicate scenario name 'connect-pend' \(also in"):
        load_catalog(tmp_path)


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match=r"nope\.toml: file not found"):
        load_scenario("nope.toml")


def test_written_scenario_loads_back_equal(tmp_path: Path) -> None:
    from harness.scenario.writer import dump_scenario

    original = load_scenario(_write(tmp_path, GOOD))
    again = load_scenario(_write(tmp_path, dump_scenario(original), "again.toml"))
    assert again.steps == original.steps
    assert again.expect == original.expect
    assert again.callout == original.callout
