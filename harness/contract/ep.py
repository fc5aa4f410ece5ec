"""Rule family EP: ALE endpoint lifetime (seeds 000/001).

:class:`EndpointMonitor` follows every endpoint handle (the classify field
``endpoint``, FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE) from the classify
that introduces it to the point where the handle may be given to a new
endpoint: its ALE_RESOURCE_RELEASE, or, for an endpoint that had no
ALE_RESOURCE_ASSIGNMENT, the completion of its closure. On the way it learns

* whether the endpoint owes a release (EP001: seen at RESOURCE_ASSIGNMENT);
* whether it owes a closure, and under which rule: a TCP connection (EP002,
  proto tcp at AUTH_CONNECT/AUTH_RECV_ACCEPT, initial indication only: neither
  ``reauth`` nor a self-injected packet), another endpoint that talked to a
  peer (EP003, any other proto there, however many peers), a listener (EP004,
  AUTH_LISTEN);
* when its closure completes: the ``classify_done`` of its
  ALE_ENDPOINT_CLOSURE classify, or the ``complete_classify`` of the classify
  handle acquired and pended in that classify.

A missing closure is reported at the release when there is one, otherwise at
the end of the trace; a missing release at the end of the trace. After that
point only a bounded *tombstone* of the endpoint is kept, for EP005/EP006:
so that a second closure or release, or a stray classify of a dead endpoint,
is still recognised, and a ``parent`` can name an endpoint seen before.

A classify that delivers the same indication to another callout (a second
closure, release or assignment classify whose ``callout`` differs from every
callout that got it already) is the same indication, not a second one.

The driver's per-endpoint obligations (EP007-EP009) live in
:mod:`harness.contract.ep_resources`; this monitor tells them when a closure
completes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

from harness.contract.base import Sink, handle
from harness.contract.ep_resources import EndpointResources, Handle
from harness.trace.events import Event, layer_family
from harness.trace.status import succeeded

# Layer codes: the ALE layers that matter for endpoint identity.
_OTHER, _ASSIGN, _RELEASE, _CLOSURE, _CONNECT, _ACCEPT, _LISTEN = range(7)
_FAMILY_CODES = {
    "ALE_RESOURCE_ASSIGNMENT": _ASSIGN,
    "ALE_RESOURCE_RELEASE": _RELEASE,
    "ALE_ENDPOINT_CLOSURE": _CLOSURE,
    "ALE_AUTH_CONNECT": _CONNECT,
    "ALE_AUTH_RECV_ACCEPT": _ACCEPT,
    "ALE_AUTH_LISTEN": _LISTEN,
}
_codes: dict[object, int] = {None: _OTHER}
_SELF_INJECTED = ("self", "prev_self")
_CLOSURE_RULE_TEXT = {
    "EP002": "TCP connection",
    "EP003": "non-TCP endpoint",
    "EP004": "TCP listener",
}

#: Tombstones of finished endpoints kept for EP005/EP006 (oldest dropped first).
GONE_LIMIT = 1 << 16


def _layer_code(layer: object) -> int:
    code = _codes.get(layer)
    if code is None:
        code = _FAMILY_CODES.get(layer_family(layer), _OTHER) if isinstance(layer, str) else _OTHER
        if len(_codes) < 4096:
            _codes[layer] = code
    return code


def _is_birth(code: int, ev: Event) -> bool:
    """Whether a classify introduces an endpoint (rather than revisiting one)."""
    if code == _ASSIGN:
        return True
    if code >= _CONNECT:
        return not ev.get("reauth") and ev.get("injection") not in _SELF_INJECTED
    return False


def _another_callout(seen: set[Handle] | None, ev: Event) -> bool:
    """True (and remembered) when ``ev`` delivers an indication to a new callout."""
    callout = ev.get("callout")
    if callout is None or seen is None or callout in seen:
        return False
    seen.add(callout)
    return True


def _callouts(ev: Event) -> set[Handle] | None:
    callout = ev.get("callout")
    return None if callout is None else {callout}


class _Endpoint:
    """One endpoint behind a handle; every field is a seq or None unless noted."""

    __slots__ = (
        "assign_callouts",
        "assigned",
        "birth",
        "closed",
        "closure",
        "closure_callouts",
        "first",
        "handle",
        "parent",
        "proto",
        "release_callouts",
        "released",
        "rule",
        "unobserved",
    )

    def __init__(self, endpoint: Handle, seq: int) -> None:
        self.handle = endpoint
        self.first = seq
        self.rule: str | None = None  # EP002/EP003/EP004: the closure it owes
        self.birth: int | None = None  # the classify that created that obligation
        self.proto: str | None = None
        self.parent: Handle = None
        self.assigned: int | None = None
        self.assign_callouts: set[Handle] | None = None
        self.closure: int | None = None  # first closure classify
        self.closure_callouts: set[Handle] | None = None
        self.closed: int | None = None  # where the closure completed
        self.released: int | None = None
        self.release_callouts: set[Handle] | None = None
        #: the callouts that would see its closure or release were unregistered
        #: while it lived: the engine cannot indicate them, so none is owed
        self.unobserved = False

    def closure_rule(self) -> str | None:
        """The rule a second closure breaks: the endpoint's own, else by protocol."""
        if self.rule is not None:
            return self.rule
        if self.proto is not None and self.proto != "tcp":
            return "EP003"
        return None


