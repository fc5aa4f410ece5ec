"""Whether BFE accepts an add or a delete: the object rules OB001-OB006.

Each check answers with the status BFE returns, so that the session code only
decides *when* an operation runs and this module alone decides *whether* it
may. Each object-rule fault switch is read here, next to the one check it
disables, so that a fault breaks exactly one rule.

Order of the checks, when several would fail (the documentation gives none):
built-in object, then duplicate key, then missing references (in the order
provider, layer, sublayer, callout, provider context), then lifetimes. For
deletes: built-in, missing object, a dynamic caller's ownership, then
references.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.engine.bfe.store import ObjectStore, ObjKey, View, references
from harness.engine.objects import BfeObject

OK = "STATUS_SUCCESS"

NOT_FOUND: dict[str, str] = {
    "provider": "FWP_E_PROVIDER_NOT_FOUND",
    "provider_context": "FWP_E_PROVIDER_CONTEXT_NOT_FOUND",
    "sublayer": "FWP_E_SUBLAYER_NOT_FOUND",
    "callout": "FWP_E_CALLOUT_NOT_FOUND",
    "filter": "FWP_E_FILTER_NOT_FOUND",
    "layer": "FWP_E_LAYER_NOT_FOUND",
}

# Lifetimes that must outlive BFE itself: persistent objects are reloaded
# when BFE starts and boot-time filters exist before it does, so neither may
# lean on anything BFE does not reload.
_SURVIVES_BFE = ("persistent", "boottime")


@dataclass(frozen=True)
class Caller:
    """What the checks need to know about the session making the call."""

    handle: int
    dynamic: bool


def _owner(obj: BfeObject) -> str | None:
    """The provider that owns an object (a provider owns itself)."""
    return obj.key if obj.type == "provider" else obj.provider


def lifetime_conflict(referrer: BfeObject, target: BfeObject) -> bool:
    """True when ``referrer`` would outlive ``target`` (OB001, the BFE object management page).

    Static or persistent -> dynamic, persistent -> static, dynamic -> another
    session's dynamic, persistent -> a persistent object of another provider.
    An unowned persistent object referring to one owned by a provider counts
    as another provider's: BFE may skip loading the owned one at start-up
    (its provider's service is not auto-start), which is what the rule guards.
    """
    mine, theirs = referrer.lifetime, target.lifetime
    if theirs == "builtin":
        return False
    if theirs == "dynamic":
        return not (mine == "dynamic" and referrer.session == target.session)
    if mine not in _SURVIVES_BFE:
        return False
    if theirs in ("static", "boottime"):
        return True
    owner = _owner(target)
    return owner is not None and owner != _owner(referrer)


class Validator:
    """The add and delete checks, with the object-rule faults that disable them."""

    def __init__(self, store: ObjectStore, faults: frozenset[str]) -> None:
        self._store = store
        self._faults = faults

    def check_add(self, view: View, obj: BfeObject) -> str:
        """The status of adding ``obj`` (already stamped with lifetime and owner) to ``view``."""
        key: ObjKey = (obj.type, obj.key)
        if obj.lifetime == "builtin" or key in self._store.builtin_keys:
            return "FWP_E_BUILTIN_OBJECT"
        if key in view and "duplicate_key_accepted" not in self._faults:
            return "FWP_E_ALREADY_EXISTS"
        targets: list[BfeObject] = []
        for ref_type, ref_key in references(obj):
            if ref_type == "layer":
                if ref_key not in self._store.layers and not self._dangling_ok():
                    return NOT_FOUND["layer"]
                continue
            target = view.get((ref_type, ref_key)) if ref_key is not None else None
            if target is None:
                if not self._dangling_ok():
                    return NOT_FOUND[ref_type]
                continue
            targets.append(target)
        if "no_lifetime_check" not in self._faults:
            for target in targets:
                if lifetime_conflict(obj, target):
                    return "FWP_E_LIFETIME_MISMATCH"
        return OK

    def check_delete(self, view: View, caller: Caller, obj_type: str, key: str) -> str:
        """The status of deleting object ``(obj_type, key)`` from ``view`` for ``caller``."""
        okey: ObjKey = (obj_type, key)
        if okey in self._store.builtin_keys and "builtin_deletable" not in self._faults:
            return "FWP_E_BUILTIN_OBJECT"
        target = view.get(okey)
        if target is None:
            return NOT_FOUND[obj_type]
        # OB005 restricts dynamic callers only: a non-dynamic session (an
        # administrator's tool, say) may delete any session's dynamic object.
        if caller.dynamic:
            if target.lifetime != "dynamic":
                return "FWP_E_DYNAMIC_SESSION_IN_PROGRESS"
            if target.session != caller.handle and "cross_session_delete" not in self._faults:
                return "FWP_E_WRONG_SESSION"
        if "delete_in_use" not in self._faults and self.in_use(view, okey):
            return "FWP_E_IN_USE"
        return OK

    def in_use(self, view: View, okey: ObjKey) -> bool:
        """Whether any other object in ``view`` refers to ``okey``."""
        for referrer in self._store.committed_referrers(okey):
            # A committed referrer the transaction has not touched still refers.
            if referrer != okey and referrer not in view.changes:
                return True
        for key, staged in view.changes.items():
            if staged is not None and key != okey and okey in references(staged):
                return True
        return False

    def _dangling_ok(self) -> bool:
        return "dangling_reference_accepted" in self._faults
