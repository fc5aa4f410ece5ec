"""The pytest plugin of callout-harness (entry point ``pytest11``).

It stays cheap to import: everything heavy is imported inside the hooks and
fixtures that need it.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "harness_target(*names): the test needs one of these targets (e.g. sim, win11)",
    )
