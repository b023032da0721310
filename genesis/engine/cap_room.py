"""Waiting for room under the participation cap: a capped slice sends a leg only up to the cap
of the volume the market has actually traded in its interval so far, less what it filled
(``domain.twap.taker_allowance``). While that is short of what the leg wants, the slice waits
for the market to trade more, looking again when the market should have (docs/vwap.md, "The
cap against traded volume"), or sooner: a venue that counts the tape as it trades (the trade
stream) wakes the wait the moment the interval's counted volume reaches what the leg needs
(``WakesOnTradedVolume``). The wake is only a hint to look: the leg's size is always the cap
of the volume read at the look, and the timed look stays (REST-covered stretches, a stalled
stream, venues on a virtual clock that count nothing as it trades)."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Awaitable, Callable, ContextManager

from genesis.clock import Clock
from genesis.domain.instrument import Instrument
from genesis.domain.twap import taker_allowance

LOOK = timedelta(seconds=1)  # looks at the traded volume at least this far apart
Interval = tuple[datetime, datetime]
# (interval start, volume needed) -> an event set once that much has traded; None: cannot tell
VolumeWaiter = Callable[[datetime, Decimal], ContextManager[asyncio.Event | None]]


def _no_waiter(_start: datetime, _volume: Decimal) -> ContextManager[asyncio.Event | None]:
    return nullcontext(None)


async def _wait(clock: Clock, until: datetime, reached: asyncio.Event | None) -> bool:
    """Until ``until``, or sooner once ``reached`` is set; True when woken by it."""
    if reached is None:
        await clock.sleep_until(until)
        return False
    return await clock.wait_event(reached, until) and clock.now() < until


def next_look(start: datetime, now: datetime, traded: Decimal | None, needed_volume: Decimal,
              forecast_per_second: Decimal | None = None) -> datetime:
    """When to look at the traded volume again (a guess of *when*, never a size; at least
    ``LOOK`` from now): the soonest of when the market, trading at its pace since ``start``,
    will have traded ``needed_volume``; when it will have at the forecast's pace
    (``forecast_per_second``) from what it traded so far; and ``now`` plus the time already
    waited. The count read so far is a lower bound that lags the tape (a stream delivers
    trades a little late, a lumpy tape trades in bursts): extrapolating a few early seconds
    alone can put the next look ten times further out than the market needs."""
    soonest = now + LOOK
    if traded is None or traded <= 0 or now <= start:
        return soonest  # nothing counted yet: nothing to go by
    elapsed = now - start
    guesses = [now + max(LOOK, elapsed), start + elapsed * float(needed_volume / traded)]
    if forecast_per_second is not None and forecast_per_second > 0:
        guesses.append(now + timedelta(seconds=float(max(needed_volume - traded, Decimal(0))
                                                     / forecast_per_second)))
    return max(soonest, min(guesses))


async def room_under_cap(*, traded_volume: Callable[[datetime, datetime], Awaitable[Decimal | None]], clock: Clock,
                         pace: Callable[[], Awaitable[None]], cap: Decimal, filled: Decimal, wanted: Decimal,
                         instrument: Instrument, interval: Interval, by: datetime,
                         forecast_volume: Decimal | None, waiter: VolumeWaiter = _no_waiter) -> Decimal:
    """How much of ``wanted`` may be sent now (``taker_allowance`` of the volume traded in
    ``interval`` so far, ``filled`` already counted), waiting until ``by`` at the latest for
    the market to trade enough. The first look is when ``forecast_volume`` (the interval's
    expected volume) says it will have; ``pace`` is awaited after every wait. ``waiter``: the
    venue's wake once the volume needed has traded since the interval's start (each wait ends
    at it or at its timed look, whichever comes first)."""
    needed = (filled + wanted) / cap
    now = clock.now()
    seconds = (interval[1] - interval[0]).total_seconds()
    rate = forecast_volume / Decimal(str(seconds)) if forecast_volume and seconds > 0 else None
    woken = False
    if forecast_volume and forecast_volume > 0 and now < by:
        share = float(needed / forecast_volume)
        with waiter(interval[0], needed) as reached:
            woken = await _wait(clock, min(by, max(now, interval[0] + (interval[1] - interval[0]) * share)),
                                reached)
        await pace()
    while True:
        now = clock.now()
        traded = await traded_volume(interval[0], now)
        allowed = taker_allowance(cap, traded, filled, wanted, instrument)
        if allowed >= wanted or now >= by:
            return allowed
        look = min(by, next_look(interval[0], now, traded, needed, rate))
        # woken, yet the read is short (the count and the read disagree): the waiter would wake
        # at once again, so this wait is the timer's alone (one look per LOOK at most)
        with nullcontext(None) if woken else waiter(interval[0], needed) as reached:
            woken = await _wait(clock, look, reached)
        await pace()
