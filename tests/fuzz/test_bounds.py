"""The documented bounds of a scenario: at the bound is accepted, past it is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.loader import BOUNDS, MAX_COUNT, MAX_STEPS, load_scenario

UDP = '[[steps]]\nid = "u1"\ndo = "udp_send"\n{extra}\n'


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    return load_scenario(path)


@pytest.mark.parametrize("key", ["peers", "packets", "replies"])
def test_udp_counts_have_an_upper_bound(tmp_path: Path, key: str) -> None:
    _load(tmp_path, UDP.format(extra=f"{key} = {BOUNDS[key]}"))
    with pytest.raises(ScenarioError, match=rf"s\.toml:4: steps\[0\]\.{key}: expected an integer \(.*{BOUNDS[key]}\), found number {BOUNDS[key] + 1}"):
        _load(tmp_path, UDP.format(extra=f"{key} = {BOUNDS[key] + 1}"))


def test_the_hang_of_the_issue_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"peers: expected an integer \(1 to 256\), found number 9223372036854775807"):
        _load(tmp_path, UDP.format(extra="peers = 9223372036854775807"))


@pytest.mark.parametrize("value", ["nan", "inf", "3600001"])
def test_delays_are_finite_and_bounded(tmp_path: Path, value: str) -> None:
    with pytest.raises(ScenarioError, match=r"delay_ms: expected a number <= 3600000"):
        _load(tmp_path, UDP.format(extra=f"delay_ms = {value}"))
    with pytest.raises(ScenarioError, match=r"callout\.delay_ms: expected a number <= 3600000"):
        _load(tmp_path, f"[callout]\ndelay_ms = {value}\n" + UDP.format(extra=""))


def test_step_and_count_totals_are_bounded(tmp_path: Path) -> None:
    steps = '[[steps]]\ndo = "wait"\nseconds = 1\n' * (MAX_STEPS + 1)
    with pytest.raises(ScenarioError, match=rf"steps: expected at most {MAX_STEPS} \[\[steps\]\] tables"):
        _load(tmp_path, steps)
    with pytest.raises(ScenarioError, match=rf"expect\.counts\.pends: expected an integer from 0 to {MAX_COUNT}"):
        _load(tmp_path, UDP.format(extra="") + f"[expect]\ncounts = {{ pends = {MAX_COUNT + 1} }}\n")
