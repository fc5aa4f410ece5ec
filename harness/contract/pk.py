"""Rule family PK: pending a classification with a classify handle.

A callout that pends a classification (FwpsPendClassify0) first acquires a
classify handle (FwpsAcquireClassifyHandle0), later completes the pended
classification on that handle (FwpsCompleteClassify0) and then releases the
handle (FwpsReleaseClassifyHandle0). The monitors follow each handle through
that life and forget it at its release.

How each rule is judged:

- PK001 at ``release_classify_handle`` (a second release, or a release of a
  handle that was never acquired) and at a successful acquire that returns a
  handle still held (the earlier acquisition was never released); at the end
  of the trace every handle still held is reported.
- PK002 at ``release_classify_handle`` (a pend not completed before the
  release of its handle; a pend is reported once), at ``complete_classify``
  (a second completion, a completion after the handle's release, a
  completion of a handle that has no successful pend) and at the end of the
  trace (a pend never completed on a handle never released).
- PK003 at ``pend_classify``: judged from the layer of the classify named by
  its ``id`` (a pend_classify naming no recent classify is skipped).

A call whose ``status`` is missing creates no obligation, and later calls on
its handle are not reported as naming an unknown handle.
"""

from __future__ import annotations

from harness.contract.base import Monitor, Sink, handle
from harness.contract.pi import Window
from harness.trace.events import Event
from harness.trace.status import succeeded

#: Layers where FwpsPendClassify0 may succeed (ALE endpoint lifetime; DDI FwpsPendClassify0).
PENDABLE_LAYERS = frozenset(
    f"{family}_{v}"
    for family in ("ALE_ENDPOINT_CLOSURE", "ALE_CONNECT_REDIRECT", "ALE_BIND_REDIRECT")
    for v in ("V4", "V6")
)
CANNOT_PEND = "STATUS_FWP_CANNOT_PEND"

#: A pend_classify is made inside its classify, so the classify it names is
#: among the most recent ones: PK003 looks it up in two generations of this
#: many classifies instead of following every classify_done.
RUNNING_LIMIT = 4096


class ClassifyHandleMonitor(Monitor):
    """Acquire and release of classify handles (PK001).

    State: the handles currently held (handle -> acquire seq), and a bounded
    window of recently released handles to name the first of two releases.
    """

    RULES = ("PK001",)

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        # handle -> (acquire seq, status known)
        self._held: dict[object, tuple[int, bool]] = {}
        self._released: Window[object, int] = Window()

    def on_acquire_classify_handle(self, ev: Event) -> None:
        h = ev.get("handle")
        if h is None:
            return
        self.touch("PK001")
        status = ev.get("status")
        if status is not None and not succeeded(status):
            return
        seq = ev["seq"]
        old = self._held.get(h)
        if old is not None and old[1] and status is not None:
            self.report(
                "PK001",
                f"classify handle {handle(h)} acquired again while its acquisition at seq "
                f"{old[0]} was never released",
                old[0], seq,
            )
        self._released.pop(h)
        self._held[h] = (seq, status is not None)

    def on_release_classify_handle(self, ev: Event) -> None:
        h = ev.get("handle")
        if h is None:
            return
        self.touch("PK001")
        seq = ev["seq"]
        if self._held.pop(h, None) is not None:
            self._released.put(h, seq)
            return
        first = self._released.get(h)
        if first is not None:
            self.report(
                "PK001",
                f"classify handle {handle(h)} released twice (first release at seq {first})",
                first, seq,
            )
        else:
            self.report(
                "PK001", f"release of classify handle {handle(h)} that was never acquired", seq
            )
            self._released.put(h, seq)

    def finish(self) -> None:
        for h, (seq, known) in self._held.items():
            if known:
                self.report("PK001", f"classify handle {handle(h)} was never released", seq)


class PendClassifyMonitor(Monitor):
    """pend_classify and complete_classify on classify handles (PK002, PK003).

    State: the most recent classifies (id -> classify event, for PK003's
    layer; see ``RUNNING_LIMIT``), the pends not yet completed (handle ->
    (pend seq, status known)), and bounded windows of handles completed but not yet released and of
    recently released handles, to name the first of two completions and a
    completion that comes after the release.
    """

    RULES = ("PK002", "PK003")

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self._running: dict[object, Event] = {}
        self._running_old: dict[object, Event] = {}
        self._open: dict[object, tuple[int, bool]] = {}
        self._completed: Window[object, int] = Window()
        self._released: Window[object, int] = Window()

    def on_classify(self, ev: Event) -> None:
        running = self._running
        running[ev.get("id")] = ev
        if len(running) >= RUNNING_LIMIT:
            self._running_old = running
            self._running = {}

    def _classify(self, cid: object) -> Event | None:
        classify = self._running.get(cid)
        return self._running_old.get(cid) if classify is None else classify

    def on_pend_classify(self, ev: Event) -> None:
        h = ev.get("handle")
        status = ev.get("status")
        seq = ev["seq"]
        classify = self._classify(ev.get("id"))
        if classify is not None and status is not None and "layer" in classify:
            self.touch("PK003")
            layer = classify["layer"]
            if layer not in PENDABLE_LAYERS and status != CANNOT_PEND:
                self.report(
                    "PK003",
                    f"pend_classify on handle {handle(h)} at {layer} returned {status}, "
                    f"not {CANNOT_PEND}",
                    classify["seq"], seq,
                )
        if h is None or (status is not None and not succeeded(status)):
            return
        self.touch("PK002")
        if h in self._open:
            return  # still pended: one completion answers both
        self._completed.pop(h)
        self._released.pop(h)
        self._open[h] = (seq, status is not None)

    def on_complete_classify(self, ev: Event) -> None:
        h = ev.get("handle")
        if h is None:
            return
        self.touch("PK002")
        seq = ev["seq"]
        if self._open.pop(h, None) is not None:
            self._completed.put(h, seq)
            return
        first = self._completed.get(h)
        released = self._released.get(h)
        if first is not None:
            self.report(
                "PK002",
                f"pended classification on handle {handle(h)} completed twice "
                f"(first complete_classify at seq {first})",
                first, seq,
            )
        elif released is not None:
            self.report(
                "PK002",
                f"complete_classify on handle {handle(h)} after its release at seq {released}",
                released, seq,
            )
        else:
            self.report(
                "PK002",
                f"complete_classify on handle {handle(h)} that has no successful pend_classify",
                seq,
            )

    def on_release_classify_handle(self, ev: Event) -> None:
        h = ev.get("handle")
        if h is None:
            return
        seq = ev["seq"]
        pend = self._open.pop(h, None)
        if pend is not None and pend[1]:
            self.report(
                "PK002",
                f"pend_classify on handle {handle(h)} was not completed before the handle "
                f"was released",
                pend[0], seq,
            )
        if pend is not None or self._completed.pop(h) is not None:
            self._released.put(h, seq)

    def finish(self) -> None:
        for h, (seq, known) in self._open.items():
            if known:
                self.report(
                    "PK002", f"pend_classify on handle {handle(h)} was never completed", seq
                )


MONITORS: tuple[type[Monitor], ...] = (ClassifyHandleMonitor, PendClassifyMonitor)
