"""A slice's interval: the stretch it is sized for, the one it records, and its deadlines.

A slice is sized for ``[start, start + interval)``, and each leg held to the participation cap
sends only up to the cap of the volume the market traded from ``start`` to the moment it
looked (``engine.cap_room``). A slice that runs late looks after its sized end (the runner's
turn or the venue came seconds late, a 1-second interval left to a slice whose successor is
already due): the cap then counted a longer stretch than the sized one. The interval the slice
records is the stretch the cap counted, ``[start, max(sized end, last look))``, so its stored
participation (fills over the market volume in the recorded interval) is the one the cap held,
never a stub the cap did not use (docs/vwap.md, "A late slice").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Awaitable, Callable

from genesis.domain.execution import ORDER_CUTOFF, Execution

TAKER_LEAD = ORDER_CUTOFF * 2  # a maker leg near the window end gives up this long before it
Interval = tuple[datetime, datetime]
VolumeRead = Callable[[datetime, datetime], Awaitable[Decimal | None]]


class SliceInterval:
    """The interval one slice is sized for (``sized``) and records (``recorded``)."""

    def __init__(self, start: datetime, sized_end: datetime):
        self.start, self.sized_end = start, sized_end
        self.counted_until = start  # the latest moment whose traded volume a cap look read

    @property
    def sized(self) -> Interval:
        """``[start, start + interval)``: what the slice was sized for."""
        return self.start, self.sized_end

    def recorded(self) -> Interval:
        """What the slice records: the sized interval, stretched to the last cap look."""
        return self.start, max(self.sized_end, self.counted_until)

    def counting(self, read: VolumeRead) -> VolumeRead:
        """``read`` (the venue's traded volume), noting how far each read counted."""
        async def counted(start: datetime, end: datetime) -> Decimal | None:
            volume = await read(start, end)
            self.counted_until = max(self.counted_until, end)
            return volume
        return counted


def taker_by(agg: Execution, interval_end: datetime) -> datetime:
    """The latest the taker leg goes: the interval's end; inside a window, ``TAKER_LEAD``
    before the window ends."""
    if agg.windowed and agg.end_at is not None:
        return min(interval_end, agg.end_at - TAKER_LEAD)
    return interval_end


def maker_deadline(agg: Execution, now: datetime, maker_timeout_seconds: float) -> datetime:
    """When the maker leg gives up: after the maker timeout, and inside a window early enough
    (``TAKER_LEAD``) for the taker remainder to go before the window ends."""
    deadline = now + timedelta(seconds=maker_timeout_seconds)
    if agg.windowed and agg.end_at is not None:
        deadline = max(now, min(deadline, agg.end_at - TAKER_LEAD))
    return deadline
