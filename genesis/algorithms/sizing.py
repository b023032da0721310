"""Sizing helpers shared by the scheduled algorithms (TWAP, VWAP, IS)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Callable

from genesis.domain.execution import Execution, SliceState
from genesis.domain.instrument import Instrument
from genesis.domain.schedule import next_slice_qty
from genesis.algorithms.base import SliceSizing
from genesis.domain.twap import TwapParams, cap_slice_qty, is_volume_anomaly
from genesis.engine.market_data import MINUTE, MarketData, floor_minute

ZERO = Decimal(0)


async def participation_cap_now(market: MarketData, symbol: str, now: datetime, params: TwapParams,
                                usual_volume: Callable[[datetime], Decimal | None]) -> tuple[Decimal, bool]:
    """The participation cap for a slice starting ``now``, and whether the last closed minute
    was anomalous (``is_volume_anomaly``: ``anomaly_ratio`` times above or below
    ``usual_volume`` of that minute), in which case the cap is multiplied by
    ``anomaly_participation_factor``. One rule for every capped algorithm."""
    cap = params.participation_cap
    last = await market.last_minute(symbol, now)
    if last is None:
        return cap, False
    anomaly = is_volume_anomaly(last[1], usual_volume(last[0]), params.anomaly_ratio)
    return (cap * params.anomaly_participation_factor if anomaly else cap), anomaly


def minutes_covering(start: datetime, end: datetime) -> int:
    """Whole minutes from ``start`` floored to the minute up to ``end`` (at least 1)."""
    return max(1, -(-(end - floor_minute(start)) // MINUTE))


def planned_share(agg: Execution, s: SliceState, instrument: Instrument, ref: Decimal) -> Decimal:
    """This slice's planned proportion of what is left, applied to what the venue reports left:
    keeps the plan's size variation while absorbing partial fills and skipped slices."""
    open_slices = agg.open_slices()
    if len(open_slices) <= 1:
        return agg.remaining_qty
    planned_left = sum((o.planned_qty for o in open_slices), ZERO)
    if planned_left <= 0:
        return next_slice_qty(agg.remaining_qty, len(open_slices), instrument, ref)
    share = instrument.round_qty_down(agg.remaining_qty * s.planned_qty / planned_left)
    return share if share >= instrument.min_qty_at(ref) else ZERO


async def capped_planned_share(market: MarketData, instrument: Instrument, params: TwapParams, agg: Execution,
                               s: SliceState, ref: Decimal, interval_seconds: float, now: datetime) -> SliceSizing:
    """The slice's planned share of what is left (``planned_share``), capped at the
    participation cap of the volume expected until the next slice (the recent traded rate
    times the interval; ``participation_cap_now``). Too small to trade after the cap: 0, the
    quantity carries forward. TWAP's sizing, and IS's."""
    wanted = planned_share(agg, s, instrument, ref)
    if wanted <= 0:
        return SliceSizing(wanted, wanted, None)
    rate = await market.volume_rate(agg.symbol, now)
    volume = None if rate is None else rate * Decimal(str(max(interval_seconds, 1.0)))
    cap, anomaly = await participation_cap_now(market, agg.symbol, now, params,
                                               lambda at: market.usual_minute_volume(agg.symbol, at))
    qty = cap_slice_qty(wanted, volume, cap, instrument)
    if 0 < qty < instrument.min_qty_at(ref):
        qty = ZERO  # too small to trade: carry forward
    return SliceSizing(qty, wanted, volume, cap_bound=qty < wanted, volume_anomaly=anomaly,
                       participation_cap=cap)
