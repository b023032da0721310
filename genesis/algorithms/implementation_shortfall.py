"""``ImplementationShortfallExecutor`` (``--algo is``): the Almgren-Chriss trajectory.

At the start it estimates the model from the market (``config_from_market``): the risk
aversion from the urgency (low 1 .. critical 1000, per notional), the volatility from the
last day of 1-minute candles (``estimate_volatility``), the temporary impact from the book's
spread and the recent traded rate. The slices follow the optimal holdings (front-loaded as the
urgency rises, TWAP's straight line as it falls). Each slice is sized like TWAP's: its planned
share of what is left, capped at the participation cap. The model: docs/algorithms.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Mapping

from genesis.algorithms.base import AlgorithmDefaults, Context, OptionError, SliceSizing
from genesis.algorithms.sizing import capped_planned_share
from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState
from genesis.domain.implementation_shortfall import URGENCY_RISK_AVERSION, config_from_market, plan_is
from genesis.domain.twap import TwapParams
from genesis.domain.volatility import estimate_volatility
from genesis.domain.vwap import Urgency
from genesis.engine.market_data import floor_minute

VOLATILITY_LOOKBACK = timedelta(days=1)
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class ImplementationShortfallConfig:
    """The urgency (-> risk aversion), the slice spacing and TWAP's cap rules."""

    urgency: Urgency
    params: TwapParams
    interval_seconds: float = 60.0


class ImplementationShortfallExecutor(AlgorithmDefaults):
    """Implementation shortfall (see the module docstring)."""

    name: ClassVar[str] = "is"
    accepts_urgency: ClassVar[bool] = True

    def __init__(self, ctx: Context, config: ImplementationShortfallConfig):
        self.market, self.instrument, self.config = ctx.market, ctx.instrument, config

    @classmethod
    def params_from(cls, options: Mapping[str, str | None], urgency: str | None) -> dict[str, str]:
        level = Urgency(urgency or Urgency.LOW.value)
        if level not in URGENCY_RISK_AVERSION:
            raise OptionError("urgency", f"{level.value} has no IS trajectory; use one of "
                                         f"{', '.join(u.value for u in URGENCY_RISK_AVERSION)}")
        return {"urgency": level.value}

    @classmethod
    def for_execution(cls, agg: Execution, ctx: Context) -> "ImplementationShortfallExecutor":
        return cls(ctx, ImplementationShortfallConfig(Urgency(agg.urgency), ctx.settings.twap))

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        end_at = now + timedelta(seconds=agg.duration_seconds)
        last = floor_minute(now)
        candles = await self.market.history(agg.symbol, last - VOLATILITY_LOOKBACK, last)
        volatility = estimate_volatility(candles)
        top = await self.market.book_top(agg.symbol)
        rate = await self.market.volume_rate(agg.symbol, now)
        if rate is None or rate <= 0:
            rate = await self.market.volume_24h(agg.symbol, now) / SECONDS_PER_DAY
        model = config_from_market(urgency=self.config.urgency, qty=agg.qty, price=arrival,
                                   relative_volatility_per_sqrt_second=volatility.per_sqrt_second,
                                   spread_quote=top.ask - top.bid, volume_per_second=max(float(rate), 1e-12),
                                   interval_seconds=self.config.interval_seconds)
        return plan_is(agg.qty, now, agg.duration_seconds, self.instrument, arrival, model), end_at

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        return await capped_planned_share(self.market, self.instrument, self.config.params, agg, s, ref,
                                          interval_seconds, now)
