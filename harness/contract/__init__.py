"""The WFP callout contract: the rule catalog, one module per rule family, the checker.

A rule family's two-letter code names its module; in words:

======  ==================  ===============================================
code    module              what it checks
======  ==================  ===============================================
PC      ``pc``, ``pc_reauth``  pend and complete an ALE operation
PK      ``pk``              pend a classification (FwpsPendClassify0)
PI      ``pi``              packets: clones, references and injection
ST      ``st``              the stream layer (out-of-band editing, order)
EP      ``ep``, ``ep_resources``  ALE endpoint lifetime (closure, contexts)
FC      ``fc``              flow contexts and driver unload
TX      ``tx``, ``tx_lock``, ``tx_model``  BFE sessions and transactions
OB      ``ob``              BFE objects: lifetimes, references, ownership
RA      ``ra``              reauthorization
======  ==================  ===============================================

``base`` holds the monitor machinery, ``catalog`` the rules with their
sources, ``checker`` the streaming checker, ``report`` the evidence lines.
"""

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
