"""``VWAPExecutionStrategy``: child quantities follow the intraday volume curve.

Over the window, paced by the urgency, capped at the participation limit of the interval's
expected volume, the remainder re-spread over the rest of the curve before every slice.
Passive (maker) by default: the maker leg's fills scale with the volume the market actually
trades, so the realised pace follows the realised volume. Taker for the rest of a slice only
when the lag behind the curve schedule would exceed ``behind_tolerance`` of the schedule
still ahead (``needs_taker``: a funnel that closes on the last slice, so the parent fills), at
critical urgency, or in emergency (which also skips the maker leg and the cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Mapping

from genesis.algorithms.base import AlgorithmDefaults, Context, SliceSizing, UrgencyDecision, VwapSettings
from genesis.algorithms.sizing import minutes_covering, participation_cap_now
from genesis.domain import events as ev
from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState
from genesis.domain.schedule import respread
from genesis.domain.twap import TwapParams
from genesis.domain.volume_curve import float_to_decimal
from genesis.domain.vwap import (ExecutionScheduler, Urgency, intraday_volume_scale, needs_taker, plan_vwap,
                                 scheduled_done_qty)
from genesis.engine.market_data import MINUTE


@dataclass(frozen=True, slots=True)
class VwapConfig:
    """The config's ``twap`` cap rules and ``vwap`` section."""

    params: TwapParams
    settings: VwapSettings


class VWAPExecutionStrategy(AlgorithmDefaults):
    """VWAP (see the module docstring)."""

    name: ClassVar[str] = "vwap"
    accepts_urgency: ClassVar[bool] = True
    changes_urgency: ClassVar[bool] = True

    def __init__(self, ctx: Context, config: VwapConfig):
        self.market, self.instrument, self.config = ctx.market, ctx.instrument, config

    @classmethod
    def for_execution(cls, agg: Execution, ctx: Context) -> "VWAPExecutionStrategy":
        return cls(ctx, VwapConfig(ctx.settings.twap, ctx.settings.vwap))

    @classmethod
    def params_from(cls, options: Mapping[str, str | None], urgency: str | None) -> dict[str, str]:
        return {"urgency": urgency or "low"}

    duration_section: ClassVar[str | None] = "vwap"
    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        end_at = now + timedelta(seconds=agg.duration_seconds)
        curve = await self.market.volume_curve(agg.symbol, now)
        return plan_vwap(agg.qty, now, end_at, curve, self.instrument, arrival,
                         self.config.settings.interval_seconds), end_at

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        assert agg.end_at is not None and agg.started_at is not None
        settings = self.config.settings
        urgency = Urgency(agg.urgency)
        curve = await self.market.volume_curve(agg.symbol, now)
        scale = 1.0
        if settings.intraday_adjustment:
            scale = intraday_volume_scale(await self.market.volume_today(agg.symbol, now), curve,
                                          curve.typical_daily_volume, now)
        daily_volume = Decimal(str(curve.typical_daily_volume))
        cap, anomaly = await participation_cap_now(
            self.market, agg.symbol, now, self.config.params,
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
        behind = needs_taker(done, agg.filled_qty, agg.qty, settings.behind_tolerance)
        emergency = urgency is Urgency.EMERGENCY
        return SliceSizing(target.qty, target.desired_qty, volume, cap_bound=target.cap_bound,
                           volume_anomaly=anomaly and not emergency,
                           taker_fallback=behind or last or emergency or urgency is Urgency.CRITICAL,
                           maker_first=not emergency, participation_cap=None if emergency else cap)

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        return await self.market.minute_fractions(agg.symbol, start, minutes_covering(start, end))

    def change_urgency(self, agg: Execution, level: str, reason: str, now: datetime) -> UrgencyDecision:
        """A new pace from now; emergency: every open slice due now, the first takes
        everything (the rest skip), the cap and the schedule overridden, risk limits kept."""
        if level != Urgency.EMERGENCY.value:
            return UrgencyDecision((ev.UrgencyChanged(agg.execution_id, now, level, reason),))
        events: list[ev.Event] = [ev.EmergencyLiquidationStarted(agg.execution_id, now, reason, agg.remaining_qty)]
        indices = [s.index for s in agg.open_slices()]
        if indices:
            events.append(ev.ScheduleReplanned(agg.execution_id, now, agg.end_at or now,
                                               respread(agg.remaining_qty, indices, now, now, self.instrument),
                                               "emergency liquidation"))
        return UrgencyDecision(tuple(events))

    def slice_event(self, agg: Execution, *args: Any, **fields: Any) -> ev.TwapSliceExecuted:
        return ev.VwapSliceExecuted(*args, **fields, urgency=agg.urgency)

    def completion_event(self, agg: Execution, *args: Any) -> ev.TwapCompleted:
        return ev.VwapCompleted(*args)
