"""Execution algorithms as policies the runner consults: how to plan the window, how big the
next child may be. The slicing arithmetic itself lives in the pure domain modules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable, Protocol

from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState
from genesis.domain.instrument import Instrument
from genesis.domain.schedule import next_slice_qty, plan_twap, split_equal
from genesis.domain.twap import TwapParams, calculate_time_slices, cap_slice_qty, is_volume_anomaly
from genesis.domain.vwap import (ExecutionScheduler, Urgency, intraday_volume_scale, needs_taker, plan_vwap,
                                 scheduled_done_qty)
from genesis.domain.volume_curve import float_to_decimal
from genesis.engine.market_data import MINUTE, MarketData, floor_minute

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SliceSizing:
    qty: Decimal  # what this slice may send (0: skip, carry forward)
    wanted_qty: Decimal  # before the participation cap
    market_volume: Decimal | None  # expected market volume in the slice's interval
    cap_bound: bool = False
    volume_anomaly: bool = False
    taker_fallback: bool = True  # after the maker leg, take the rest (False: carry it forward)
    maker_first: bool = True  # False: straight to taker (emergency)


class AlgoPolicy(Protocol):
    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        """The initial schedule and the window end."""
        ...

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        """How much the next slice may trade."""
        ...

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        """The usual relative volume of each minute from ``start`` (floored to the minute) to
        ``end``, to re-plan the open slices on (``schedule.respread_by_volume``); None: the
        algorithm re-plans evenly."""
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
        wanted = planned_share(agg, s, self.instrument, ref)
        if not self.capped or wanted <= 0:
            return SliceSizing(wanted, wanted, None)
        rate = await self.market.volume_rate(agg.symbol, now)
        volume = None if rate is None else rate * Decimal(str(max(interval_seconds, 1.0)))
        cap, anomaly = await participation_cap_now(
            self.market, agg.symbol, now, self.params,
            lambda at: self.market.usual_minute_volume(agg.symbol, at))
        qty = cap_slice_qty(wanted, volume, cap, self.instrument)
        if 0 < qty < self.instrument.min_qty_at(ref):
            qty = ZERO  # too small to trade: carry forward
        return SliceSizing(qty, wanted, volume, cap_bound=qty < wanted, volume_anomaly=anomaly)

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        if not self.adaptive:
            return None  # the router's plain TWAP stays even
        return await self.market.window_profile(agg.symbol, start, minutes_covering(start, end))


async def participation_cap_now(market: MarketData, symbol: str, now: datetime, params: TwapParams,
                                usual_volume: Callable[[datetime], Decimal | None]) -> tuple[Decimal, bool]:
    """The participation cap for a slice starting ``now``, and whether the last closed minute
    was anomalous (``is_volume_anomaly``: ``anomaly_ratio`` times above or below
    ``usual_volume`` of that minute), in which case the cap is multiplied by
    ``anomaly_participation_factor``. One rule for every capped algorithm (TWAP, VWAP)."""
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


@dataclass(slots=True)
class SinglePolicy:
    """One child order, now (router ``single`` or ``--algo single``)."""

    instrument: Instrument

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        return (PlannedSlice(0, now, agg.qty),), now + timedelta(seconds=max(agg.duration_seconds, 1))

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        return SliceSizing(agg.remaining_qty, agg.remaining_qty, None)

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        return None


DEFAULT_BEHIND_TOLERANCE = Decimal("0.2")  # of the schedule still ahead: docs/execution-quality.md


@dataclass(frozen=True, slots=True)
class VwapSettings:
    interval_seconds: int = 60
    behind_tolerance: Decimal = DEFAULT_BEHIND_TOLERANCE
    intraday_adjustment: bool = False


@dataclass(slots=True)
class VwapPolicy:
    """Story 10.4.1 VWAP: child quantities follow the intraday volume curve over the window,
    paced by the urgency, capped at the participation limit of the interval's expected volume,
    the remainder re-spread over the rest of the curve before every slice. Passive (maker)
    by default: the maker leg's fills scale with the volume the market actually trades, so
    the realised pace follows the realised volume. Taker for the rest of a slice only when
    the lag behind the curve schedule would exceed ``behind_tolerance`` of the schedule still
    ahead (``needs_taker``: a funnel that closes on the last slice, so the parent fills), at
    critical urgency, or in emergency."""

    market: MarketData
    instrument: Instrument
    params: TwapParams
    interval_seconds: int = 60
    behind_tolerance: Decimal = DEFAULT_BEHIND_TOLERANCE
    intraday_adjustment: bool = False

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        end_at = now + timedelta(seconds=agg.duration_seconds)
        curve = await self.market.volume_curve(agg.symbol, now)
        return plan_vwap(agg.qty, now, end_at, curve, self.instrument, arrival, self.interval_seconds), end_at

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        assert agg.end_at is not None and agg.started_at is not None
        urgency = Urgency(agg.urgency)
        curve = await self.market.volume_curve(agg.symbol, now)
        scale = 1.0
        if self.intraday_adjustment:
            scale = intraday_volume_scale(await self.market.volume_today(agg.symbol, now), curve,
                                          curve.typical_daily_volume, now)
        daily_volume = Decimal(str(curve.typical_daily_volume))
        cap, anomaly = await participation_cap_now(
            self.market, agg.symbol, now, self.params,
            lambda at: daily_volume * float_to_decimal(curve.fraction(at, at + MINUTE)))
        scheduler = ExecutionScheduler(curve, self.instrument, daily_volume, cap)
        end = now + timedelta(seconds=interval_seconds)
        last = slices_left <= 1 or end >= agg.end_at
        target = scheduler.next_slice(remaining_qty=agg.remaining_qty, interval_start=now,
                                      interval_end=min(end, agg.end_at) if not last else agg.end_at,
                                      window_end=agg.end_at, price=ref, urgency=urgency, volume_scale=scale)
        volume = scheduler.expected_interval_volume(now, end, scale)
        done = scheduled_done_qty(agg.qty, curve, agg.started_at, agg.end_at, now + timedelta(seconds=interval_seconds),
                                  urgency)
        behind = needs_taker(done, agg.filled_qty, agg.qty, self.behind_tolerance)
        emergency = urgency is Urgency.EMERGENCY
        return SliceSizing(target.qty, target.desired_qty, volume, cap_bound=target.cap_bound,
                           volume_anomaly=anomaly and not emergency,
                           taker_fallback=behind or last or emergency or urgency is Urgency.CRITICAL,
                           maker_first=not emergency)

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        curve = await self.market.volume_curve(agg.symbol, start)
        first = floor_minute(start)
        return [curve.fraction(first + MINUTE * k, first + MINUTE * (k + 1))
                for k in range(minutes_covering(start, end))]


def policy_for(agg: Execution, market: MarketData, instrument: Instrument, params: TwapParams,
               vwap: "VwapSettings | None" = None) -> AlgoPolicy:
    if agg.algo == "single" or agg.execution_style == "single":
        return SinglePolicy(instrument)
    if agg.algo == "twap":
        if "router_interval_seconds" in agg.params:
            # the router's short intra-bar TWAP (patch v7.4_C1): its own even schedule, no
            # volume-profile timing and no cap (its slices are far below a minute's volume)
            return TwapPolicy(market, instrument, params, adaptive=False, capped=False)
        return TwapPolicy(market, instrument, params)
    if agg.algo == "vwap":
        v = vwap or VwapSettings()
        return VwapPolicy(market, instrument, params, v.interval_seconds, v.behind_tolerance, v.intraday_adjustment)
    raise ValueError(f"unknown algorithm {agg.algo!r}")
