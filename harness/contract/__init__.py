"""The WFP callout contract: the rule catalog, one module per rule family, the checker."""

from harness.contract.base import Violation
from harness.contract.catalog import RULES, Rule, select_rules
from harness.contract.checker import Checker, CheckResult, check_events, check_file

__all__ = [
    "RULES",
    "CheckResult",
    "Checker",
    "Rule",
    "Violation",
    "check_events",
    "check_file",
    "select_rules",
]