class _Closure:
    """An ALE_ENDPOINT_CLOSURE classify in progress (or pended)."""

    __slots__ = ("done", "endpoint", "pended", "seq")

    def __init__(self, endpoint: _Endpoint, seq: int) -> None:
        self.endpoint = endpoint
        self.seq = seq
        self.pended = False
        self.done = False


class EndpointMonitor(EndpointResources):
    """Endpoint identity, closure and release (EP001-EP006) plus EP007-EP009."""

    RULES: ClassVar[tuple[str, ...]] = (
        "EP001",
        "EP002",
        "EP003",
        "EP004",
        "EP005",
        "EP006",
        "EP007",
        "EP008",
        "EP009",
    )

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self._live: dict[Handle, _Endpoint] = {}
        self._gone: OrderedDict[Handle, _Endpoint] = OrderedDict()
        #: closure classifies still running: classify id -> closure
        self._closures: dict[Handle, _Closure] = {}
        #: classify handles acquired in a running closure classify: handle -> id
        self._acquired: dict[Handle, Handle] = {}
        #: pended closures: classify handle -> closure
        self._pending: dict[Handle, _Closure] = {}
        #: callouts seen at the closure and release layers
        self._lifetime_callouts: set[Handle] = set()
        #: those of them unregistered now (while any is, new endpoints are unobserved)
        self._unregistered: set[Handle] = set()

    # -- classify ------------------------------------------------------------

    def on_classify(self, ev: Event) -> None:
        endpoint = ev.get("endpoint")
        if endpoint is None:
            return
        cid = ev.get("id")
        if cid is not None:
            self._open[cid] = endpoint
        layer = ev.get("layer")
        code = _codes.get(layer)
        if code is None:
            code = _layer_code(layer)
        if code in (_CLOSURE, _RELEASE):
            self._lifetime_callouts.add(ev.get("callout"))
        st = self._live.get(endpoint)
        if st is None:
            st = self._arrive(endpoint, ev, code)
            if st is None:
                return
            if self._unregistered:
                st.unobserved = True
        elif st.closed is not None:
            self._after_closure(st, ev, code)
            return
        if code != _OTHER:
            st = self._apply(st, ev, code)
            if st is None:
                return
        parent = ev.get("parent")
        if parent is not None and parent != st.parent:
            self._check_parent(st, parent, ev["seq"])

    def _arrive(self, endpoint: Handle, ev: Event, code: int) -> _Endpoint | None:
        """A classify names a handle with no live endpoint: a new one, or a dead one's."""
        seq: int = ev["seq"]
        tomb = self._gone.get(endpoint)
        if tomb is not None:
            if not _is_birth(code, ev):
                self._after_gone(tomb, ev, code)
                return None
            del self._gone[endpoint]
        if code == _RELEASE:
            self.touch("EP001")
            self.report(
                "EP001",
                f"endpoint {handle(endpoint)} is released but was never assigned",
                seq,
            )
            return None
        self.touch("EP005")
        st = _Endpoint(endpoint, seq)
        self._live[endpoint] = st
        return st

    def _apply(self, st: _Endpoint, ev: Event, code: int) -> _Endpoint | None:
        """Learn from an ALE classify of a live, not yet closed endpoint."""
        seq: int = ev["seq"]
        if st.proto is None:
            st.proto = ev.get("proto")
        if code == _ASSIGN:
            self.touch("EP001")
            if st.assigned is None:
                st.assigned = seq
                st.assign_callouts = _callouts(ev)
            elif not _another_callout(st.assign_callouts, ev):
                self.report(
                    "EP005",
                    f"endpoint handle {handle(st.handle)} is assigned to a new endpoint "
                    f"while the endpoint assigned at seq {st.assigned} is not released",
                    st.assigned,
                    seq,
                )
                st = self._replace(st, ev)
        elif code == _RELEASE:
            self._release(st, ev)
            return None
        elif code == _CLOSURE:
            self._closure(st, ev)
        elif st.rule is None and _is_birth(code, ev):
            if code == _LISTEN:
                rule: str | None = "EP004"
            else:
                proto = ev.get("proto")
                rule = None if proto is None else "EP002" if proto == "tcp" else "EP003"
            if rule is not None:
                st.rule = rule
                st.birth = seq
                self.touch(rule)
        return st

    def _replace(self, old: _Endpoint, ev: Event) -> _Endpoint:
        """A new assignment took over a live handle: follow the new endpoint from now on."""
        st = _Endpoint(old.handle, ev["seq"])
        st.assigned = ev["seq"]
        st.assign_callouts = _callouts(ev)
        st.proto = ev.get("proto")
        self._live[old.handle] = st
        return st

    def _check_parent(self, st: _Endpoint, parent: Handle, seq: int) -> None:
        st.parent = parent
        self.touch("EP005")
        if parent != st.handle and parent not in self._live and parent not in self._gone:
            self.report(
                "EP005",
                f"endpoint {handle(st.handle)} names parent {handle(parent)}, "
                f"an endpoint not seen before",
                seq,
            )

    def _closure(self, st: _Endpoint, ev: Event) -> None:
        seq: int = ev["seq"]
        if st.closure is None:
            st.closure = seq
            st.closure_callouts = _callouts(ev)
            cid = ev.get("id")
            if cid is not None:
                self._closures[cid] = _Closure(st, seq)
        elif not _another_callout(st.closure_callouts, ev):
            self._second_closure(st, seq)

    def _second_closure(self, st: _Endpoint, seq: int) -> None:
        rule = st.closure_rule()
        if rule is not None:
            self.report(
                rule,
                f"{_CLOSURE_RULE_TEXT[rule]} {handle(st.handle)} gets a second "
                f"ALE_ENDPOINT_CLOSURE",
                st.closure,
                seq,
            )

    def _after_closure(self, st: _Endpoint, ev: Event, code: int) -> None:
        """A classify names an endpoint whose closure completed; it awaits its release."""
        if code == _RELEASE:
            self._release(st, ev)
            return
        if code == _CLOSURE and _another_callout(st.closure_callouts, ev):
            return
        seq: int = ev["seq"]
        self._stray(st, ev, seq)
        if code == _CLOSURE:
            self._second_closure(st, seq)
        elif _is_birth(code, ev):
            self.report(
                "EP005",
                f"endpoint handle {handle(st.handle)} is given to a new endpoint at "
                f"{ev.get('layer')} before the release of the endpoint assigned at seq "
                f"{st.assigned}",
                st.assigned,
                seq,
            )
            if code == _ASSIGN:
                self._replace(st, ev)

    def _after_gone(self, tomb: _Endpoint, ev: Event, code: int) -> None:
        """A classify that introduces nothing names a finished endpoint."""
        seq: int = ev["seq"]
        if code == _RELEASE:
            self.touch("EP001")
            if tomb.released is None:
                self.report(
                    "EP001",
                    f"endpoint {handle(tomb.handle)} is released but was never assigned",
                    seq,
                )
            elif not _another_callout(tomb.release_callouts, ev):
                self.report(
                    "EP001",
                    f"endpoint {handle(tomb.handle)} is released a second time",
                    tomb.released,
                    seq,
                )
            return
        if tomb.closed is None:
            # Released before any closure completed: that was reported at the release.
            return
        if code == _CLOSURE and _another_callout(tomb.closure_callouts, ev):
            return
        self._stray(tomb, ev, seq)
        if code == _CLOSURE:
            self._second_closure(tomb, seq)

    def _stray(self, st: _Endpoint, ev: Event, seq: int) -> None:
        self.report(
            "EP006",
            f"endpoint {handle(st.handle)} is classified at {ev.get('layer')} after its "
            f"closure completed (seq {st.closed})",
            st.closure,
            seq,
        )

    def _release(self, st: _Endpoint, ev: Event) -> None:
        seq: int = ev["seq"]
        self.touch("EP001")
        if st.assigned is None:
            self.report(
                "EP001",
                f"endpoint {handle(st.handle)} is released but was never assigned",
                seq,
            )
            return
        if st.rule is not None and st.closure is None and not st.unobserved:
            self.report(
                st.rule,
                f"{_CLOSURE_RULE_TEXT[st.rule]} {handle(st.handle)} is released without "
                f"an ALE_ENDPOINT_CLOSURE",
                st.birth,
                seq,
            )
        st.released = seq
        st.release_callouts = _callouts(ev)
        del self._live[st.handle]
        self._bury(st)
        if st.closed is None:
            self._forget_endpoint(st.handle)

    def _bury(self, st: _Endpoint) -> None:
        gone = self._gone
        gone[st.handle] = st
        if len(gone) > GONE_LIMIT:
            gone.popitem(last=False)

    # -- closure completion --------------------------------------------------

    def on_classify_done(self, ev: Event) -> None:
        cid = ev.get("id")
        if self._open:
            self._open.pop(cid, None)
        if self._closures:
            closure = self._closures.pop(cid, None)
            if closure is not None and not closure.pended:
                self._closure_ended(closure, ev["seq"])

    def on_acquire_classify_handle(self, ev: Event) -> None:
        cid = ev.get("id")
        if cid in self._closures and succeeded(ev.get("status")):
            self._acquired[ev.get("handle")] = cid

    def on_release_classify_handle(self, ev: Event) -> None:
        if self._acquired:
            self._acquired.pop(ev.get("handle"), None)

    def on_pend_classify(self, ev: Event) -> None:
        cid = ev.get("id")
        closure = self._closures.get(cid)
        hdl = ev.get("handle")
        if (
            closure is not None
            and hdl is not None
            and self._acquired.get(hdl) == cid
            and succeeded(ev.get("status"))
        ):
            closure.pended = True
            self._pending[hdl] = closure

    def on_complete_classify(self, ev: Event) -> None:
        if self._pending:
            closure = self._pending.pop(ev.get("handle"), None)
            if closure is not None:
                self._closure_ended(closure, ev["seq"])

    def _closure_ended(self, closure: _Closure, seq: int) -> None:
        if closure.done:
            return
        closure.done = True
        st = closure.endpoint
        st.closed = seq
        self.touch("EP006")
        if self._live.get(st.handle) is not st:
            return  # released or replaced meanwhile: its obligations were settled then
        self._closure_done(st.handle, closure.seq, closure.pended)
        if st.assigned is None:
            del self._live[st.handle]
            self._bury(st)

    def _closure_of_closed(self, endpoint: Handle) -> int | None:
        st = self._live.get(endpoint)
        if st is None:
            st = self._gone.get(endpoint)
        if st is not None and st.closed is not None:
            return st.closure
        return None

    # -- end of trace --------------------------------------------------------

    # -- unload --------------------------------------------------------------

    def on_callout_unregister(self, ev: Event) -> None:
        """A closure/release callout that is gone cannot be indicated: endpoints
        alive meanwhile owe no closure or release the trace could show."""
        callout = ev.get("callout")
        if callout in self._lifetime_callouts and succeeded(ev.get("status")):
            self._unregistered.add(callout)
            for st in self._live.values():
                st.unobserved = True

    def on_object_add(self, ev: Event) -> None:
        # An FWPM callout's key is the run-time callout's key: its layer says
        # whether unregistering it hides closures or releases.
        if ev.get("type") == "callout" and succeeded(ev.get("status")):
            family = layer_family(str(ev.get("layer", "")))
            if family in ("ALE_ENDPOINT_CLOSURE", "ALE_RESOURCE_RELEASE"):
                self._lifetime_callouts.add(ev.get("key"))

    def on_callout_register(self, ev: Event) -> None:
        if succeeded(ev.get("status")):
            self._unregistered.discard(ev.get("callout"))

    def finish(self) -> None:
        for st in self._live.values():
            if st.unobserved:
                continue
            if st.assigned is not None:
                self.report(
                    "EP001",
                    f"endpoint {handle(st.handle)} assigned at seq {st.assigned} is never released",
                    st.assigned,
                )
            if st.rule is not None and st.closure is None:
                self.report(
                    st.rule,
                    f"{_CLOSURE_RULE_TEXT[st.rule]} {handle(st.handle)} never gets an "
                    f"ALE_ENDPOINT_CLOSURE",
                    st.birth,
                )
        super().finish()


MONITORS = (EndpointMonitor,)
