"""The WFP callout contract as a catalog of rules with stable IDs.

Each rule says who owes it (``engine``: Windows or the engine model;
``driver``: the callout driver; ``client``: the policy client that talks to
BFE), how severe a breach is, what it asserts over a trace, and where the
obligation is documented. IDs are stable: reports, suppressions and the
checker's JSON output use them.

Sources name documents by title: "WFP: X" is the Windows Filtering Platform
page titled X (Microsoft Learn, the WFP callout driver and BFE guides); "DDI:
X" is the WDK reference page of the function X; "sample X" is
Windows-driver-samples network/trans/X.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from harness.errors import UsageError

_ID = re.compile(r"^[A-Z]{2}\d{3}$")
PARTIES: Final = ("engine", "driver", "client", "driver/engine", "engine/driver")
SEVERITIES: Final = ("error", "warning")

FAMILIES: Final = {
    "PC": "pend and complete an ALE operation",
    "PK": "pend a classification",
    "PI": "packets, clones and injection",
    "ST": "stream layer",
    "EP": "ALE endpoint lifetime",
    "FC": "flow contexts and unload",
    "TX": "BFE sessions and transactions",
    "OB": "objects, lifetimes and references",
    "RA": "reauthorization",
}


@dataclass(frozen=True)
class Rule:
    """One contract rule. A malformed definition fails at import, naming the rule."""

    id: str
    party: str
    title: str
    source: str
    severity: str = "error"

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"rule {self.id!r}: an ID is two capitals and three digits")
        if self.id[:2] not in FAMILIES:
            raise ValueError(f"rule {self.id}: unknown family {self.id[:2]!r}")
        if self.party not in PARTIES:
            raise ValueError(f"rule {self.id}: party {self.party!r} is not one of {PARTIES}")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"rule {self.id}: severity {self.severity!r} is not one of {SEVERITIES}"
            )
        if not self.title or not self.source:
            raise ValueError(f"rule {self.id}: a rule needs a title and a source")

    @property
    def family(self) -> str:
        return self.id[:2]


_RULES = (
    # PC: FwpsPendOperation0 / FwpsCompleteOperation0
    Rule("PC001", "driver",
         "Each pend_operation that succeeded is completed by exactly one complete_operation "
         "with the same ctx: never is a leak at end of trace, twice is a double completion, "
         "and a ctx that was never pended must not be completed.",
         "WFP: Processing Classify Callouts Asynchronously (async ALE classify); "
         "DDI: FwpsPendOperation0"),
    Rule("PC002", "driver",
         "The classify in which a pend succeeded returns action BLOCK with absorb set.",
         "DDI: FwpsPendOperation0"),
    Rule("PC003", "driver",
         "pend_operation is called only at ALE_RESOURCE_ASSIGNMENT, ALE_AUTH_LISTEN, "
         "ALE_AUTH_RECV_ACCEPT and ALE_AUTH_CONNECT (V4/V6), and only in a classify that "
         "has can_pend.",
         "DDI: FwpsPendOperation0; WFP: Metadata Fields at Each Filtering Layer"),
    Rule("PC004", "engine",
         "A pend_operation in a classify with reauth set returns STATUS_FWP_CANNOT_PEND.",
         "DDI: FwpsPendOperation0; "
         "WFP: Processing Classify Callouts Asynchronously (ALE reauthorization)"),
    Rule("PC005", "driver",
         "When pend_operation failed, the classify returns without absorb: absorbing there "
         "drops the packet silently with nothing to complete.",
         "DDI: FwpsPendOperation0"),
    Rule("PC006", "engine",
         "After complete_operation of a ctx pended at ALE_AUTH_CONNECT, a classify with "
         "reauth set follows at the same layer for the same endpoint.",
         "WFP: Processing Classify Callouts Asynchronously (ALE connect and recv/accept layers)"),
    Rule("PC007", "driver",
         "In that reauthorization the driver returns a final PERMIT or BLOCK, equal to its "
         "decision for that ctx when one was recorded, and does not try to pend again.",
         "WFP: Processing Classify Callouts Asynchronously; sample inspect/sys/inspect.c"),
    Rule("PC008", "engine",
         "Completing a ctx pended at ALE_AUTH_RECV_ACCEPT does not cause a reauthorization "
         "at ALE_AUTH_RECV_ACCEPT.",
         "WFP: Processing Classify Callouts Asynchronously"),
    Rule("PC009", "driver",
         "After completing a RECV_ACCEPT pend, the packet handed to complete_operation "
         "(without one, the clone made in the pended classify) is injected with "
         "transport_recv to allow, or freed without injection to deny, matching the "
         "recorded decision; leaving it neither injected nor freed is a violation.",
         "WFP: Processing Classify Callouts Asynchronously; "
         "DDI: FwpsPendOperation0; "
         "DDI: FwpsInjectTransportReceiveAsync0"),
    Rule("PC010", "driver",
         "A classify whose injection is self or prev_self returns PERMIT or CONTINUE, "
         "with no pend, clone or absorb.",
         "DDI: FwpsQueryPacketInjectionState0; "
         "WFP: Processing Classify Callouts Asynchronously (reinjected clone)"),
    Rule("PC011", "driver",
         "No pend_operation, pend_classify or absorb at ALE_FLOW_ESTABLISHED.",
         "WFP: Processing Classify Callouts Asynchronously (ALE_FLOW_ESTABLISHED layers)"),
    Rule("PC012", "driver",
         "At INBOUND_TRANSPORT a classify with ale_required returns PERMIT or CONTINUE, "
         "without absorb, pend, clone or injection of that packet.",
         "WFP: Processing Classify Callouts Asynchronously (INBOUND_TRANSPORT layers)"),
    Rule("PC013", "driver",
         "With rights false on entry the callout neither pends nor absorbs, and returns "
         "either its input action unchanged (CONTINUE/NONE) or a BLOCK veto.",
         "WFP: Types of Callouts"),
    # PK: FwpsPendClassify0 / FwpsCompleteClassify0
    Rule("PK001", "driver",
         "Each successful acquire_classify_handle is released exactly once.",
         "DDI: FwpsAcquireClassifyHandle0"),
    Rule("PK002", "driver",
         "Each successful pend_classify is completed by exactly one complete_classify on "
         "the same handle, before that handle is released.",
         "WFP: ALE Endpoint Lifetime Management (closure may pend); DDI: FwpsPendClassify0"),
    Rule("PK003", "engine",
         "pend_classify succeeds only at ALE_ENDPOINT_CLOSURE, ALE_CONNECT_REDIRECT and "
         "ALE_BIND_REDIRECT; elsewhere it returns STATUS_FWP_CANNOT_PEND.",
         "DDI: FwpsPendClassify0"),
    # PI: packets, clones and injection
    Rule("PI001", "driver",
         "Each successful clone is freed (free_clone) exactly once, and never before an "
         "injection of it has completed.",
         "DDI: FwpsAllocateCloneNetBufferList0"),
    Rule("PI002", "driver",
         "Each reference has exactly one dereference.",
         "DDI: FwpsReferenceNetBufferList0"),
    Rule("PI003", "driver/engine",
         "An inject that succeeded gets exactly one inject_complete; a failed one gets none "
         "(engine), and the driver then frees that packet itself (driver).",
         "DDI: FwpsInjectTransportSendAsync0"),
    Rule("PI004", "driver",
         "No inject, complete_operation or queue names a packet after it was freed.",
         "DDI: FwpsFreeCloneNetBufferList0"),
    # ST: stream layer
    Rule("ST001", "driver",
         "On a flow at STREAM, once a segment was cloned and absorbed (out of band), every "
         "later segment is also cloned and absorbed while absorbed data of that flow is not "
         "yet injected: inline and out-of-band handling do not mix.",
         "WFP: Processing Classify Callouts Asynchronously (STREAM layers)"),
    Rule("ST002", "driver",
         "Stream data of one flow is injected in the order it was indicated.",
         "WFP: Processing Classify Callouts Asynchronously (ordered delivery)"),
    # EP: ALE endpoint lifetime
    Rule("EP001", "engine",
         "Every endpoint indicated at ALE_RESOURCE_ASSIGNMENT gets exactly one "
         "ALE_RESOURCE_RELEASE classify with the same endpoint, and no endpoint that was "
         "never assigned is released.",
         "WFP: ALE Endpoint Lifetime Management"),
    Rule("EP002", "engine",
         "Each TCP connection authorized at ALE_AUTH_CONNECT or ALE_AUTH_RECV_ACCEPT (its "
         "initial, non-reauth indication) gets exactly one ALE_ENDPOINT_CLOSURE with its "
         "endpoint.",
         "WFP: ALE Endpoint Lifetime Management"),
    Rule("EP003", "engine",
         "A non-TCP endpoint gets exactly one ALE_ENDPOINT_CLOSURE, however many remote "
         "peers it talked to.",
         "WFP: ALE Endpoint Lifetime Management"),
    Rule("EP004", "engine",
         "Each TCP listening socket (seen at ALE_AUTH_LISTEN) gets exactly one "
         "ALE_ENDPOINT_CLOSURE.",
         "WFP: ALE Endpoint Lifetime Management"),
    Rule("EP005", "engine",
         "Endpoint handles are unique: a handle is not given to a new endpoint while the "
         "old one is live, and a parent names an endpoint already seen.",
         "WFP: ALE Endpoint Lifetime Management"),
    Rule("EP006", "engine",
         "No classify names an endpoint after its closure completed, except its "
         "ALE_RESOURCE_RELEASE.",
         "WFP: ALE Endpoint Lifetime Management"),
    Rule("EP007", "driver",
         "Every alloc bound to an endpoint is freed no later than the end of that "
         "endpoint's closure (its classify return, or its complete_classify when the "
         "closure was pended); at end of trace every alloc is freed.",
         "WFP: ALE Endpoint Lifetime Management (release resources when the endpoint closes)"),
    Rule("EP008", "driver",
         "Before a pended closure is completed, every packet the driver queued for that "
         "endpoint has been injected or freed.",
         "WFP: ALE Endpoint Lifetime Management (reinject queued packets before shutdown)"),
    Rule("EP009", "driver",
         "Operations pended on an endpoint are completed before that endpoint's closure "
         "completes.",
         "WFP: ALE Endpoint Lifetime Management; "
         "WFP: Processing Classify Callouts Asynchronously", "warning"),
    # FC: flow contexts and unload
    Rule("FC001", "engine",
         "Each successful flow_associate gets exactly one flow_delete (or a flow_remove "
         "with STATUS_SUCCESS that deletes it).",
         "DDI: FwpsFlowAssociateContext0"),
    Rule("FC002", "engine/driver",
         "A second flow_associate on the same flow, layer and callout returns "
         "STATUS_OBJECT_NAME_EXISTS (engine); the driver frees the context it tried to "
         "attach (driver).",
         "DDI: FwpsFlowAssociateContext0"),
    Rule("FC003", "engine",
         "callout_unregister while that callout still has flow contexts returns "
         "STATUS_DEVICE_BUSY.",
         "DDI: FwpsCalloutUnregisterById0"),
    Rule("FC004", "engine/driver",
         "No classify for a callout after its successful callout_unregister, and the "
         "driver's pending work (pend ctx, clone, classify handle) is completed before it.",
         "WFP: Unloading a Callout Driver"),
    # TX: BFE sessions and transactions
    Rule("TX001", "engine",
         "A txn_begin in a session that already has a transaction in progress returns "
         "FWP_E_TXN_IN_PROGRESS.",
         "WFP: Object Management"),
    Rule("TX002", "engine",
         "txn_commit and txn_abort with no transaction in progress return "
         "FWP_E_NO_TXN_IN_PROGRESS.",
         "DDI/SDK FwpmTransactionCommit0"),
    Rule("TX003", "engine",
         "A txn_begin returns FWP_E_TIMEOUT exactly when it could not take the lock within "
         "the session's wait timeout (txn_wait_ms; 0 means 15000; 4294967295 means never): "
         "not sooner, and a begin that waited longer did not succeed.",
         "WFP: Object Management"),
    Rule("TX004", "engine",
         "A user-mode transaction that holds the lock for more than 3600 s is aborted by the "
         "engine (txn_forced_abort), and the next call in it returns FWP_E_TXN_ABORTED; "
         "kernel-mode and implicit transactions are never forced.",
         "WFP: Object Management"),
    Rule("TX005", "engine",
         "object_add and object_delete inside a read-only transaction return "
         "FWP_E_INCOMPATIBLE_TXN.",
         "SDK FwpmFilterAdd0"),
    Rule("TX006", "engine",
         "Atomicity: after txn_abort nothing added or deleted in the transaction took "
         "effect; after txn_commit every successful operation in it did. A failed operation "
         "inside a transaction does not end it.",
         "WFP: Object Management"),
    Rule("TX007", "engine",
         "Closing a session aborts its transaction in progress and deletes the objects of a "
         "dynamic session.",
         "WFP: Object Management"),
    Rule("TX008", "client",
         "Every transaction the client begins is committed or aborted before its session "
         "closes, and after FWP_E_TXN_ABORTED no call but abort is made in that transaction.",
         "WFP: Object Management"),
    Rule("TX009", "client",
         "A client that holds a transaction longer than its peers' wait timeout (default "
         "15 s) makes their txn_begin fail: hold times above the smallest peer timeout are "
         "reported.",
         "WFP: Object Management", "warning"),
    # OB: objects, lifetimes and references
    Rule("OB001", "engine",
         "An add whose references point to a shorter-lived object fails with "
         "FWP_E_LIFETIME_MISMATCH: static or persistent to dynamic, persistent to static, "
         "dynamic to another session's dynamic, persistent to another provider's persistent.",
         "WFP: Object Management"),
    Rule("OB002", "engine",
         "Deleting an object that another object references fails with FWP_E_IN_USE.",
         "WFP: Object Management"),
    Rule("OB003", "engine",
         "Adding or deleting a built-in object fails with FWP_E_BUILTIN_OBJECT.",
         "WFP: Object Management"),
    Rule("OB004", "engine",
         "A key is unique per object type: a second add of it fails with "
         "FWP_E_ALREADY_EXISTS (two types may share a key).",
         "WFP: Object Management"),
    Rule("OB005", "engine",
         "From a dynamic session, deleting another dynamic session's object fails with "
         "FWP_E_WRONG_SESSION and deleting a non-dynamic object with "
         "FWP_E_DYNAMIC_SESSION_IN_PROGRESS.",
         "SDK FwpmCalloutDeleteById0"),
    Rule("OB006", "engine",
         "An add that references a missing object fails with that type's NOT_FOUND "
         "(FWP_E_CALLOUT_NOT_FOUND, FWP_E_LAYER_NOT_FOUND, FWP_E_SUBLAYER_NOT_FOUND, "
         "FWP_E_PROVIDER_NOT_FOUND, FWP_E_PROVIDER_CONTEXT_NOT_FOUND).",
         "WFP: Object Management"),
    # RA: reauthorization
    Rule("RA001", "engine",
         "After a policy_change at ALE_AUTH_CONNECT or ALE_AUTH_RECV_ACCEPT, the next packet "
         "of each flow already authorized at that layer is classified again with reauth "
         "set, in either direction.",
         "WFP: Processing Classify Callouts Asynchronously (ALE reauthorization); "
         "WFP: ALE Re-authorization"),
    Rule("RA002", "driver",
         "A reauthorization classify gets a final decision synchronously (PERMIT, BLOCK or "
         "CONTINUE), never an absorb.",
         "WFP: Processing Classify Callouts Asynchronously"),
)

RULES: Final[dict[str, Rule]] = {}
for _rule in _RULES:
    if _rule.id in RULES:
        raise ValueError(f"rule {_rule.id} is defined twice")
    RULES[_rule.id] = _rule


def select_rules(select: str | None = None, ignore: str | None = None) -> frozenset[str]:
    """The rule IDs chosen by comma lists that may use family wildcards (``EP*``).

    Raises :class:`UsageError` naming an ID or pattern that matches no rule.
    """
    chosen = set(RULES) if not select else _expand(select, "--select")
    if ignore:
        chosen -= _expand(ignore, "--ignore")
    return frozenset(chosen)


def _expand(spec: str, option: str) -> set[str]:
    out: set[str] = set()
    for raw in spec.split(","):
        item = raw.strip().upper()
        if not item:
            continue
        if item in ("*", "ALL"):
            out |= RULES.keys()
        elif item.endswith("*"):
            prefix = item[:-1]
            hits = {rid for rid in RULES if rid.startswith(prefix)}
            if not hits:
                raise UsageError(f"{option}: {raw.strip()!r} matches no rule")
            out |= hits
        elif item in RULES:
            out.add(item)
        else:
            raise UsageError(
                f"{option}: unknown rule ID {raw.strip()!r} (IDs look like PC001; "
                "families: " + ", ".join(f"{f}*" for f in FAMILIES) + ")"
            )
    return out
