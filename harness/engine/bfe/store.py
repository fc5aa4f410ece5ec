"""Where BFE keeps its objects: the committed store and transaction views.

Committed objects are what the filter engine sees. A transaction never
writes to them directly: it works on a :class:`View`, an overlay of staged
additions and deletions over the committed store, which is applied in one
step on commit and simply dropped on abort. That is the whole of atomicity
(TX006), and because the overlay reads through to the committed store, the
objects BFE itself removes while a transaction is open (a dynamic session's
objects when that session closes) vanish from the open transaction's view too.

Objects are keyed by ``(type, key)``: a key is unique per type only, so a
filter and a provider context may share one (OB004).
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.engine.bfe import builtins
from harness.engine.objects import BfeObject, CalloutObject, Filter, Sublayer

ObjKey = tuple[str, str]

_CALLOUT_ACTIONS = ("CALLOUT_TERMINATING", "CALLOUT_INSPECTION", "CALLOUT_UNKNOWN")


def obj_key(obj: BfeObject) -> ObjKey:
    return (obj.type, obj.key)


def references(obj: BfeObject) -> Iterator[tuple[str, str | None]]:
    """The (type, key) pairs an object refers to; ``layer`` is the built-in layer type.

    A key of None is a reference that is required but missing (a callout
    filter without a callout).
    """
    if obj.provider is not None and obj.type != "provider":
        yield ("provider", obj.provider)
    if isinstance(obj, CalloutObject):
        yield ("layer", obj.layer)
        if obj.context is not None:
            yield ("provider_context", obj.context)
    elif isinstance(obj, Filter):
        yield ("layer", obj.layer)
        yield ("sublayer", obj.sublayer)
        if obj.callout is not None or obj.action in _CALLOUT_ACTIONS:
            yield ("callout", obj.callout)
        if obj.context is not None:
            yield ("provider_context", obj.context)


def _object_refs(obj: BfeObject) -> Iterator[ObjKey]:
    """References to objects that can be deleted (layers never are)."""
    for ref_type, ref_key in references(obj):
        if ref_type != "layer" and ref_key is not None:
            yield (ref_type, ref_key)


class View:
    """The objects as one transaction sees them: committed plus staged changes."""

    def __init__(self, base: dict[ObjKey, BfeObject]) -> None:
        self._base = base
        # key -> new object, or None for a staged deletion
        self.changes: dict[ObjKey, BfeObject | None] = {}

    def get(self, key: ObjKey) -> BfeObject | None:
        if key in self.changes:
            return self.changes[key]
        return self._base.get(key)

    def __contains__(self, key: ObjKey) -> bool:
        return self.get(key) is not None

    def put(self, obj: BfeObject) -> None:
        self.changes[obj_key(obj)] = obj

    def remove(self, key: ObjKey) -> None:
        self.changes[key] = None

    def values(self) -> Iterator[BfeObject]:
        for key, obj in self._base.items():
            if key not in self.changes:
                yield obj
        for staged in self.changes.values():
            if staged is not None:
                yield staged

    @property
    def dirty(self) -> bool:
        return bool(self.changes)


class ObjectStore:
    """The committed objects, the built-ins, and indexes over them."""

    def __init__(self) -> None:
        self.committed: dict[ObjKey, BfeObject] = {}
        # Indexes over committed objects, so that a classification, an in-use
        # check or a session's cleanup costs what it touches, not the size of
        # the whole policy. Dicts, not sets, where order reaches the trace.
        self._by_layer: dict[str, dict[ObjKey, Filter]] = {}
        self._referrers: dict[ObjKey, set[ObjKey]] = {}
        self._by_session: dict[int, dict[ObjKey, None]] = {}
        self._next_filter_id = 1
        self.layers: frozenset[str] = builtins.LAYERS
        for obj in builtins.builtin_objects():
            self.committed[obj_key(obj)] = obj
            self._index(obj)
        self.builtin_keys: frozenset[ObjKey] = frozenset(self.committed)

    def view(self) -> View:
        return View(self.committed)

    def next_filter_id(self) -> int:
        """A fresh run-time filter id; BFE assigns them, ids of aborted adds are not reused."""
        fid = self._next_filter_id
        self._next_filter_id += 1
        return fid

    def apply(self, view: View) -> set[str]:
        """Make a view's staged changes committed; return the layers whose filters changed."""
        changed: set[str] = set()
        for key, new in view.changes.items():
            old = self.committed.get(key)
            if old is new:
                continue
            if old is not None:
                self._unindex(old)
            if new is None:
                del self.committed[key]
            else:
                self.committed[key] = new
                self._index(new)
            for obj in (old, new):
                if isinstance(obj, Filter):
                    changed.add(obj.layer)
        view.changes.clear()
        return changed

    def remove_committed(self, keys: list[ObjKey]) -> set[str]:
        """Delete committed objects outside any transaction (session cleanup)."""
        changed: set[str] = set()
        for key in keys:
            old = self.committed.pop(key, None)
            if old is not None:
                self._unindex(old)
            if isinstance(old, Filter):
                changed.add(old.layer)
        return changed

    def owned_by(self, session: int) -> list[ObjKey]:
        """Keys of the committed dynamic objects a session owns."""
        return list(self._by_session.get(session, ()))

    def committed_referrers(self, key: ObjKey) -> set[ObjKey]:
        """Keys of committed objects that refer to ``key``."""
        return self._referrers.get(key, set())

    def _index(self, obj: BfeObject) -> None:
        me = obj_key(obj)
        for ref in _object_refs(obj):
            self._referrers.setdefault(ref, set()).add(me)
        if obj.lifetime == "dynamic" and obj.session is not None:
            self._by_session.setdefault(obj.session, {})[me] = None
        if isinstance(obj, Filter):
            self._by_layer.setdefault(obj.layer, {})[me] = obj

    def _unindex(self, obj: BfeObject) -> None:
        me = obj_key(obj)
        for ref in _object_refs(obj):
            users = self._referrers.get(ref)
            if users is not None:
                users.discard(me)
                if not users:
                    del self._referrers[ref]
        if obj.session is not None:
            self._by_session.get(obj.session, {}).pop(me, None)
        if isinstance(obj, Filter):
            self._by_layer.get(obj.layer, {}).pop(me, None)

    def filters_at(self, layer: str) -> list[Filter]:
        """Committed filters at a run-time layer, in the order they were committed."""
        return list(self._by_layer.get(layer, {}).values())

    def sublayer_weight(self, key: str) -> int:
        obj = self.committed.get(("sublayer", key))
        return obj.weight if isinstance(obj, Sublayer) else 0
