"""The checker's model of BFE state, built only from what a trace shows.

The TX and OB rules judge each policy-client call against what BFE must hold
at that moment: the open sessions, each session's transaction with its staged
changes, and the committed object store. This module keeps that state and
nothing else (no reporting): sessions are forgotten at ``session_close``,
transactions when they end, and the store holds live objects only.

Assumption: a trace starts with only the built-in objects (see
``harness.contract.builtins``) unless ``Store.preload`` was given the
objects that already existed. A call that the trace shows succeeding from a
session it never saw open still changes the store (the object exists), but
is not judged.

*Ghosts* are the one exception to "live objects only": the key of an object
that an abort or a session close should have removed (or a commit should
have deleted) is remembered, with the events that removed it, so that a later
call proving it is still there (an add failing FWP_E_ALREADY_EXISTS, a
reference to it succeeding) can cite them. Ghosts are bounded (``GHOST_LIMIT``,
oldest dropped first) and dropped when the key is added again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

Key = tuple[str, object]
"""An object's identity: (type, key); keys are unique per type only."""

Seqs = tuple[int | None, ...]

GHOST_LIMIT: Final = 65536


class Obj:
    """One live (or staged) management object and where it came from."""

    __slots__ = (
        "add_seq", "commit_seq", "key", "layer", "lifetime", "owner", "refs", "restored",
        "session",
    )

    def __init__(
        self,
        key: Key,
        lifetime: str,
        session: object,
        owner: object,
        refs: Sequence[Key] = (),
        layer: str | None = None,
        add_seq: int | None = None,
    ) -> None:
        self.key = key
        self.lifetime = lifetime
        #: the owning session of a dynamic object, else None
        self.session = session
        #: the provider that owns it (a provider owns itself), for OB001
        self.owner = owner
        #: references to store objects (built-ins are not tracked)
        self.refs = refs
        #: a filter's layer, for policy_change evidence
        self.layer = layer
        self.add_seq = add_seq
        #: seq of the explicit txn_commit that made it live, if any
        self.commit_seq: int | None = None
        #: (rule, seqs) when an abort or close undid a staged delete of it
        self.restored: tuple[str, Seqs] | None = None


class Txn:
    """An explicit transaction: its lock hold, staged changes and client state."""

    __slots__ = (
        "adds", "begin_seq", "begin_t", "dels", "ended", "failed_seq", "forced_seq",
        "kernel", "layers", "overdue", "peer_ms", "peer_seq", "peer_sid", "read_only",
        "ref_added",
        "refdelta", "session",
    )

    def __init__(
        self, session: object, begin_seq: int, begin_t: float, read_only: bool,
        kernel: bool | None,
    ) -> None:
        self.session = session
        self.begin_seq = begin_seq
        self.begin_t = begin_t
        self.read_only = read_only
        self.kernel = kernel
        self.adds: dict[Key, Obj] = {}
        #: committed objects deleted in the transaction, with the delete's seq
        self.dels: dict[Key, tuple[Obj, int]] = {}
        #: staged change of each referenced key's reference count
        self.refdelta: dict[Key, int] = {}
        #: referenced key -> staged referrers
        self.ref_added: dict[Key, dict[Key, None]] = {}
        #: filter layer -> seq of the first staged change there
        self.layers: dict[str, int | None] = {}
        self.failed_seq: int | None = None
        self.forced_seq: int | None = None
        self.ended = False
        self.overdue = False
        #: smallest wait timeout of a peer session open during the hold
        self.peer_ms: float | None = None
        self.peer_seq: int | None = None
        self.peer_sid: object = None


class SessionModel:
    """An open session as its session_open described it."""

    __slots__ = (
        "aborted_seq", "dynamic", "kernel", "last_end", "open_seq", "sid", "tx8_reported",
        "txn", "unsure", "wait_ms",
    )

    def __init__(
        self, sid: object, open_seq: int, dynamic: bool, kernel: bool | None, wait_ms: float
    ) -> None:
        self.sid = sid
        self.open_seq = open_seq
        self.dynamic = dynamic
        self.kernel = kernel
        self.wait_ms = wait_ms
        self.txn: Txn | None = None
        #: the transaction state is unknown (after a commit or abort failed oddly)
        self.unsure = False
        #: seq of the call that got FWP_E_TXN_ABORTED in the current transaction
        self.aborted_seq: int | None = None
        self.tx8_reported = False
        #: seq of the event after which the session had no transaction
        self.last_end: int = open_seq


