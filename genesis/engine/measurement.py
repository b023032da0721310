"""Realised participation of closed slices: our fills over the market volume actually traded
in the interval each slice was sized for, recorded once every minute of it has closed.

A slice closes seconds after it starts, long before its interval's last minute has traded, so
the figure cannot be part of the slice's close. The runner records it later, as a
``SliceParticipationMeasured`` event (with the execution's next append while it runs, on its
own after the end): the projection is a replay of events like any other. The forecast the
participation cap used stays on the close event (``forecast_volume``, ``forecast_participation``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.benchmarks import interval_volume, participation
from genesis.domain.execution import Execution, SliceState
from genesis.engine.control import Control, Desire
from genesis.engine.ports import Append
from genesis.engine.window_benchmark import CandleRead

MINUTE = timedelta(minutes=1)
PUBLISH_GRACE = timedelta(seconds=2)  # a live exchange serves a closed minute's candle shortly after
VOLUME_QUANTUM = Decimal("0.00000001")
PARTICIPATION_QUANTUM = Decimal("0.000001")


def measurable_at(s: SliceState) -> datetime:
    """When the last minute ``s``'s interval touches has closed and its candle is served."""
    assert s.interval_end is not None
    floor = s.interval_end.replace(second=0, microsecond=0)
    return (floor if floor == s.interval_end else floor + MINUTE) + PUBLISH_GRACE


def next_measurable_at(agg: Execution) -> datetime | None:
    """The earliest time a slice still unmeasured can be measured (None: none is waiting)."""
    return min((measurable_at(s) for s in agg.unmeasured_slices()), default=None)


async def measure(candles: CandleRead, agg: Execution, now: datetime) -> list[ev.Event]:
    """``SliceParticipationMeasured`` for every unmeasured slice whose interval has closed by
    ``now`` (one candle read for all of them; ``candles``: a retried venue read)."""
    due = [s for s in agg.unmeasured_slices() if measurable_at(s) <= now]
    if not due:
        return []
    start = min(s.interval_start or s.interval_end for s in due)  # type: ignore[type-var]
    end = max(measurable_at(s) for s in due) - PUBLISH_GRACE
    bars = await candles(agg.symbol, start.replace(second=0, microsecond=0), end)
    out: list[ev.Event] = []
    for s in due:
        volume = None if s.interval_start is None else interval_volume(bars, s.interval_start, s.interval_end)  # type: ignore[arg-type]
        if volume is not None:
            volume = volume.quantize(VOLUME_QUANTUM)
        part = participation(s.filled_qty, volume)
        out.append(ev.SliceParticipationMeasured(
            agg.execution_id, now, s.index, volume, None if part is None else part.quantize(PARTICIPATION_QUANTUM)))
    return out


async def measure_after_end(agg: Execution, *, candles: CandleRead, control: Control, clock: Clock,
                            append: Append) -> bool:
    """One step of a runner whose execution has ended: record the realised participation of
    its last slices when their intervals have closed; True once nothing is left to record
    (the runner exits). A stop leaves them unrecorded (NULL)."""
    due = next_measurable_at(agg)
    if due is None or control.desire is Desire.STOP:
        return True
    control.wake.clear()
    now = clock.now()
    if due > now:
        await clock.wait_event(control.wake, until=due)
        return False
    await append(await measure(candles, agg, now))
    return False
