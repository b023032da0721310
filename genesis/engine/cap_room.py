"""Waiting for room under the participation cap: a capped slice sends a leg only up to the cap
of the volume the market has actually traded in its interval so far, less what it filled
(``domain.twap.taker_allowance``). While that is short of what the leg wants, the slice waits
for the market to trade more, looking again when the market should have (docs/vwap.md, "The
cap against traded volume")."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Awaitable, Callable

from genesis.clock import Clock
from genesis.domain.instrument import Instrument
from genesis.domain.twap import taker_allowance

LOOK = timedelta(seconds=1)  # looks at the traded volume at least this far apart
Interval = tuple[datetime, datetime]


def next_look(start: datetime, now: datetime, traded: Decimal | None, needed_volume: Decimal) -> datetime:
    """When the market, trading at its pace since ``start``, will have traded ``needed_volume``
    (a guess of *when* to look again, never a size; at least ``LOOK`` from now)."""
    soonest = now + LOOK
    if traded is None or traded <= 0 or now <= start:
        return soonest
    return max(soonest, start + (now - start) * float(needed_volume / traded))


async def room_under_cap(*, traded_volume: Callable[[datetime, datetime], Awaitable[Decimal | None]], clock: Clock,
                         pace: Callable[[], Awaitable[None]], cap: Decimal, filled: Decimal, wanted: Decimal,
                         instrument: Instrument, interval: Interval, by: datetime,
                         forecast_volume: Decimal | None) -> Decimal:
    """How much of ``wanted`` may be sent now (``taker_allowance`` of the volume traded in
    ``interval`` so far, ``filled`` already counted), waiting until ``by`` at the latest for
    the market to trade enough. The first look is when ``forecast_volume`` (the interval's
    expected volume) says it will have; ``pace`` is awaited after every wait."""
    needed = (filled + wanted) / cap
    now = clock.now()
    if forecast_volume and forecast_volume > 0 and now < by:
        share = float(needed / forecast_volume)
        await clock.sleep_until(min(by, max(now, interval[0] + (interval[1] - interval[0]) * share)))
        await pace()
    while True:
        now = clock.now()
        traded = await traded_volume(interval[0], now)
        allowed = taker_allowance(cap, traded, filled, wanted, instrument)
        if allowed >= wanted or now >= by:
            return allowed
        await clock.sleep_until(min(by, next_look(interval[0], now, traded, needed)))
        await pace()