class Store:
    """Committed objects, who references them, dynamic ownership and ghosts."""

    __slots__ = ("by_session", "ghosts", "objects", "referrers")

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.referrers: dict[Key, dict[Key, None]] = {}
        self.by_session: dict[object, dict[Key, None]] = {}
        # OrderedDict: dropping the oldest of many is O(1) (a dict's next(iter())
        # slows down as deleted slots pile up at its front)
        self.ghosts: OrderedDict[Key, tuple[str, Seqs]] = OrderedDict()

    # -- reading, as seen from inside a transaction (or outside one: txn None)

    def get(self, txn: Txn | None, key: Key) -> Obj | None:
        if txn is not None:
            staged = txn.adds.get(key)
            if staged is not None:
                return staged
            if key in txn.dels:
                return None
        return self.objects.get(key)

    def refcount(self, txn: Txn | None, key: Key) -> int:
        n = len(self.referrers.get(key, ()))
        if txn is not None:
            n += txn.refdelta.get(key, 0)
        return n

    def a_referrer(self, txn: Txn | None, key: Key) -> Obj | None:
        """One live object that references ``key`` (evidence for OB002)."""
        if txn is not None:
            for rk in txn.ref_added.get(key, ()):
                return txn.adds[rk]
        for rk in self.referrers.get(key, ()):
            if txn is None or rk not in txn.dels:
                return self.objects.get(rk)
        return None

    # -- changing

    def insert(self, obj: Obj) -> None:
        key = obj.key
        self.objects[key] = obj
        if obj.refs:
            referrers = self.referrers
            for r in obj.refs:
                users = referrers.get(r)
                if users is None:
                    referrers[r] = {key: None}
                else:
                    users[key] = None
        if obj.session is not None:
            owned = self.by_session.get(obj.session)
            if owned is None:
                self.by_session[obj.session] = {key: None}
            else:
                owned[key] = None
        self.ghosts.pop(key, None)

    def remove(self, key: Key) -> Obj | None:
        obj = self.objects.pop(key, None)
        if obj is None:
            return None
        for r in obj.refs:
            users = self.referrers.get(r)
            if users is not None:
                users.pop(key, None)
                if not users:
                    del self.referrers[r]
        if obj.session is not None:
            owned = self.by_session.get(obj.session)
            if owned is not None:
                owned.pop(key, None)
        return obj

    def ghost(self, key: Key, rule: str, seqs: Seqs) -> None:
        ghosts = self.ghosts
        ghosts[key] = (rule, seqs)
        ghosts.move_to_end(key)
        if len(ghosts) > GHOST_LIMIT:
            ghosts.popitem(last=False)

    def stage_add(self, txn: Txn, obj: Obj) -> None:
        key = obj.key
        txn.adds[key] = obj
        if obj.refs:
            refdelta, ref_added = txn.refdelta, txn.ref_added
            for r in obj.refs:
                refdelta[r] = refdelta.get(r, 0) + 1
                staged = ref_added.get(r)
                if staged is None:
                    ref_added[r] = {key: None}
                else:
                    staged[key] = None
        if obj.layer is not None:
            txn.layers.setdefault(obj.layer, obj.add_seq)

    def stage_delete(self, txn: Txn, obj: Obj, seq: int) -> None:
        key = obj.key
        if txn.adds.get(key) is obj:
            del txn.adds[key]
            for r in obj.refs:
                txn.refdelta[r] = txn.refdelta.get(r, 0) - 1
                staged = txn.ref_added.get(r)
                if staged is not None:
                    staged.pop(key, None)
        else:
            txn.dels[key] = (obj, seq)
            for r in obj.refs:
                txn.refdelta[r] = txn.refdelta.get(r, 0) - 1
        if obj.layer is not None:
            txn.layers.setdefault(obj.layer, seq)

    def commit(self, txn: Txn, seq: int) -> list[str]:
        """Make a transaction's staged changes live; returns the filter layers changed."""
        for key, (obj, del_seq) in txn.dels.items():
            if self.objects.get(key) is obj:
                self.remove(key)
                self.ghost(key, "TX006", (del_seq, seq))
        for obj in txn.adds.values():
            obj.commit_seq = seq
            self.insert(obj)
        return list(txn.layers)

    def discard(self, txn: Txn, rule: str, seq: int) -> None:
        """Drop a transaction's staged changes, remembering them as evidence."""
        for key, obj in txn.adds.items():
            if key not in self.objects:
                self.ghost(key, rule, (obj.add_seq, seq))
        for obj, del_seq in txn.dels.values():
            obj.restored = (rule, (del_seq, seq))
        txn.adds.clear()
        txn.dels.clear()
        # the staged references go with the staged objects that made them
        txn.refdelta.clear()
        txn.ref_added.clear()

    def close_session(self, sid: object, seq: int) -> list[str]:
        """Delete a dynamic session's objects; returns the filter layers changed."""
        owned = self.by_session.pop(sid, None)
        layers: list[str] = []
        if not owned:
            return layers
        for key in list(owned):
            obj = self.remove(key)
            if obj is not None:
                self.ghost(key, "TX007", (obj.add_seq, seq))
                if obj.layer is not None:
                    layers.append(obj.layer)
        return layers

    def preload(self, objects: Iterable[Mapping[str, object]]) -> None:
        """Objects that existed before the trace began (a header's ``objects``)."""
        for spec in objects:
            otype, key = spec.get("type"), spec.get("key")
            if not isinstance(otype, str) or key is None:
                continue
            lifetime = spec.get("lifetime")
            lifetime = lifetime if isinstance(lifetime, str) else "static"
            owner = key if otype == "provider" else spec.get("provider")
            layer = spec.get("layer")
            self.insert(Obj(
                (otype, key), lifetime, spec.get("session") if lifetime == "dynamic" else None,
                owner, layer=layer if isinstance(layer, str) and otype == "filter" else None,
            ))
