"""Execution algorithms as policies the runner consults: how to plan the window, how big the
next child may be. The slicing arithmetic itself lives in the pure domain modules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState
from genesis.domain.instrument import Instrument
from genesis.domain.schedule import next_slice_qty, plan_twap, split_equal
from genesis.domain.twap import TwapParams, calculate_time_slices, cap_slice_qty, is_volume_anomaly
from genesis.engine.market_data import MarketData

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SliceSizing:
    qty: Decimal  # what this slice may send (0: skip, carry forward)
    wanted_qty: Decimal  # before the participation cap
    market_volume: Decimal | None  # expected market volume in the slice's interval
    cap_bound: bool = False
    volume_anomaly: bool = False


class AlgoPolicy(Protocol):
    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        """The initial schedule and the window end."""
        ...

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        """How much the next slice may trade."""
        ...


def execution_seed(execution_id: str) -> int:
    """Seeded randomness per execution: reproducible in replays and backtests."""
    return int(hashlib.sha256(execution_id.encode()).hexdigest()[:8], 16)


@dataclass(slots=True)
class TwapPolicy:
    """Story 4.3 TWAP: adaptive timing from the volume profile, jitter, size variation and a
    participation cap of the interval's market volume. ``adaptive=False`` gives the router's
    plain TWAP: ``slice_count`` equal slices, ``interval_seconds`` apart (still capped)."""

    market: MarketData
    instrument: Instrument
    params: TwapParams
    adaptive: bool = True
    capped: bool = True

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        end_at = now + timedelta(seconds=agg.duration_seconds)
        if "router_interval_seconds" in agg.params:
            # the router's TWAP: its slice count (already min-notional checked), interval apart
            interval = timedelta(seconds=float(agg.params["router_interval_seconds"]))
            count = agg.slice_count or 1
            qtys = split_equal(agg.qty, count, self.instrument)
            return tuple(PlannedSlice(i, now + interval * i, q) for i, q in enumerate(qtys)), now + interval * count
        if not self.adaptive:
            return plan_twap(agg.qty, now, agg.duration_seconds, self.instrument, arrival, agg.slice_count), end_at
        minutes = max(1, -(-agg.duration_seconds // 60))
        profile = await self.market.window_profile(agg.symbol, now, minutes)
        plan = calculate_time_slices(agg.qty, now, agg.duration_seconds, profile, self.instrument, arrival,
                                     agg.slice_count, self.params, seed=execution_seed(agg.execution_id))
        return plan, end_at

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        wanted = next_slice_qty(agg.remaining_qty, slices_left, self.instrument, ref)
        if not self.capped or wanted <= 0:
            return SliceSizing(wanted, wanted, None)
        rate = await self.market.volume_rate(agg.symbol, now)
        volume = None if rate is None else rate * Decimal(str(max(interval_seconds, 1.0)))
        cap = self.params.participation_cap
        anomaly = False
        last = await self.market.last_minute(agg.symbol, now)
        if last is not None:
            usual = self.market.usual_minute_volume(agg.symbol, last[0])
            anomaly = is_volume_anomaly(last[1], usual, self.params.anomaly_ratio)
            if anomaly:
                cap *= self.params.anomaly_participation_factor
        qty = cap_slice_qty(wanted, volume, cap, self.instrument)
        if 0 < qty < self.instrument.min_qty_at(ref):
            qty = ZERO  # too small to trade: carry forward
        return SliceSizing(qty, wanted, volume, cap_bound=qty < wanted, volume_anomaly=anomaly)


@dataclass(slots=True)
class SinglePolicy:
    """One child order, now (router ``single`` or ``--algo single``)."""

    instrument: Instrument

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        return (PlannedSlice(0, now, agg.qty),), now + timedelta(seconds=max(agg.duration_seconds, 1))

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        return SliceSizing(agg.remaining_qty, agg.remaining_qty, None)


def policy_for(agg: Execution, market: MarketData, instrument: Instrument, params: TwapParams) -> AlgoPolicy:
    if agg.algo == "single" or agg.execution_style == "single":
        return SinglePolicy(instrument)
    if agg.algo == "twap":
        if "router_interval_seconds" in agg.params:
            # the router's short intra-bar TWAP (patch v7.4_C1): its own even schedule, no
            # volume-profile timing and no cap (its slices are far below a minute's volume)
            return TwapPolicy(market, instrument, params, adaptive=False, capped=False)
        return TwapPolicy(market, instrument, params)
    raise ValueError(f"unknown algorithm {agg.algo!r}")
