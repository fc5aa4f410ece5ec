"""The sanitizer build: a use after free in driver code is reported with its stacks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.csim import SANITIZE_ENV
from harness.csim.target import IsolatedSimTarget
from harness.errors import DriverCrashed
from harness.scenario.loader import load_scenario
from tests.csim.conftest import SCENARIOS


def _has_libasan() -> bool:
    out = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                         text=True, check=False).stdout.strip()
    return bool(out) and Path(out).exists()


pytestmark = pytest.mark.skipif(not _has_libasan(),
                                reason="libasan is needed (libasan8 in ci/apt-packages.txt)")


def test_use_after_free_is_reported_with_the_driver_stacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SANITIZE_ENV, "1")
    scenario = load_scenario(SCENARIOS / "udp-out-of-band-inspection.toml")
    target = IsolatedSimTarget("c:drivers/probe#use_after_free_clone")
    with pytest.raises(DriverCrashed) as info:
        target.run(scenario, seed=1, out_dir=tmp_path)
    message = str(info.value)
    assert "AddressSanitizer: heap-use-after-free" in message
    assert "ProbeReleaseHeld at probe.c:" in message  # where it was used, by line
    assert "freed by thread T0 here:" in message and "ProbeFreeCloneNbl at probe.c:" in message
    assert "previously allocated by thread T0 here:" in message
    assert "_PyEval" not in message  # the interpreter's frames are left out


def test_the_clean_probe_passes_under_the_sanitizers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(SCENARIOS / "mixed-traffic.toml")
    (tmp_path / "plain").mkdir()
    (tmp_path / "asan").mkdir()
    plain = IsolatedSimTarget("c:drivers/probe").run(scenario, seed=1, out_dir=tmp_path / "plain")
    monkeypatch.setenv(SANITIZE_ENV, "1")
    checked = IsolatedSimTarget("c:drivers/probe").run(scenario, seed=1, out_dir=tmp_path / "asan")
    assert checked.steps == plain.steps
    assert checked.trace_path.read_bytes() == plain.trace_path.read_bytes()
