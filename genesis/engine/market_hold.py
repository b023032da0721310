"""Holding new slices while the venue has no market data to trust, recorded on the execution.

The venue says so with ``MarketDataUnavailable`` (``genesis.venue.base``); the runner's
``VenueCaller`` keeps retrying the read and tells a ``MarketHold``, which appends
``SlicingHeld`` before the wait and ``SlicingResumed`` (with the held duration) once a
market read answers again, before the slice goes on. A hold is not a user pause: the state
stays ``running``, the window's end does not move, and a user pause (or the window's end)
still ends the wait (``interrupts``): the runner then decides as usual (pauses, or expires
the execution with what is left).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

import structlog

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.engine.control import Control, Desire
from genesis.venue.base import MarketDataUnavailable


class MarketHold:
    """One execution's market-data hold (the ``SlicingHold`` a ``VenueCaller`` reports to)."""

    def __init__(self, execution_id: str, venue: Any, *, load: Callable[[], Awaitable[Execution]],
                 append: Callable[[list[ev.Event]], Awaitable[Execution]], clock: Clock, control: Control,
                 log: structlog.typing.FilteringBoundLogger):
        self.execution_id, self.venue = execution_id, venue  # named in the hold's event
        self._load, self._append, self.clock, self.control, self.log = load, append, clock, control, log
        self.held = False  # a hold is recorded and not yet over (as far as this runner knows)
        self.armed = False  # the runner is deciding (not reconciling): a wait may be interrupted
        self._end_at: datetime | None = None  # the window's end when the hold was last seen
        self._nothing_sent = False  # the slice due has no child order yet: safe to decide again

    def sync(self, agg: Execution) -> None:
        """Take the recorded hold over (a restart while held: the next market read ends it)."""
        self.held = agg.held_since is not None
        self._end_at = agg.end_at if agg.windowed else None

    async def hold(self, error: MarketDataUnavailable) -> None:
        """Market data is unavailable: record the hold unless it already is (or it is over)."""
        agg = await self._load()
        self.sync(agg)
        due = agg.next_open()
        self._nothing_sent = due is None or agg.attempts_for(due.index) == 0
        if self.held or agg.state.is_terminal:
            return
        self.log.warning("slicing_held", reason=ev.HOLD_MARKET_DATA_UNAVAILABLE, symbol=error.symbol,
                         error=str(error))
        await self._append([ev.SlicingHeld(self.execution_id, self.clock.now(), ev.HOLD_MARKET_DATA_UNAVAILABLE,
                                           self.venue.name, error.symbol, str(error), round(error.down_seconds, 3))])
        self.held = True

    async def release(self) -> None:
        """A market read answered: record the end of the hold (its duration) before going on."""
        agg = await self._load()
        self.held = False
        if agg.held_since is None or agg.state.is_terminal:
            return
        now = self.clock.now()
        held_seconds = round((now - agg.held_since).total_seconds(), 3)
        self.log.info("slicing_resumed", reason=agg.hold_reason, held_seconds=held_seconds)
        await self._append([ev.SlicingResumed(self.execution_id, now, agg.hold_reason or "", held_seconds)])

    def interrupts(self) -> bool:
        """Something ends the wait before the market data is back: a request to the runner
        (pause, cancel, stop, urgency...), or the window's end (the runner expires the
        execution, the remainder recorded). Only while the runner is deciding (``armed``) and
        the slice due has sent nothing yet: a slice under way waits for the market as before."""
        if not self._interruptible():
            return False
        if self.control.wake.is_set() or self.control.desire is not Desire.RUN:
            return True
        return self._end_at is not None and self.clock.now() >= self._end_at

    async def wait(self, seconds: float) -> None:
        """Until the next try: ``seconds``, or (when ``interrupts`` may end it) less when a
        request comes or the window ends."""
        until = self.clock.now() + timedelta(seconds=seconds)
        if not self._interruptible():
            await self.clock.sleep_until(until)
            return
        if self._end_at is not None:
            until = max(self.clock.now(), min(until, self._end_at))
        await self.clock.wait_event(self.control.wake, until=until)

    def _interruptible(self) -> bool:
        return self.armed and self._nothing_sent
