"""``TwapExecutor``: adaptive TWAP, and the router's short intra-bar TWAP as its
own configuration (``RouterTwap``, registered as ``router_twap``).

Adaptive: slice times follow the usual volume profile, with jitter and size variation; each
slice is capped at a share of the interval's market volume; a price better than arrival by
``early_completion_bps`` sets an earlier *target* for the rest (``finish_early``). The target
never becomes the deadline: the execution's window still ends at its original end, and if
the squeezed slices have all run with quantity left, the remainder is re-planned over the
rest of the original window (``continue_after_plan``; docs/algorithms.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Mapping

from genesis.algorithms.base import (AlgorithmDefaults, Context, OptionError, SliceSizing, execution_seed)
from genesis.algorithms.sizing import capped_planned_share, minutes_covering, planned_share
from genesis.domain import events as ev
from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState
from genesis.domain.schedule import feasible_slice_count, respread_by_volume, split_equal
from genesis.domain.twap import BPS, TwapParams, calculate_time_slices, check_early_completion, early_completion_end


@dataclass(frozen=True, slots=True)
class TwapConfig:
    """The adaptive TWAP's knobs: the config's ``twap`` section, and the slice count asked for."""

    params: TwapParams
    slice_count: int | None = None


@dataclass(frozen=True, slots=True)
class RouterTwapConfig:
    """The router's short TWAP: ``slices`` equal children ``interval_seconds``
    apart, no volume-profile timing, no cap (its slices are far below a minute's volume), no
    early completion, no window (its children take what they take). Stored in the
    execution's params under ``PARAMS`` (the patch's ``twap_config``)."""

    interval_seconds: float
    min_notional_usd: Decimal
    slices: int

    PARAMS: ClassVar[tuple[str, str, str]] = ("router_interval_seconds", "router_min_notional_usd", "router_slices")

    def to_params(self) -> dict[str, str]:
        return dict(zip(self.PARAMS, (str(self.interval_seconds), str(self.min_notional_usd), str(self.slices))))

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "RouterTwapConfig":
        try:
            interval, notional, slices = (params[k] for k in cls.PARAMS)
            return cls(float(interval), Decimal(notional), int(slices))
        except (KeyError, ValueError, ArithmeticError) as exc:
            raise OptionError("params", f"the router's TWAP parameters are incomplete: {exc}") from None


class TwapExecutor(AlgorithmDefaults):
    """Adaptive TWAP (see the module docstring)."""

    name: ClassVar[str] = "twap"
    honours_slice_count: ClassVar[bool] = True

    def __init__(self, ctx: Context, config: TwapConfig):
        self.market, self.instrument, self.config = ctx.market, ctx.instrument, config

    @classmethod
    def for_execution(cls, agg: Execution, ctx: Context) -> "TwapExecutor":
        return cls(ctx, TwapConfig(ctx.settings.twap, agg.slice_count))

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        minutes = max(1, -(-agg.duration_seconds // 60))
        profile = await self.market.window_profile(agg.symbol, now, minutes)
        plan = calculate_time_slices(agg.qty, now, agg.duration_seconds, profile, self.instrument, arrival,
                                     self.config.slice_count, self.config.params,
                                     seed=execution_seed(agg.execution_id))
        return plan, now + timedelta(seconds=agg.duration_seconds)

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        return await capped_planned_share(self.market, self.instrument, self.config.params, agg, s, ref,
                                          interval_seconds, now)

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        return await self.market.window_profile(agg.symbol, start, minutes_covering(start, end))

    async def finish_early(self, agg: Execution, now: datetime) -> list[ev.Event]:
        """Early completion: the price is better than arrival by the threshold: the open slices
        are squeezed towards an earlier target (``early_completion_end``: never faster than
        the participation cap absorbs at the recent traded rate). Once per execution. The
        re-plan keeps the window's end: the target is where the slices go, not a deadline."""
        params = self.config.params
        if agg.early_completion_at is not None or agg.arrival_price is None or agg.open_count < 2:
            return []
        mid = await self.market.price(agg.symbol)
        if not check_early_completion(agg.side, mid, agg.arrival_price, params.early_completion_bps):
            return []
        improvement = (-agg.side.sign * (mid - agg.arrival_price) / agg.arrival_price * BPS).quantize(Decimal("0.01"))
        rate = await self.market.volume_rate(agg.symbol, now)
        rate = None if rate is None else rate.quantize(Decimal("0.00000001"))
        end_at = agg.end_at or now
        chosen = early_completion_end(now, end_at, agg.remaining_qty, agg.open_count, rate, params)
        events: list[ev.Event] = [ev.EarlyCompletionTriggered(
            agg.execution_id, now, mid, agg.arrival_price, improvement, previous_end_at=end_at,
            end_at=chosen.end_at, accelerated=chosen.accelerated, volume_rate_per_second=rate,
            participation_cap=params.participation_cap, cap_span_seconds=chosen.cap_span_seconds,
            nominal_span_seconds=chosen.nominal_span_seconds, reason=chosen.reason)]
        if chosen.accelerated:
            indices = [s.index for s in agg.open_slices()]
            profile = await self.replan_profile(agg, now, chosen.end_at)
            plan = respread_by_volume(agg.remaining_qty, indices, now, chosen.end_at, profile, self.instrument)
            events.append(ev.ScheduleReplanned(
                agg.execution_id, now, end_at, plan,
                f"early completion: price better than arrival; slices squeezed towards the target "
                f"{chosen.reason}; the window still ends {end_at.isoformat()}"))
        return events

    async def continue_after_plan(self, agg: Execution, now: datetime) -> list[ev.Event]:
        """After an early completion whose squeezed slices all ran with quantity left: the
        remainder re-planned over the rest of the original window, as many slices as the
        plan's nominal spacing fits there (new indices); nothing when less than one spacing is
        left (the execution then ends with what it has, as any TWAP does)."""
        if (agg.early_completion_at is None or agg.end_at is None or agg.started_at is None
                or agg.remaining_qty <= 0):
            return []
        spacing = (agg.end_at - agg.started_at) / max(len(agg.slices), 1)
        if spacing <= timedelta(0) or agg.end_at - now < spacing:
            return []
        price = agg.arrival_price or Decimal(1)
        wanted = int((agg.end_at - now) / spacing)
        count = feasible_slice_count(agg.remaining_qty, wanted, self.instrument, price)
        first = max(agg.slices, default=-1) + 1
        indices = list(range(first, first + count))
        profile = await self.replan_profile(agg, now, agg.end_at)
        plan = respread_by_volume(agg.remaining_qty, indices, now, agg.end_at, profile, self.instrument)
        return [ev.ScheduleReplanned(agg.execution_id, now, agg.end_at, plan,
                                     "early completion target passed with quantity left: "
                                     "remainder re-planned over the rest of the window")]


