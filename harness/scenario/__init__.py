"""Scenario files: the step vocabulary, the values, and the validating loader."""

from harness.scenario.loader import load_catalog, load_scenario, select
from harness.scenario.model import CalloutConfig, Expectations, Scenario, Step

__all__ = [
    "CalloutConfig", "Expectations", "Scenario", "Step", "load_catalog", "load_scenario",
    "select",
]
