"""Shared set-up of the C callout tests: gcc is required (CI installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DRIVERS = Path(__file__).resolve().parent / "drivers"
ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "drivers" / "probe"
SCENARIOS = ROOT / "scenarios"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        skip = pytest.mark.skip(reason="gcc and binutils are needed (ci/apt-packages.txt)")
        for item in items:
            if str(item.path).startswith(str(Path(__file__).parent)):
                item.add_marker(skip)