class RouterTwap(TwapExecutor):
    """``TwapExecutor`` in the router's configuration (``RouterTwapConfig``): chosen by
    ``--algo auto`` for a parent at or above the router's minimum notional."""

    name: ClassVar[str] = "router_twap"
    windowed: ClassVar[bool] = False

    def __init__(self, ctx: Context, config: RouterTwapConfig, slice_count: int):
        self.market, self.instrument = ctx.market, ctx.instrument
        self.router, self.slice_count = config, slice_count

    @classmethod
    def for_execution(cls, agg: Execution, ctx: Context) -> "RouterTwap":
        return cls(ctx, RouterTwapConfig.from_params(agg.params), agg.slice_count or 1)

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        interval = timedelta(seconds=self.router.interval_seconds)
        qtys = split_equal(agg.qty, self.slice_count, self.instrument)  # already min-notional checked
        return tuple(PlannedSlice(i, now + interval * i, q) for i, q in enumerate(qtys)), now + interval * self.slice_count

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        wanted = planned_share(agg, s, self.instrument, ref)
        return SliceSizing(wanted, wanted, None)

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        return None  # stays even

    async def finish_early(self, agg: Execution, now: datetime) -> list[ev.Event]:
        return []

    async def continue_after_plan(self, agg: Execution, now: datetime) -> list[ev.Event]:
        return []

