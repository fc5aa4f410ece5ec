"""Virtual time and the engine model's scheduler.

Nothing in the engine model sleeps: work is scheduled at a virtual time and
the scheduler jumps from one due time to the next, so an hour-long BFE lock
timeout costs microseconds. Events due at the same instant run in an order
picked by a seeded RNG: one seed gives one interleaving, byte for byte, and
different seeds explore different interleavings.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from harness.errors import EngineError


class VirtualClock:
    """Seconds since the start of a run, advanced only by the scheduler."""

    __slots__ = ("now",)

    def __init__(self, start_s: float = 0.0) -> None:
        self.now = start_s

    def __call__(self) -> float:
        return self.now


class _Entry:
    """Scheduled work. The heap holds ``(due_s, tiebreak, order, entry)`` tuples:
    comparing tuples of floats is several times cheaper than ordered dataclasses,
    and the scheduler is the engine model's hottest loop."""

    __slots__ = ("action", "cancelled", "due_s", "label")

    def __init__(self, due_s: float, action: Callable[[], None], label: str = "") -> None:
        self.due_s = due_s
        self.action = action
        self.label = label
        self.cancelled = False


class Timer:
    """A handle on scheduled work, which can be cancelled before it runs."""

    __slots__ = ("_entry",)

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    def cancel(self) -> None:
        self._entry.cancelled = True

    @property
    def due_s(self) -> float:
        return self._entry.due_s

    @property
    def pending(self) -> bool:
        return not self._entry.cancelled


class Scheduler:
    """An event queue over a :class:`VirtualClock`.

    ``call_at``/``call_later`` schedule callables; ``run`` executes them in
    time order. Work due at the same time is ordered by a draw from the
    seeded RNG when ``shuffle`` is true, else in the order it was scheduled.
    """

    def __init__(self, seed: int = 0, *, shuffle: bool = True) -> None:
        self.clock = VirtualClock()
        self.rng = random.Random(seed)
        self.shuffle = shuffle
        self._queue: list[tuple[float, float, int, _Entry]] = []
        self._order = 0
        self.steps = 0

    @property
    def now(self) -> float:
        return self.clock.now

    def call_at(self, due_s: float, action: Callable[[], None], label: str = "") -> Timer:
        if due_s < self.clock.now:
            raise EngineError(
                f"cannot schedule {label or action!r} in the past ({due_s} < {self.clock.now})"
            )
        self._order += 1
        tiebreak = self.rng.random() if self.shuffle else 0.0
        entry = _Entry(due_s, action, label)
        heapq.heappush(self._queue, (due_s, tiebreak, self._order, entry))
        return Timer(entry)

    def call_later(self, delay_s: float, action: Callable[[], None], label: str = "") -> Timer:
        if delay_s < 0:
            raise EngineError(f"negative delay {delay_s} for {label or action!r}")
        return self.call_at(self.clock.now + delay_s, action, label)

    def call_soon(self, action: Callable[[], None], label: str = "") -> Timer:
        return self.call_at(self.clock.now, action, label)

    def pending(self) -> int:
        return sum(1 for item in self._queue if not item[3].cancelled)

    def run_one(self) -> bool:
        """Run the next due entry; False when the queue is empty."""
        while self._queue:
            entry = heapq.heappop(self._queue)[3]
            if entry.cancelled:
                continue
            self.clock.now = entry.due_s
            self.steps += 1
            entry.action()
            return True
        return False

    def run(self, until_s: float | None = None, max_steps: int | None = None) -> None:
        """Run until the queue is empty, ``until_s`` is reached, or ``max_steps`` ran."""
        steps = 0
        while self._queue:
            head = self._queue[0][3]
            if head.cancelled:
                heapq.heappop(self._queue)
                continue
            if until_s is not None and head.due_s > until_s:
                self.clock.now = max(self.clock.now, until_s)
                return
            if max_steps is not None and steps >= max_steps:
                return
            self.run_one()
            steps += 1
        if until_s is not None and until_s > self.clock.now:
            self.clock.now = until_s


class Future:
    """A value that a process waits for: ``result = yield future``."""

    __slots__ = ("_callbacks", "done", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: object = None
        self._callbacks: list[Callable[[object], None]] = []

    def resolve(self, value: object = None) -> None:
        if self.done:
            raise EngineError("future resolved twice")
        self.done = True
        self.value = value
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(value)

    def add_done_callback(self, callback: Callable[[object], None]) -> None:
        if self.done:
            callback(self.value)
        else:
            self._callbacks.append(callback)




def spawn(sched: Scheduler, gen: object, label: str = "") -> Future:
    """Run a generator as a process on ``sched``.

    The generator yields a delay in seconds (``yield 2.5`` sleeps), a
    :class:`Future` (its value is sent back when it resolves) or None (yield to
    other work due now). The returned future resolves with its return value.
    """
    import types

    if not isinstance(gen, types.GeneratorType):
        raise EngineError(f"spawn needs a generator, got {type(gen).__name__}")
    finished = Future()

    def step(value: object) -> None:
        try:
            request = gen.send(value)
        except StopIteration as stop:
            finished.resolve(stop.value)
            return
        if request is None:
            sched.call_soon(lambda: step(None), label)
        elif isinstance(request, Future):

            def resume(value: object) -> None:
                sched.call_soon(lambda: step(value), label)

            request.add_done_callback(resume)
        elif isinstance(request, (int, float)) and not isinstance(request, bool):
            sched.call_later(float(request), lambda: step(None), label)
        else:
            raise EngineError(
                f"process {label!r} yielded {request!r}; expected a delay or a Future"
            )

    sched.call_soon(lambda: step(None), label)
    return finished
