"""Filter arbitration across sublayers, as a table.

WFP "Filter Arbitration": every sublayer of a layer is evaluated, from the
highest weight down, even after one has decided. Inside a sublayer the first
terminating decision (PERMIT or BLOCK; a callout's CONTINUE goes on) is that
sublayer's verdict. Across sublayers a running verdict is kept together with
the FWPS_RIGHT_ACTION_WRITE right: a verdict whose write right was cleared
(a filter with FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT, or a callout that cleared
the right in its classifyOut) is *hard*, otherwise *soft*.

The documented policy, encoded in :data:`TABLE`:

- Block overrides Permit: a soft permit is replaced by a later block.
- A hard permit resists a later block; only a callout's *veto* (a BLOCK from
  a callout that was invoked without the write right) overrides it.
- A hard block is final.
- "A soft block can be permitted in another sublayer": the docs say a block
  with the write right can be overridden; read together with "Block overrides
  Permit" that means a *hard* permit from a lower sublayer overrides a soft
  block, a soft permit does not. (This reconciliation is our reading; the
  docs do not say it in one sentence.)
- With no decision at all, the layer permits (the model has no default-block
  layer).
"""

from __future__ import annotations

from typing import Final, Literal

Verdict = Literal["NONE", "SOFT_PERMIT", "HARD_PERMIT", "SOFT_BLOCK", "HARD_BLOCK"]
Incoming = Literal["SOFT_PERMIT", "HARD_PERMIT", "SOFT_BLOCK", "HARD_BLOCK", "VETO"]

NONE: Final = "NONE"
SOFT_PERMIT: Final = "SOFT_PERMIT"
HARD_PERMIT: Final = "HARD_PERMIT"
SOFT_BLOCK: Final = "SOFT_BLOCK"
HARD_BLOCK: Final = "HARD_BLOCK"
VETO: Final = "VETO"

#: (running verdict, a lower sublayer's decision) -> new running verdict.
TABLE: Final[dict[tuple[str, str], str]] = {
    (NONE, SOFT_PERMIT): SOFT_PERMIT,
    (NONE, HARD_PERMIT): HARD_PERMIT,
    (NONE, SOFT_BLOCK): SOFT_BLOCK,
    (NONE, HARD_BLOCK): HARD_BLOCK,
    (NONE, VETO): HARD_BLOCK,
    # a soft permit is anyone's to change
    (SOFT_PERMIT, SOFT_PERMIT): SOFT_PERMIT,
    (SOFT_PERMIT, HARD_PERMIT): HARD_PERMIT,
    (SOFT_PERMIT, SOFT_BLOCK): SOFT_BLOCK,
    (SOFT_PERMIT, HARD_BLOCK): HARD_BLOCK,
    (SOFT_PERMIT, VETO): HARD_BLOCK,
    # a hard permit yields to a callout veto only
    (HARD_PERMIT, SOFT_PERMIT): HARD_PERMIT,
    (HARD_PERMIT, HARD_PERMIT): HARD_PERMIT,
    (HARD_PERMIT, SOFT_BLOCK): HARD_PERMIT,
    (HARD_PERMIT, HARD_BLOCK): HARD_PERMIT,
    (HARD_PERMIT, VETO): HARD_BLOCK,
    # block overrides permit; a soft block yields to a hard permit
    (SOFT_BLOCK, SOFT_PERMIT): SOFT_BLOCK,
    (SOFT_BLOCK, HARD_PERMIT): HARD_PERMIT,
    (SOFT_BLOCK, SOFT_BLOCK): SOFT_BLOCK,
    (SOFT_BLOCK, HARD_BLOCK): HARD_BLOCK,
    (SOFT_BLOCK, VETO): HARD_BLOCK,
    # a hard block is final
    (HARD_BLOCK, SOFT_PERMIT): HARD_BLOCK,
    (HARD_BLOCK, HARD_PERMIT): HARD_BLOCK,
    (HARD_BLOCK, SOFT_BLOCK): HARD_BLOCK,
    (HARD_BLOCK, HARD_BLOCK): HARD_BLOCK,
    (HARD_BLOCK, VETO): HARD_BLOCK,
}

#: Whether a callout evaluated under this running verdict gets the write right.
WRITE_RIGHT: Final[dict[str, bool]] = {
    NONE: True,
    SOFT_PERMIT: True,
    SOFT_BLOCK: True,
    HARD_PERMIT: False,
    HARD_BLOCK: False,
}


def combine(running: str, incoming: str) -> str:
    """The running verdict after a lower sublayer decided ``incoming``."""
    return TABLE[(running, incoming)]


def decision(action: str, hard: bool, *, callout_had_right: bool = True) -> str:
    """Classify one sublayer's terminating decision for :func:`combine`.

    A BLOCK from a callout that was called without the write right is a veto.
    """
    if action == "BLOCK":
        if not callout_had_right:
            return VETO
        return HARD_BLOCK if hard else SOFT_BLOCK
    return HARD_PERMIT if hard else SOFT_PERMIT


def final_action(running: str) -> str:
    """PERMIT or BLOCK: what the layer does with the indication."""
    return "BLOCK" if running in (SOFT_BLOCK, HARD_BLOCK) else "PERMIT"


def arbitrate(decisions: list[tuple[str, bool, bool]]) -> str:
    """Fold sublayer decisions (action, hard, callout_had_right), highest first.

    A helper for tests and for reading the table: the filter engine folds the
    same way while it evaluates, because a callout's rights depend on the
    verdict of the sublayers above it.
    """
    running = NONE
    for action, hard, had_right in decisions:
        running = combine(running, decision(action, hard, callout_had_right=had_right))
    return running
