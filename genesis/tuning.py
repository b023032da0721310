"""Scheduling tuning, in one place: what the daemon does to keep its event loop responsive
under load, each piece kept because ``make bench`` shows it pays (docs/performance.md).

``Tuning`` holds the numbers; the wiring (``genesis.runtime.wiring``) hands its pieces to the
components that use them: the runners' shared ``LoopPacer`` (the supervisor), the store
writer's ``Slot`` (the event store), and the process-wide settings (``apply_to_process``: the
garbage collector, the interpreter's thread switch interval) that the daemon and the engine
bench apply once start-up is done. ``NO_TUNING`` turns every piece off (benchmarks compare).

The loop pacer: bounded work per event-loop iteration when many runners wake at once.
Bounded work per event-loop iteration when many runners wake at once.

asyncio runs every callback that is ready when an iteration starts before it looks at timers
and I/O again. A group commit that settles 500 appends, or 500 slices due at the same
instant, therefore makes one iteration as long as 500 runner steps, and every timer, socket
and signal in the daemon waits that long. Runners call ``await pacer.turn()`` before each
stretch of CPU work (a step, the work after a commit). While the loop is quiet a turn goes
straight through. Once the turns of one iteration have used the budget, later ones queue and
the pacer releases them in the following iterations, first come first served, as many as
fit in what the iteration leaves: ``budget_seconds`` is a target for the whole iteration, so
when other work (the store's writer) took part of it the runners get less, never less than a
quarter of it.

The order in which runners act is unchanged: the queue is FIFO and, while it or a released
batch is pending, newcomers join its end. Only how many act per iteration is bounded, so a
run on the discrete-event clock gives the same events with or without pacing.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tuning:
    """``loop_budget_seconds``: the runners' share of one loop iteration (``LoopPacer``; 0: no
    pacing). ``writer_slot_seconds``: the store writer's work per iteration before it yields
    (``Slot``; None: it never yields inside a chunk). ``gc_thresholds``: the collector's
    thresholds set after start-up, with what start-up allocated frozen (None: Python's own,
    nothing frozen). ``switch_interval_seconds``: how often a thread hands the GIL over (None:
    Python's 5 ms)."""

    loop_budget_seconds: float = 0.001
    writer_slot_seconds: float | None = 0.0005
    gc_thresholds: tuple[int, int, int] | None = (400, 3, 300)
    switch_interval_seconds: float | None = 0.001

    def pacer(self) -> "LoopPacer":
        """A pacer for the runners of one supervisor (they share it)."""
        return LoopPacer(self.loop_budget_seconds)

    def slot(self) -> "Slot":
        """A fresh slot for one stretch of the store writer's work."""
        return Slot(self.writer_slot_seconds)

    def apply_to_process(self) -> None:
        """The process-wide settings; call once start-up is done (modules, config, market data
        loaded), before executions run: frozen objects are never collected."""
        if self.switch_interval_seconds is not None:
            sys.setswitchinterval(self.switch_interval_seconds)
        if self.gc_thresholds is not None:
            settle_heap(self.gc_thresholds)


DEFAULT_TUNING = Tuning()
NO_TUNING = Tuning(loop_budget_seconds=0, writer_slot_seconds=None, gc_thresholds=None,
                   switch_interval_seconds=None)


class LoopPacer:
    """Shared by the runners of one supervisor. ``budget_seconds`` <= 0: no pacing."""

    def __init__(self, budget_seconds: float):
        self.budget_seconds = budget_seconds
        self._queue: deque[asyncio.Future[None]] = deque()
        self._deferred: list[asyncio.Future[None]] = []  # released but over budget: first next time
        self._opened: float | None = None  # when this iteration's first unqueued turn went through
        self._tick_scheduled = False
        self._last_tick: float | None = None  # while pacing: one tick per iteration
        self._in_flight = 0  # released turns not resumed yet: newcomers queue behind them
        self._proceeded = 0  # released turns that went on in this iteration
        self._batch_started: float | None = None  # when the first of them resumed
        self._allowed = budget_seconds  # runner time allowed in the current iteration
        self._turn_seconds = budget_seconds / 8  # running estimate of one turn's cost
        self._other_seconds = 0.0  # running estimate of the iteration's other work
        self.queued_turns = 0  # turns that had to wait for a later iteration (diagnostics)

    @property
    def waiting(self) -> int:
        """Turns queued or released but not resumed yet."""
        return len(self._queue) + len(self._deferred) + self._in_flight

    async def turn(self) -> None:
        """Return at once while this iteration's budget lasts, else in a later iteration."""
        if self.budget_seconds <= 0:
            return
        now = time.perf_counter()
        if not self.waiting:
            if self._opened is None:
                self._opened = now
                self._schedule_tick()
                return
            if now - self._opened < self.budget_seconds:
                return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.append(fut)
        self.queued_turns += 1
        self._schedule_tick()
        while True:
            try:
                await fut  # a cancelled waiter's future is cancelled with it: the tick skips it
            finally:
                if fut.done() and not fut.cancelled():  # released (then perhaps cancelled)
                    self._in_flight -= 1
            now = time.perf_counter()
            if self._batch_started is None:
                self._batch_started = now
            if self._proceeded == 0 or now - self._batch_started < self._allowed:
                self._proceeded += 1
                return
            # the batch released for this iteration overran: wait again, ahead of everyone
            # still queued, in the same order
            fut = loop.create_future()
            self._deferred.append(fut)

    def _schedule_tick(self) -> None:
        if not self._tick_scheduled:
            self._tick_scheduled = True
            asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        """Once per iteration while there is pacing to do: learn what the last iteration cost,
        release the next batch."""
        self._tick_scheduled = False
        now = time.perf_counter()
        batch = 0.0
        if self._proceeded and self._batch_started is not None:
            # the released turns ran right before this tick (their wake-ups were queued first)
            batch = now - self._batch_started
            per_turn = batch / self._proceeded
            # quick to learn that turns got dearer, slow to believe they got cheap
            self._turn_seconds += (per_turn - self._turn_seconds) / (2 if per_turn > self._turn_seconds else 8)
        if self._last_tick is not None:
            # while pacing the loop never sleeps: tick to tick is one busy iteration
            other = max(0.0, now - self._last_tick - batch)
            self._other_seconds += (other - self._other_seconds) / (2 if other > self._other_seconds else 8)
        self._opened, self._batch_started, self._proceeded = None, None, 0
        if self._deferred:
            self._queue.extendleft(reversed(self._deferred))
            self._deferred = []
        if not self._queue:
            self._last_tick = None
            return
        self._allowed = max(self.budget_seconds / 4, self.budget_seconds - self._other_seconds)
        n = max(1, int(self._allowed / max(self._turn_seconds, 1e-6)))
        released = 0
        while self._queue and released < n:
            fut = self._queue.popleft()
            if not fut.done():
                fut.set_result(None)
                released += 1
        self._in_flight += released
        self._last_tick = now
        self._schedule_tick()


class Slot:
    """The store writer's share of the event loop: ``share()`` returns at once while the current
    slot lasts, else yields one loop iteration first (folding, planning or settling a chunk of
    100 appends must not hold every timer and socket for milliseconds). ``seconds`` None:
    never yields."""

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._started = time.perf_counter()

    def over(self) -> bool:
        """Whether the slot has run out (a plain call, cheaper than awaiting ``share``: hot
        loops write ``if slot.over(): await slot.share()``)."""
        return self._seconds is not None and time.perf_counter() - self._started >= self._seconds

    async def share(self) -> None:
        if self._seconds is not None and time.perf_counter() - self._started >= self._seconds:
            await asyncio.sleep(0)
            self._started = time.perf_counter()


def settle_heap(thresholds: tuple[int, int, int]) -> None:
    """Garbage-collector settings for a daemon that must keep its loop responsive; call it
    once startup is done (modules, config, market data loaded), before executions run.

    Every collection stops the loop for as long as it walks its generations. A full one
    walks every tracked object: with 1,000 live parents ~250,000 and ~100 ms. Python runs one
    after every 10 collections of the middle generation (once the old one grew by 25%); here
    one in 300, and what startup allocated (modules, SQLAlchemy metadata, candle series) is
    frozen so that none walks it again. The young and middle generations are collected more
    often than Python's default, so each of those pauses stays short (engine bench at 25x:
    middle-generation pauses p99 11 ms -> 3 ms, the same total time in the collector)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
