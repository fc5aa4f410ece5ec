"""Rule family OB: objects, lifetimes and references (engine rules).

Each ``object_add`` / ``object_delete`` is judged against the store model of
:mod:`harness.contract.tx_model`, as seen from the calling session (a call
inside an open transaction sees that transaction's own staged changes). The
judges here only *compute* what the engine owed the call: a list of
conditions, each naming its rule, the statuses that satisfy it and the events
that prove it holds. :class:`harness.contract.tx.BfeMonitor` keeps the model
and reports, because the TX rules need the same state and a status can be
explained by either family (an add inside a read-only transaction of an
existing key may return FWP_E_INCOMPATIBLE_TXN or FWP_E_ALREADY_EXISTS).
That is why this module's ``MONITORS`` is empty.

How a call is judged (in the monitor):

- it succeeded although a condition holds: every such rule is broken;
- it failed with a status this model explains (one some holding condition
  names) or with one the model does not decide (E_INVALIDARG, RPC errors,
  FWP_E_INVALID_WEIGHT...: the trace lacks the inputs that would justify
  them): nothing is reported;
- it failed with a modelled status no holding condition names: each holding
  condition's rule is broken, or, when none holds, the *converse* evidence
  below is reported.

Converse evidence (a failure that proves the model's facts wrong): a
FWP_E_LIFETIME_MISMATCH with no shorter-lived reference (OB001); a
FWP_E_WRONG_SESSION / FWP_E_DYNAMIC_SESSION_IN_PROGRESS for a delete
that OB005 allows (OB005); and the atomicity evidence of TX006/TX007: a
key an abort or close should have removed still exists (add fails with
FWP_E_ALREADY_EXISTS) or can still be referenced or deleted; an object a
commit made live is gone (a reference to it or its delete fails with
NOT_FOUND, or adding it again succeeds).

Lifetimes (the BFE object management page): an object may not reference a shorter-lived one:
static or persistent -> dynamic, persistent -> static, dynamic -> another
session's dynamic, persistent -> a persistent object owned by another
provider (a provider owns itself; an object without an owning provider is
never "another provider's"). Boot-time filters exist from TCP/IP start, before
BFE adds anything, so a boottime filter referencing a dynamic or static object
is a mismatch; whether one may reference a persistent object is not
documented, so neither outcome is judged there. Built-in objects live forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from harness.contract.base import Monitor, handle
from harness.contract.tx_model import Key, Obj, Seqs, SessionModel, Store, Txn
from harness.trace.builtins import BUILTIN_KEYS, LAYERS, is_layer, layer_name
from harness.trace.events import OBJECT_TYPES

MONITORS: tuple[type[Monitor], ...] = ()

LIFETIME_MISMATCH: Final = "FWP_E_LIFETIME_MISMATCH"
IN_USE: Final = "FWP_E_IN_USE"
BUILTIN_OBJECT: Final = "FWP_E_BUILTIN_OBJECT"
ALREADY_EXISTS: Final = "FWP_E_ALREADY_EXISTS"
WRONG_SESSION: Final = "FWP_E_WRONG_SESSION"
DYNAMIC_SESSION: Final = "FWP_E_DYNAMIC_SESSION_IN_PROGRESS"
LAYER_NOT_FOUND: Final = "FWP_E_LAYER_NOT_FOUND"

#: reference field -> (referenced type, NOT_FOUND status)
REFERENCES: Final[tuple[tuple[str, str, str], ...]] = (
    ("provider", "provider", "FWP_E_PROVIDER_NOT_FOUND"),
    ("sublayer", "sublayer", "FWP_E_SUBLAYER_NOT_FOUND"),
    ("callout", "callout", "FWP_E_CALLOUT_NOT_FOUND"),
    ("context", "provider_context", "FWP_E_PROVIDER_CONTEXT_NOT_FOUND"),
)
NOT_FOUND_OF: Final[dict[str, str]] = {
    "provider": "FWP_E_PROVIDER_NOT_FOUND",
    "sublayer": "FWP_E_SUBLAYER_NOT_FOUND",
    "callout": "FWP_E_CALLOUT_NOT_FOUND",
    "provider_context": "FWP_E_PROVIDER_CONTEXT_NOT_FOUND",
    "filter": "FWP_E_FILTER_NOT_FOUND",
}
NOT_FOUND: Final = frozenset([*NOT_FOUND_OF.values(), LAYER_NOT_FOUND, "FWP_E_NOT_FOUND"])

#: Statuses of object calls this model decides; any other failure is not judged.
MODELLED: Final = frozenset({
    LIFETIME_MISMATCH, IN_USE, BUILTIN_OBJECT, ALREADY_EXISTS, WRONG_SESSION,
    DYNAMIC_SESSION, "FWP_E_INCOMPATIBLE_TXN", "FWP_E_TXN_ABORTED",
    "FWP_E_NO_TXN_IN_PROGRESS", "FWP_E_TXN_IN_PROGRESS", *NOT_FOUND,
})


#: each status as a one-element set, built once
_ONE: Final[dict[str, frozenset[str]]] = {code: frozenset((code,)) for code in MODELLED}


class Cond(NamedTuple):
    """An obligation that holds for a call: it must fail with one of ``codes``."""

    rule: str
    codes: frozenset[str]
    message: str
    seqs: Seqs


class Finding(NamedTuple):
    """A violation to report if the call turns out a certain way."""

    rule: str
    message: str
    seqs: Seqs


class Judgement:
    """What the engine owed one object call, computed before its status is read.

    The lists start as empty tuples and become lists on first use: nearly every
    call of a trace holds no condition, and allocating nothing keeps the
    checker (and the garbage collector) fast on policy-heavy traces.
    """

    __slots__ = ("conds", "if_ok", "key", "obj", "undetermined")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.conds: Sequence[Cond] = ()
        self.if_ok: Sequence[Finding] = ()
        #: the new object (add) or the object named (delete), if known
        self.obj: Obj | None = None
        #: some lifetime comparison could not be decided
        self.undetermined = False

    def cond(self, c: Cond) -> None:
        if isinstance(self.conds, list):
            self.conds.append(c)
        else:
            self.conds = [c]

    def finding(self, f: Finding) -> None:
        if isinstance(self.if_ok, list):
            self.if_ok.append(f)
        else:
            self.if_ok = [f]


def mismatch(lifetime: str, sid: object, owner: object, ref: Obj) -> bool | None:
    """Whether an object of ``lifetime`` may not reference ``ref`` (None: undecided)."""
    theirs = ref.lifetime
    if theirs == "builtin":
        return False
    if lifetime == "dynamic":
        return theirs == "dynamic" and ref.session != sid
    if lifetime == "static":
        return theirs == "dynamic"
    if lifetime == "persistent":
        if theirs in ("dynamic", "static"):
            return True
        if theirs == "persistent":
            return ref.owner is not None and ref.owner != owner
        return False
    if lifetime == "boottime":
        if theirs in ("dynamic", "static"):
            return True
        return None if theirs == "persistent" else False
    return None


def _what(otype: str, key: object) -> str:
    return f"{otype} {handle(key)}"


def _who(sid: object) -> str:
    return f"session {handle(sid)}"


def judge_add(
    store: Store, txn: Txn | None, s: SessionModel, ev: Mapping[str, Any], touched: set[str]
) -> Judgement | None:
    """The conditions on an ``object_add`` (None when it lacks its type or key).

    Rules whose input the call is are added to ``touched``. This runs for every
    add of a trace, so messages are only built for conditions that hold.
    """
    otype, key = ev.get("type"), ev.get("key")
    if otype not in OBJECT_TYPES or key is None:
        return None
    okey = (otype, key)
    j = Judgement(okey)
    sid = s.sid
    lifetime = ev.get("lifetime") or ("dynamic" if s.dynamic else "static")
    builtin = lifetime == "builtin" or okey in BUILTIN_KEYS
    if builtin:
        touched.add("OB003")
        j.cond(Cond(
            "OB003", _ONE[BUILTIN_OBJECT], f"{_who(sid)} added built-in {_what(*okey)}", (),
        ))
    touched.add("OB004")
    objects = store.objects
    existing = objects.get(okey) if txn is None else store.get(txn, okey)
    if existing is not None and not builtin:
        _existing(j, existing, sid)
    owner = key if otype == "provider" else ev.get("provider")
    refs: list[Key] = []
    get = ev.get
    for field, rtype, code in REFERENCES:
        value = get(field)
        if value is None:
            continue
        touched.add("OB006")
        rkey = (rtype, value)
        if rkey in BUILTIN_KEYS:
            continue
        # Store.get inlined outside transactions: this runs for every reference
        ref = objects.get(rkey) if txn is None else store.get(txn, rkey)
        if ref is None:
            _missing(store, j, sid, rkey, code)
            continue
        refs.append(rkey)
        touched.add("OB001")
        theirs = ref.lifetime
        if theirs == lifetime and (
            lifetime == "static" or (lifetime == "dynamic" and ref.session == sid)
        ):
            continue  # the common case: same lifetime, same session
        bad = mismatch(lifetime, sid, owner, ref)
        if bad is None:
            j.undetermined = True
        elif bad:
            _mismatch(j, sid, lifetime, ref)
    layer = get("layer")
    if isinstance(layer, str):
        touched.add("OB006")
        if layer not in LAYERS:
            if is_layer(layer):
                layer = layer_name(layer)
            else:
                j.cond(Cond(
                    "OB006", _ONE[LAYER_NOT_FOUND],
                    f"{_who(sid)} added {_what(*okey)} at unknown layer {layer}", (),
                ))
    j.obj = Obj(
        okey, lifetime, sid if lifetime == "dynamic" else None, owner, refs or (),
        layer if otype == "filter" and isinstance(layer, str) else None, ev["seq"],
    )
    return j


def _existing(j: Judgement, existing: Obj, sid: object) -> None:
    who, what = _who(sid), _what(*j.key)
    j.cond(Cond(
        "OB004", _ONE[ALREADY_EXISTS], f"{who} added {what}, which already exists",
        (existing.add_seq,),
    ))
    if existing.commit_seq is not None:
        j.finding(Finding(
            "TX006", f"{what} made live by the commit at seq {existing.commit_seq} was "
            f"lost: {who} added it again", (existing.add_seq, existing.commit_seq),
        ))
    if existing.restored is not None:
        rule, seqs = existing.restored
        j.finding(Finding(
            rule, f"the delete of {what} took effect although its transaction was "
            f"aborted: {who} added it again", seqs,
        ))


def _missing(store: Store, j: Judgement, sid: object, rkey: Key, code: str) -> None:
    who, what, theirs = _who(sid), _what(*j.key), _what(*rkey)
    j.cond(Cond(
        "OB006", _ONE[code], f"{who} added {what} referencing missing {theirs}", (),
    ))
    ghost = store.ghosts.get(rkey)
    if ghost is not None:
        j.finding(Finding(
            ghost[0], f"{theirs} should be gone, yet {who} added {what} referencing it",
            ghost[1],
        ))


def _mismatch(j: Judgement, sid: object, lifetime: str, ref: Obj) -> None:
    detail = ""
    if ref.lifetime == "dynamic" and lifetime == "dynamic":
        detail = f" of session {handle(ref.session)}"
    elif ref.lifetime == "persistent":
        detail = f" owned by provider {handle(ref.owner)}"
    j.cond(Cond(
        "OB001", _ONE[LIFETIME_MISMATCH],
        f"{lifetime} {_what(*j.key)} of {_who(sid)} references {ref.lifetime} "
        f"{_what(*ref.key)}{detail}", (ref.add_seq,),
    ))


def converse_add(
    store: Store, txn: Txn | None, j: Judgement, status: str
) -> list[Finding]:
    """Evidence from an add that failed with a modelled status no condition explains."""
    what = _what(*j.key)
    out: list[Finding] = []
    refs = [r for r in (store.get(txn, k) for k in j.obj.refs) if r is not None] if j.obj else []
    if status == LIFETIME_MISMATCH and not j.undetermined:
        out.append(Finding(
            "OB001", f"adding {what} returned {status}, but no reference is shorter-lived",
            tuple(r.add_seq for r in refs),
        ))
    elif status == ALREADY_EXISTS:
        ghost = store.ghosts.get(j.key)
        if ghost is not None:
            out.append(Finding(
                ghost[0], f"{what} should be gone, yet adding it returned {status}", ghost[1],
            ))
    elif status in NOT_FOUND:
        for ref in refs:
            if NOT_FOUND_OF.get(ref.key[0]) == status:
                out.extend(_lost(ref, f"a reference to it returned {status}"))
    return out


def _lost(obj: Obj, how: str) -> list[Finding]:
    what = _what(*obj.key)
    if obj.commit_seq is not None:
        return [Finding(
            "TX006", f"{what} made live by the commit at seq {obj.commit_seq} was lost: {how}",
            (obj.add_seq, obj.commit_seq),
        )]
    if obj.restored is not None:
        rule, seqs = obj.restored
        return [Finding(
            rule, f"the delete of {what} took effect although its transaction was aborted: "
            f"{how}", seqs,
        )]
    return []


def judge_delete(
    store: Store, txn: Txn | None, s: SessionModel, ev: Mapping[str, Any], touched: set[str]
) -> Judgement | None:
    """The conditions on an ``object_delete`` (None when it lacks its type or key)."""
    otype, key = ev.get("type"), ev.get("key")
    if otype not in OBJECT_TYPES or key is None:
        return None
    okey = (otype, key)
    j = Judgement(okey)
    sid = s.sid
    obj = store.get(txn, okey)
    j.obj = obj
    if okey in BUILTIN_KEYS or (obj is not None and obj.lifetime == "builtin"):
        touched.add("OB003")
        j.cond(Cond(
            "OB003", _ONE[BUILTIN_OBJECT], f"{_who(sid)} deleted built-in {_what(*okey)}", (),
        ))
        return j
    if obj is None:
        ghost = store.ghosts.get(okey)
        if ghost is not None:
            j.finding(Finding(
                ghost[0], f"{_what(*okey)} should be gone, yet {_who(sid)} deleted it",
                ghost[1],
            ))
        return j
    touched.add("OB002")
    if s.dynamic:
        touched.add("OB005")
        if obj.lifetime == "dynamic" and obj.session != sid:
            j.cond(Cond(
                "OB005", _ONE[WRONG_SESSION], f"dynamic {_who(sid)} deleted {_what(*okey)} "
                f"of dynamic session {handle(obj.session)}", (obj.add_seq,),
            ))
        elif obj.lifetime != "dynamic":
            j.cond(Cond(
                "OB005", _ONE[DYNAMIC_SESSION],
                f"dynamic {_who(sid)} deleted {obj.lifetime} {_what(*okey)}", (obj.add_seq,),
            ))
    if store.refcount(txn, okey) > 0:
        user = store.a_referrer(txn, okey)
        by = f", still referenced by {_what(*user.key)}" if user is not None else ""
        j.cond(Cond(
            "OB002", _ONE[IN_USE], f"{_who(sid)} deleted {_what(*okey)}{by}",
            (user.add_seq if user is not None else None,),
        ))
    return j


def converse_delete(j: Judgement, s: SessionModel, status: str) -> list[Finding]:
    """Evidence from a delete that failed with a modelled status no condition explains."""
    obj = j.obj
    if obj is None:
        return []
    what = _what(*obj.key)
    if status in (WRONG_SESSION, DYNAMIC_SESSION):
        why = (
            f"session {handle(s.sid)} is not dynamic" if not s.dynamic
            else f"{what} is its own dynamic object"
        )
        return [Finding(
            "OB005", f"deleting {what} returned {status}, but {why}", (obj.add_seq,),
        )]
    if status in NOT_FOUND:
        return _lost(obj, f"deleting it returned {status}")
    return []
