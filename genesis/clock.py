"""Injectable clocks: the same engine code runs on the wall clock live, on a scaled clock
for accelerated simulation, and on a discrete-event virtual clock in tests and backtests.

All clocks return timezone-aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Protocol


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime (naive values are taken to be UTC)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""
        ...

    async def wait_event(self, event: asyncio.Event, until: datetime | None = None) -> bool:
        """Wait for ``event`` or for ``until`` (if given). True when the event is set."""
        ...

    def actor(self) -> "asyncio.AbstractAsyncContextManager[None]":
        """Context in which a task takes part in time: a virtual clock only advances when
        every actor is waiting on it. Real clocks ignore it."""
        ...


class WallClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    async def wait_event(self, event: asyncio.Event, until: datetime | None = None) -> bool:
        if until is None:
            await event.wait()
            return True
        delay = max(0.0, (until - self.now()).total_seconds())
        try:
            await asyncio.wait_for(event.wait(), delay)
            return True
        except TimeoutError:
            return event.is_set()

    @asynccontextmanager
    async def actor(self) -> AsyncIterator[None]:
        yield


class ScaledClock(WallClock):
    """Wall time scaled by ``speed`` from a chosen ``start``: with speed 600, 15 simulated
    minutes pass in 1.5 wall seconds. Used by ``genesis run --speed N`` on the simulated venue."""

    def __init__(self, start: datetime, speed: float = 1.0):
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._start = utc(start)
        self._speed = speed
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay / self._speed)

    async def wait_event(self, event: asyncio.Event, until: datetime | None = None) -> bool:
        if until is None:
            await event.wait()
            return True
        delay = max(0.0, (until - self.now()).total_seconds()) / self._speed
        try:
            await asyncio.wait_for(event.wait(), delay)
            return True
        except TimeoutError:
            return event.is_set()


class VirtualClock:
    """Discrete-event clock: time jumps to the earliest deadline as soon as every registered
    actor is waiting on the clock. Hours of trading run in milliseconds and the result does
    not depend on machine speed.

    Tasks that drive time (execution runners) enter ``async with clock.actor():``. Work that
    is not waiting on the clock (a database commit, a venue call) holds time still, so an
    actor never observes time passing in the middle of a step.
    """

    # Idle must hold for this many loop iterations before time jumps, so that wake-ups that
    # travel through several callbacks (an Event relayed through a task) land first.
    _SETTLE_ROUNDS = 4

    def __init__(self, start: datetime):
        self._now = utc(start)
        self._actors = 0
        self._waits: set[asyncio.Future[None]] = set()
        self._heap: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._check_scheduled = False

    def now(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        """Move time forward by hand (tests), waking every waiter that is due."""
        when = utc(when)
        if when > self._now:
            self._now = when
        self._wake_due()

    @asynccontextmanager
    async def actor(self) -> AsyncIterator[None]:
        self._actors += 1
        try:
            yield
        finally:
            self._actors -= 1
            self._schedule_check()

    async def sleep_until(self, when: datetime) -> None:
        when = utc(when)
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut = self._new_wait()
        heapq.heappush(self._heap, (when, next(self._seq), fut))
        await self._await(fut)

    async def wait_event(self, event: asyncio.Event, until: datetime | None = None) -> bool:
        if event.is_set():
            return True
        fut = self._new_wait()
        if until is not None:
            heapq.heappush(self._heap, (utc(until), next(self._seq), fut))

        async def relay() -> None:
            await event.wait()
            if not fut.done():
                fut.set_result(None)

        relay_task = asyncio.ensure_future(relay())
        try:
            await self._await(fut)
        finally:
            relay_task.cancel()
        return event.is_set()

    def _new_wait(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waits.add(fut)
        return fut

    async def _await(self, fut: asyncio.Future[None]) -> None:
        self._schedule_check()
        try:
            await fut
        finally:
            self._waits.discard(fut)
            if not fut.done():
                fut.cancel()

    def _idle(self) -> bool:
        waiting = sum(1 for f in self._waits if not f.done())
        return self._actors > 0 and waiting >= self._actors

    def _schedule_check(self) -> None:
        if not self._check_scheduled:
            self._check_scheduled = True
            asyncio.get_running_loop().call_soon(self._check, self._SETTLE_ROUNDS)

    def _check(self, rounds_left: int) -> None:
        if not self._idle():
            self._check_scheduled = False
            return
        if rounds_left > 0:
            asyncio.get_running_loop().call_soon(self._check, rounds_left - 1)
            return
        self._check_scheduled = False
        self._drop_done()
        if self._heap:
            self._now = max(self._now, self._heap[0][0])
            self._wake_due()

    def _wake_due(self) -> None:
        while self._heap and self._heap[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._heap)
            if not fut.done():
                fut.set_result(None)

    def _drop_done(self) -> None:
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)
