"""Rule family PI: packets, clones and injection.

The monitor follows each driver-owned packet (NBL) through its life: a
successful ``clone`` makes it live, ``inject`` puts it in flight until its
``inject_complete``, ``free_clone`` ends it. ``reference``/``dereference`` are
counted per packet. At the end of the trace whatever is still live, in flight,
referenced or owed a free is reported.

How each rule is judged:

- PI001 at ``free_clone`` (a second free, a free of a packet that was never
  successfully cloned, a free while an injection of it is in flight) and at
  the end of the trace (a clone never freed).
- PI002 at ``dereference`` (one too many) and at the end (a reference never
  dereferenced).
- PI003 at ``inject_complete`` (engine: a completion for a failed inject, a
  second completion, a completion with no inject) and at the end (engine: a
  successful inject never completed; driver: a packet whose inject failed and
  that the driver never freed with ``free_clone``).
- PI004 at ``inject``, ``complete_operation`` and ``queue`` naming a packet
  after its ``free_clone``.

Packet handles are pointers on a real target and get reused, so a packet
that is cloned anew or referenced again (a driver must reference an NBL it
keeps: the one it queues or hands to ``complete_operation``) starts a fresh
life; a freed packet only counts as freed while it is not a live clone.
Finished packets are remembered only in bounded windows of the most recent
ones (``RECENT_LIMIT``): enough to name the first free of a double free or a
use after free, without state that grows with the trace.
A call whose ``status`` is missing is neither a success nor a failure: it
creates no obligation, and what it names is not reported as unknown later.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from harness.contract.base import Monitor, Sink, handle
from harness.trace.events import Event
from harness.trace.status import succeeded

#: How many finished handles a monitor remembers (for double frees and uses
#: after free); older ones are forgotten, so memory stays bounded.
RECENT_LIMIT = 1 << 16

OK = "STATUS_SUCCESS"

K = TypeVar("K")
V = TypeVar("V")


class Window(Generic[K, V]):
    """A bounded memory of recently finished handles: two generations of plain
    dicts. Writes go to ``new``; when it reaches ``limit`` it becomes ``old``
    and the generation before is dropped, so at least the ``limit`` most recent
    entries are kept, in O(1) per write. Hot paths read ``new``/``old`` directly.
    """

    __slots__ = ("limit", "new", "old")

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self.limit = limit
        self.new: dict[K, V] = {}
        self.old: dict[K, V] = {}

    def put(self, key: K, value: V) -> None:
        new = self.new
        new[key] = value
        if len(new) >= self.limit:
            self.old = new
            self.new = {}

    def get(self, key: K) -> V | None:
        value = self.new.get(key)
        return self.old.get(key) if value is None else value

    def pop(self, key: K) -> V | None:
        value = self.new.pop(key, None)
        old = self.old.pop(key, None)
        return old if value is None else value

    def __contains__(self, key: object) -> bool:
        return key in self.new or key in self.old

    def __bool__(self) -> bool:
        return bool(self.new) or bool(self.old)


class PacketMonitor(Monitor):
    """Clones, references and injections of packets (PI001-PI004).

    State: live clones, in-flight injects, outstanding references and
    failed injects awaiting the driver's free, all keyed by packet; plus
    bounded windows of recently freed packets and finished injections.
    Applicability is noted in flags on the hot path and touched at the end.
    """

    RULES = ("PI001", "PI002", "PI003", "PI004")

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        # packet -> (clone seq, status known): live clones
        self._clones: dict[object, tuple[int, bool]] = {}
        # packet -> seq of its free_clone (bounded window)
        self._freed: Window[object, int] = Window()
        # packet -> seqs of successful injects not yet completed, oldest first
        self._inflight: dict[object, list[int]] = {}
        # packet -> (inject seq, inject_complete seq) of its last completed inject
        self._completed: Window[object, tuple[int, int]] = Window()
        # packet -> seq of an inject that failed (bounded window, engine side)
        self._failed: Window[object, int] = Window()
        # packet -> seq of a failed inject whose packet the driver must still free
        self._owed_free: dict[object, int] = {}
        # packet -> seqs of references not yet dereferenced
        self._refs: dict[object, list[int]] = {}
        # packet -> seq of its last matched dereference (bounded window)
        self._derefs: Window[object, int] = Window()
        self._seen_clone = self._seen_ref = self._seen_inject = self._seen_use = False

    def on_clone(self, ev: Event) -> None:
        packet = ev.get("packet")
        status = ev.get("status")
        if packet is None or (status != OK and status is not None and not succeeded(status)):
            return
        self._seen_clone = True
        seq = ev["seq"]
        clones = self._clones
        old = clones.get(packet)
        if old is not None and old[1] and status is not None:
            self.report(
                "PI001",
                f"clone returned packet {handle(packet)} while the clone of it made at seq "
                f"{old[0]} was never freed",
                old[0], seq,
            )
        clones[packet] = (seq, status is not None)

    # -- PI001: free exactly once, never while an injection is in flight ------

    def on_free_clone(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is None:
            return
        self._seen_clone = self._seen_use = True
        seq = ev["seq"]
        if self._inflight:
            flying = self._inflight.get(packet)
            if flying:
                self.report(
                    "PI001",
                    f"packet {handle(packet)} freed while its inject at seq {flying[0]} "
                    "had not completed",
                    flying[0], seq,
                )
        if self._owed_free:
            self._owed_free.pop(packet, None)
        freed = self._freed
        if self._clones.pop(packet, None) is not None:
            freed.put(packet, seq)
            return
        first = freed.get(packet)
        if first is not None:
            self.report(
                "PI001",
                f"packet {handle(packet)} freed twice (first free_clone at seq {first})",
                first, seq,
            )
        else:
            self.report(
                "PI001",
                f"free_clone of packet {handle(packet)}, which was never successfully cloned",
                seq,
            )
            freed.put(packet, seq)

    # -- PI002: one dereference per reference ---------------------------------

    def on_reference(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is None:
            return
        self._seen_ref = True
        if self._derefs.new or self._derefs.old:
            self._derefs.pop(packet)
        freed = self._freed
        if packet in freed.new or packet in freed.old:
            freed.pop(packet)  # a new NBL at a freed address
        refs = self._refs.get(packet)
        if refs is None:
            self._refs[packet] = [ev["seq"]]
        else:
            refs.append(ev["seq"])

    def on_dereference(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is None:
            return
        self._seen_ref = True
        seq = ev["seq"]
        refs = self._refs.get(packet)
        if refs:
            refs.pop(0)
            if not refs:
                del self._refs[packet]
            self._derefs.put(packet, seq)
            return
        last = self._derefs.get(packet)
        if last is not None:
            self.report(
                "PI002",
                f"packet {handle(packet)} dereferenced again after its last reference was "
                f"dereferenced at seq {last}",
                last, seq,
            )
        else:
            self.report(
                "PI002", f"dereference of packet {handle(packet)} that has no reference", seq
            )

    # -- PI003 and PI004: injection -------------------------------------------

    def _use(self, ev: Event, packet: object, what: str) -> None:
        first = self._freed.get(packet)
        if first is not None and packet not in self._clones:
            self.report(
                "PI004",
                f"{what} names packet {handle(packet)} after its free_clone at seq {first}",
                first, ev["seq"],
            )

    def on_inject(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is None:
            return
        self._seen_use = True
        seq = ev["seq"]
        freed = (packet in self._freed.new or packet in self._freed.old) and (
            packet not in self._clones
        )
        if freed:
            self._use(ev, packet, "inject")
        status = ev.get("status")
        if status is None:
            return
        self._seen_inject = True
        if status == OK or succeeded(status):
            flying = self._inflight.get(packet)
            if flying is None:
                self._inflight[packet] = [seq]
            else:
                flying.append(seq)
        else:
            self._failed.put(packet, seq)
            if not freed:
                self._owed_free[packet] = seq

    def on_inject_complete(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is None:
            return
        self._seen_inject = True
        seq = ev["seq"]
        flying = self._inflight.get(packet)
        if flying:
            inject = flying.pop(0)
            if not flying:
                del self._inflight[packet]
            self._completed.put(packet, (inject, seq))
            return
        if self._failed.new or self._failed.old:
            failed_at = self._failed.pop(packet)
            clone = self._clones.get(packet)
            if failed_at is not None and (clone is None or clone[0] < failed_at):
                self.report(
                    "PI003",
                    f"inject of packet {handle(packet)} at seq {failed_at} failed but got an "
                    "inject_complete",
                    failed_at, seq,
                )
                return
        done = self._completed.get(packet)
        clone = self._clones.get(packet)
        if done is not None and clone is not None and clone[0] > done[1]:
            done = None  # a record of the packet's previous life
        if done is not None:
            self.report(
                "PI003",
                f"inject of packet {handle(packet)} at seq {done[0]} completed twice "
                f"(first at seq {done[1]})",
                done[0], done[1], seq,
            )
        else:
            self.report(
                "PI003", f"inject_complete for packet {handle(packet)} that was not injected",
                seq,
            )

    def on_complete_operation(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is not None:
            self._seen_use = True
            if packet in self._freed:
                self._use(ev, packet, "complete_operation")

    def on_queue(self, ev: Event) -> None:
        packet = ev.get("packet")
        if packet is not None:
            self._seen_use = True
            if packet in self._freed:
                self._use(ev, packet, "queue")

    # -- end of trace ----------------------------------------------------------

    def finish(self) -> None:
        for rule, seen in (
            ("PI001", self._seen_clone), ("PI002", self._seen_ref),
            ("PI003", self._seen_inject), ("PI004", self._seen_use),
        ):
            if seen:
                self.touch(rule)
        for packet, (seq, known) in self._clones.items():
            if known:
                self.report("PI001", f"clone {handle(packet)} was never freed", seq)
        for packet, refs in self._refs.items():
            for seq in refs:
                self.report(
                    "PI002", f"reference of packet {handle(packet)} never dereferenced", seq
                )
        for packet, flying in self._inflight.items():
            for seq in flying:
                self.report(
                    "PI003",
                    f"inject of packet {handle(packet)} succeeded but never got an "
                    "inject_complete",
                    seq,
                )
        for packet, seq in self._owed_free.items():
            self.report(
                "PI003",
                f"inject of packet {handle(packet)} failed and the driver never freed it",
                seq,
            )


MONITORS: tuple[type[Monitor], ...] = (PacketMonitor,)
