"""Rule family ST: out-of-band processing at the stream layers.

At STREAM_V4/STREAM_V6 a classify carries the flow and the indicated stream
data (``packet``). A segment is handled *out of band* when, inside its
classify, the callout clones it (a ``clone`` whose ``of`` is the classify's
``packet``, between the classify and its ``classify_done``) and the classify
returns ``absorb``. Its clone is then *pending* until it is injected (an
``inject`` of the clone that did not fail) or freed without injection (the
data is dropped, so nothing of it can arrive out of order any more).

How each rule is judged:

- ST001 at the ``classify_done`` of a stream segment: when its flow has
  pending out-of-band data, the segment must itself be cloned and absorbed.
  Evidence: the classify of the oldest pending segment and the classify of
  the segment handled inline.
- ST002 at the ``inject`` of a pending clone: every clone of that flow whose
  original was indicated earlier must already be injected (or dropped).
  Evidence: the classify of the earlier segment still pending, the classify
  of the injected one, and the inject.

Classifies of self-injected data (``injection`` self or prev_self) are the
callout's own reinjected data coming back: handling it inline is correct, so
they are ignored; so are classifies without the right to write the action
(``rights`` false on entry), where PC013 forbids the absorb ST001 would ask
for. A clone that failed does not count, a ``classify_done`` without
``absorb`` is not judged, and an inject whose status is missing counts as an
injection. A flow is forgotten as soon as it has nothing pending.
"""

from __future__ import annotations

from collections import deque

from harness.contract.base import Monitor, Sink, handle
from harness.trace.events import Event
from harness.trace.status import succeeded

STREAM_LAYERS = frozenset({"STREAM_V4", "STREAM_V6"})
_SELF_INJECTED = frozenset({"self", "prev_self"})
OK = "STATUS_SUCCESS"

#: A pending clone: (clone, flow, seq of the classify that indicated its original).
#: It is done (injected or dropped) once ``_clones`` no longer maps it to itself.
Entry = tuple[object, object, int]


class StreamMonitor(Monitor):
    """Inline versus out-of-band handling and injection order per flow (ST001, ST002).

    State: the stream classifies in progress (id -> classify event, the
    indicated data -> id, id -> clones made of it), and for each flow with
    pending out-of-band data the pending clones in the order their originals
    were indicated; an entry injected or dropped out of order stays in its
    queue until it reaches the head. Flows with nothing pending are dropped.
    """

    RULES = ("ST001", "ST002")

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self._running: dict[object, Event] = {}
        self._by_data: dict[object, object] = {}
        self._cloned: dict[object, list[object]] = {}
        self._flows: dict[object, deque[Entry]] = {}
        self._clones: dict[object, Entry] = {}
        self._seen_segment = self._seen_inject = False

    def on_classify(self, ev: Event) -> None:
        if (
            ev.get("layer") not in STREAM_LAYERS
            or ev.get("injection") in _SELF_INJECTED
            or ev.get("rights") is False
        ):
            return
        cid = ev.get("id")
        data = ev.get("packet")
        if cid is None or data is None or ev.get("flow") is None:
            return
        self._seen_segment = True
        self._running[cid] = ev
        self._by_data[data] = cid

    def on_clone(self, ev: Event) -> None:
        if not self._by_data:
            return
        cid = self._by_data.get(ev.get("of"))
        clone = ev.get("packet")
        if cid is None or clone is None:
            return
        status = ev.get("status")
        if status is None or status == OK or succeeded(status):
            clones = self._cloned.get(cid)
            if clones is None:
                self._cloned[cid] = [clone]
            else:
                clones.append(clone)

    def _trim(self, flow: object, queue: deque[Entry]) -> Entry | None:
        """Drop done entries from the head of ``flow``'s queue; the oldest pending one."""
        clones = self._clones
        while queue:
            head = queue[0]
            if clones.get(head[0]) is head:
                return head
            queue.popleft()
        del self._flows[flow]
        return None

    def on_classify_done(self, ev: Event) -> None:
        if not self._running:
            return
        cid = ev.get("id")
        start = self._running.pop(cid, None)
        if start is None:
            return
        data = start["packet"]
        self._by_data.pop(data, None)
        clones = self._cloned.pop(cid, None) if self._cloned else None
        absorb = ev.get("absorb")
        if absorb is None:
            return
        flow = start["flow"]
        seq = start["seq"]
        queue = self._flows.get(flow)
        out_of_band = absorb and clones
        if queue is not None:
            head = self._trim(flow, queue)
            if head is not None and not out_of_band:
                how = "absorbed without a clone" if absorb else (
                    "cloned but not absorbed" if clones else "handled inline"
                )
                self.report(
                    "ST001",
                    f"flow {handle(flow)}: segment {handle(data)} {how} while out-of-band "
                    f"data {handle(head[0])} of the flow is not yet injected",
                    head[2], seq,
                )
        if out_of_band and clones:
            queue = self._flows.get(flow)
            if queue is None:
                queue = self._flows[flow] = deque()
            for clone in clones:
                entry = (clone, flow, seq)
                queue.append(entry)
                self._clones[clone] = entry

    def on_inject(self, ev: Event) -> None:
        if ev.get("kind") == "stream":
            self._seen_inject = True
        clones = self._clones
        if not clones:
            return
        clone = ev.get("packet")
        entry = clones.get(clone)
        if entry is None:
            return
        status = ev.get("status")
        if status is not None and status != OK and not succeeded(status):
            return
        self._seen_inject = True
        flow = entry[1]
        queue = self._flows[flow]
        if queue[0] is not entry:
            head = self._trim(flow, queue)  # ``entry`` is still pending: never None
            if head is not entry and head is not None:
                self.report(
                    "ST002",
                    f"flow {handle(flow)}: clone {handle(clone)} injected before clone "
                    f"{handle(head[0])}, whose data was indicated earlier",
                    head[2], entry[2], ev["seq"],
                )
        del clones[clone]
        if queue[0] is entry:  # injected in order: the common case
            queue.popleft()
            if not queue:
                del self._flows[flow]
                return
        self._trim(flow, queue)

    def on_free_clone(self, ev: Event) -> None:
        if not self._clones:
            return
        entry = self._clones.pop(ev.get("packet"), None)
        if entry is not None:
            self._trim(entry[1], self._flows[entry[1]])

    def finish(self) -> None:
        if self._seen_segment:
            self.touch("ST001")
        if self._seen_inject:
            self.touch("ST002")


MONITORS: tuple[type[Monitor], ...] = (StreamMonitor,)
