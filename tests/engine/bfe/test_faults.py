"""Engine faults: each BFE fault switch changes exactly its own guarantee.

Every fault has a probe (``probes.py``) whose outcome shows the guarantee.
The matrix test runs every probe under every BFE fault: a probe's outcome
must differ from the clean engine's under its own fault and under no other.
"""

from __future__ import annotations

import pytest

from harness.engine.faults import FAULTS
from harness.errors import EngineError
from tests.engine.bfe.helpers import OK, make_env
from tests.engine.bfe.probes import BFE_FAULTS, PROBES, outcome


def test_every_bfe_fault_has_a_probe() -> None:
    assert sorted(PROBES) == BFE_FAULTS


@pytest.mark.parametrize("fault", BFE_FAULTS)
def test_a_fault_changes_its_own_probe_and_no_other(fault: str) -> None:
    changed = [
        probe for probe in PROBES if outcome(probe, frozenset({fault})) != outcome(probe, frozenset())
    ]
    assert changed == [fault]


def test_network_faults_leave_bfe_alone() -> None:
    network = frozenset(FAULTS) - set(BFE_FAULTS)
    for probe in PROBES:
        assert outcome(probe, network) == outcome(probe, frozenset()), probe


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(EngineError, match="unknown engine fault"):
        make_env(frozenset({"no_such_fault"}))


# What each fault does instead, beyond "something changed".


def test_early_timeout_gives_up_before_the_wait_timeout() -> None:
    status, waited_ms = outcome("early_txn_timeout", frozenset({"early_txn_timeout"}))
    assert status == "FWP_E_TIMEOUT" and isinstance(waited_ms, float) and waited_ms < 2000


def test_no_forced_abort_lets_the_hour_old_transaction_commit() -> None:
    assert outcome("no_forced_abort", frozenset({"no_forced_abort"})) == (0, OK)


def test_faulty_successes_report_success() -> None:
    for fault in (
        "no_lifetime_check", "delete_in_use", "builtin_deletable",
        "cross_session_delete", "dangling_reference_accepted",
    ):
        assert outcome(fault, frozenset({fault})) == (OK,), fault
    assert outcome("duplicate_key_accepted", frozenset({"duplicate_key_accepted"})) == (OK, OK)
    assert outcome("nested_txn_allowed", frozenset({"nested_txn_allowed"})) == (OK, OK)
    assert outcome("commit_without_txn", frozenset({"commit_without_txn"})) == (OK, OK)
