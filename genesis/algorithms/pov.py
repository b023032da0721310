"""``PovExecutor``: percent of volume. No schedule: at every decision point (one per
``interval_seconds``, the first one interval after the start) it trades a target share of the
volume the market actually traded since the previous one, within the participation bounds,
until the parent is filled or the window (the deadline) ends; what is left then stays
unfilled (``genesis.domain.pov``: the rule and its guarantees, docs/algorithms.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Mapping

from genesis.algorithms.base import AlgorithmDefaults, Context, OptionError, SliceSizing, SubmitOption
from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState
from genesis.domain.pov import PovConfig, PovConfigError, pov_slice_qty
from genesis.engine.market_data import MarketData, floor_minute

ZERO = Decimal(0)
LAST_DECISION_LEAD = timedelta(seconds=5)  # the last decision this long before the window ends
_PARAMS = {"participation": "target_participation", "min_participation": "min_participation",
           "max_participation": "max_participation"}


class PovExecutor(AlgorithmDefaults):
    """POV (see the module docstring). Its config is ``PovConfig`` (the parent's limit price
    included), stored in the execution's params by option name."""

    name: ClassVar[str] = "pov"
    options: ClassVar[tuple[SubmitOption, ...]] = (
        SubmitOption("participation", "target share of the market's traded volume, e.g. 0.05 (required)"),
        SubmitOption("min_participation", "trade at least this share of each interval's volume (default 0)"),
        SubmitOption("max_participation", "never more than this share (default twice the target, at most 1)"),
    )

    def __init__(self, ctx: Context, config: PovConfig):
        self.market, self.instrument, self.config = ctx.market, ctx.instrument, config

    @classmethod
    def params_from(cls, options: Mapping[str, str | None], urgency: str | None) -> dict[str, str]:
        if options.get("participation") is None:
            raise OptionError("participation", "--algo pov needs a target, e.g. --participation 0.05 (5%)")
        params = {k: str(v) for k, v in options.items() if v is not None}
        cls.config_of(params, None)  # refused here, before anything is stored
        return params

    @classmethod
    def config_of(cls, params: Mapping[str, str], limit_price: Decimal | None) -> PovConfig:
        values: dict[str, Decimal] = {}
        for key, field in _PARAMS.items():
            if key in params:
                try:
                    values[field] = Decimal(params[key])
                except InvalidOperation:
                    raise OptionError(key, f"{params[key]!r} is not a number; use e.g. 0.05 for 5%") from None
        try:
            return PovConfig(**values, limit_price=limit_price)
        except PovConfigError as exc:
            field = next((k for k, f in _PARAMS.items() if str(exc).startswith(f)), "participation")
            raise OptionError(field, str(exc)) from None

    @classmethod
    def for_execution(cls, agg: Execution, ctx: Context) -> "PovExecutor":
        return cls(ctx, cls.config_of(agg.params, agg.limit_price))

    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        """Decision points, not a schedule: one per interval, the quantity left to the market
        (planned 0; each is sized from the volume traded before it)."""
        end_at = now + timedelta(seconds=agg.duration_seconds)
        step = timedelta(seconds=self.config.interval_seconds)
        last = end_at - LAST_DECISION_LEAD
        times = [now + step * k for k in range(1, int((end_at - now) / step) + 1) if now + step * k < last] or [last]
        if times[-1] < last:
            times.append(last)  # the volume of the window's last part gets its decision too
        return tuple(PlannedSlice(i, at, ZERO) for i, at in enumerate(times)), end_at

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        assert agg.started_at is not None
        before = agg.slices.get(s.index - 1)  # the previous decision point: its volume is counted
        since = before.scheduled_at if before is not None else agg.started_at
        interval_volume = await closed_volume(self.market, agg.symbol, since, now)
        cumulative = await closed_volume(self.market, agg.symbol, agg.started_at, now)
        decision = pov_slice_qty(config=self.config, side=agg.side, interval_volume=interval_volume,
                                 cumulative_volume=cumulative, done_qty=agg.filled_qty,
                                 remaining_qty=agg.remaining_qty, instrument=self.instrument, price=ref)
        return SliceSizing(decision.qty, max(decision.wanted_qty, ZERO), interval_volume,
                           cap_bound=decision.reason == "cap")


async def closed_volume(market: MarketData, symbol: str, start: datetime, now: datetime) -> Decimal:
    """The market volume of the closed minutes from ``start``'s minute up to ``now``'s."""
    return await market.traded_volume(symbol, start, floor_minute(now))
