"""Fixtures for the BFE tests."""

from __future__ import annotations

import pytest

from tests.engine.bfe.helpers import Env, make_env


@pytest.fixture
def env() -> Env:
    return make_env()
