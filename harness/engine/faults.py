"""Engine faults: named switches that each break one engine guarantee.

They exist to prove that the engine rules of the contract catch a broken
engine (or broken instrumentation on a real target). A clean engine runs with
none of them. Each names the rule IDs its trace must trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UsageError


@dataclass(frozen=True)
class Fault:
    name: str
    rules: tuple[str, ...]
    description: str


_FAULTS = (
    # network side, callout API
    Fault("pend_allowed_on_reauth", ("PC004",),
          "pend_operation succeeds in a reauthorization classify"),
    Fault("no_reauth_after_connect_completion", ("PC006",),
          "completing a pend at ALE_AUTH_CONNECT triggers no reauthorization"),
    Fault("reauth_after_recv_accept_completion", ("PC008",),
          "completing a pend at ALE_AUTH_RECV_ACCEPT triggers a reauthorization there"),
    Fault("pend_classify_anywhere", ("PK003",),
          "pend_classify succeeds at layers other than closure and redirect"),
    Fault("lost_inject_completion", ("PI003",),
          "a successful injection never gets its completion"),
    Fault("no_resource_release", ("EP001",),
          "an assigned endpoint gets no ALE_RESOURCE_RELEASE"),
    Fault("tcp_closure_missing", ("EP002",),
          "a TCP connection gets no ALE_ENDPOINT_CLOSURE"),
    Fault("second_udp_closure", ("EP003",),
          "a UDP endpoint is closed once per remote peer"),
    Fault("listener_closure_missing", ("EP004",),
          "a TCP listener gets no ALE_ENDPOINT_CLOSURE"),
    Fault("reuse_live_endpoint_handle", ("EP005",),
          "a new endpoint is given the handle of a live one"),
    Fault("classify_after_closure", ("EP006",),
          "a late packet of a closed endpoint is still classified"),
    Fault("flow_delete_missing", ("FC001",),
          "a flow ends without flowDeleteFn for its associated context"),
    Fault("duplicate_flow_associate_accepted", ("FC002",),
          "a second flow_associate on the same flow/layer/callout succeeds"),
    Fault("unregister_with_contexts", ("FC003",),
          "callout_unregister succeeds while flow contexts exist"),
    Fault("classify_after_unregister", ("FC004",),
          "the engine still classifies to an unregistered callout"),
    Fault("no_reauth_after_policy_change", ("RA001",),
          "a committed filter change does not reauthorize existing flows"),
    # BFE side
    Fault("nested_txn_allowed", ("TX001",),
          "a second txn_begin in one session succeeds"),
    Fault("commit_without_txn", ("TX002",),
          "txn_commit/txn_abort with no transaction in progress succeed"),
    Fault("early_txn_timeout", ("TX003",),
          "txn_begin gives up before the session's wait timeout"),
    Fault("no_forced_abort", ("TX004",),
          "a user-mode transaction holding the lock past 3600 s is never aborted"),
    Fault("write_in_read_only_txn", ("TX005",),
          "object_add succeeds inside a read-only transaction"),
    Fault("abort_keeps_changes", ("TX006",),
          "txn_abort leaves the transaction's changes in effect"),
    Fault("dynamic_objects_survive_close", ("TX007",),
          "closing a dynamic session leaves its objects in place"),
    Fault("no_lifetime_check", ("OB001",),
          "an add that references a shorter-lived object succeeds"),
    Fault("delete_in_use", ("OB002",),
          "deleting a referenced object succeeds"),
    Fault("builtin_deletable", ("OB003",),
          "a built-in object can be deleted"),
    Fault("duplicate_key_accepted", ("OB004",),
          "a second object with the same key and type is added"),
    Fault("cross_session_delete", ("OB005",),
          "a dynamic session deletes another session's dynamic object"),
    Fault("dangling_reference_accepted", ("OB006",),
          "an add that references a missing object succeeds"),
)

FAULTS: dict[str, Fault] = {f.name: f for f in _FAULTS}


def parse_faults(names: list[str] | tuple[str, ...] | None) -> frozenset[str]:
    """Validate fault names given on a command line or in a scenario."""
    chosen = frozenset(names or ())
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise UsageError(
            f"unknown engine fault {unknown[0]!r}; known faults: {', '.join(sorted(FAULTS))}"
        )
    return chosen
