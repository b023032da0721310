"""``genesis backtest``: the real executor (runner, risk, events, store) against the simulated
venue on a virtual clock, over a candle file. Candles before ``start`` are history only."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.algorithms.registry import algorithm_class, windowed_submittable
from genesis.clock import Clock, VirtualClock, utc
from genesis.config import RuntimeConfig, parse_config
from genesis.domain import benchmarks
from genesis.domain.execution import Execution
from genesis.domain.orders import Side
from genesis.requests import shown, validate_submit
from genesis.runtime.wiring import EngineOptions, build_engine
from genesis.store import migrate, tables
from genesis.venue.base import Venue
from genesis.venue.candles import CandleSeries, load_candles
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.sim import FillModel, SimulatedVenue

MAX_BACKTEST_SECONDS = 86_400


class BacktestError(ValueError):
    """The backtest cannot run as asked (not enough history, window outside the file...)."""


@dataclass(frozen=True, slots=True)
class BacktestSpec:
    candles_path: Path
    symbol: str
    side: str
    qty: str
    algo: str
    start: datetime
    duration_seconds: int
    history_days: int = 20
    urgency: str = "low"
    seed: int = 0
    slices: int | None = None
    options: dict[str, str] = field(default_factory=dict)  # the algorithm's own submit options


def backtest_config(base: RuntimeConfig, history_days: int) -> RuntimeConfig:
    """The daemon's config with windows up to a day and the history length asked for."""
    data = base.model_dump(mode="json")
    data["twap"].update(min_duration_seconds=60, max_duration_seconds=MAX_BACKTEST_SECONDS,
                        default_duration_seconds=min(max(data["twap"]["default_duration_seconds"], 60),
                                                     MAX_BACKTEST_SECONDS),
                        volume_lookback_days=history_days)
    data["vwap"].update(min_duration_seconds=60, max_duration_seconds=MAX_BACKTEST_SECONDS)
    data["risk"]["max_position_base"] = {}
    return parse_config(data, "backtest config")


def check_window(series: CandleSeries, spec: BacktestSpec) -> None:
    start = utc(spec.start)
    need = start - timedelta(days=spec.history_days)
    if need < series.first_open_time:
        raise BacktestError(
            f"--start {start.isoformat()}: needs {spec.history_days} days of history before it "
            f"(from {need.isoformat()}), but {spec.candles_path} starts at "
            f"{series.first_open_time.isoformat()}; start later or lower --history-days")
    end = start + timedelta(seconds=spec.duration_seconds)
    if end > series.end_time:
        raise BacktestError(f"--start/--duration: the window ends {end.isoformat()}, after the last candle "
                            f"of {spec.candles_path} ({series.end_time.isoformat()})")


async def run_backtest(spec: BacktestSpec, config: RuntimeConfig | None = None, db_path: Path | None = None,
                       series: CandleSeries | None = None) -> dict[str, Any]:
    """Run one execution to its end and return the figures (Decimals as strings)."""
    wall0 = time.perf_counter()
    if spec.symbol not in SIM_INSTRUMENTS:
        raise BacktestError(f"--symbol: {spec.symbol!r} has no instrument rules; known: {', '.join(SIM_INSTRUMENTS)}")
    series = series or load_candles(spec.candles_path, spec.symbol)
    check_window(series, spec)
    config = backtest_config(config or RuntimeConfig(), spec.history_days)
    if spec.algo not in windowed_submittable():
        raise BacktestError(f"--algo: {shown(spec.algo)} cannot be backtested over a window; "
                            f"choose one of: {', '.join(windowed_submittable())}")
    req = validate_submit(symbol=spec.symbol, side=spec.side, qty=spec.qty, algo=spec.algo,
                          duration=spec.duration_seconds, slices=spec.slices, limit_price=None,
                          request_id=f"backtest-{spec.seed}", instruments=SIM_INSTRUMENTS, config=config,
                          urgency=spec.urgency if algorithm_class(spec.algo).accepts_urgency else None,
                          options=spec.options)
    sim = config.sim

    def venue(clock: Clock) -> Venue:
        return SimulatedVenue(clock, {spec.symbol: series}, {spec.symbol: SIM_INSTRUMENTS[spec.symbol]},
                              fill_model=FillModel(half_spread_bps=sim.half_spread_bps,
                                                   impact_coefficient_bps=sim.impact_coefficient_bps,
                                                   limit_fill_share=sim.limit_fill_share),
                              balances={"USDT": Decimal("1000000000"), series_base(spec.symbol): Decimal("1000000")},
                              seed=spec.seed)

    with tempfile.TemporaryDirectory(prefix="genesis-backtest-") as tmp:
        path = db_path or Path(tmp) / "backtest.db"
        migrate.upgrade(path)
        # the SQLite candle cache pays off only in a database that outlives this run (--db): in a
        # throwaway one, storing 20 days of history would cost ~0.5 s per execution for nothing
        options = EngineOptions(durable=False, candle_cache=db_path is not None)
        engine = await build_engine(path, config, VirtualClock(utc(spec.start)), venue,
                                    {spec.symbol: SIM_INSTRUMENTS[spec.symbol]}, options)
        assert engine.supervisor is not None
        try:
            execution_id = await engine.supervisor.submit(req)
            await engine.supervisor.wait_all()
            agg = await engine.store.load(execution_id)
            slice_rows = await _slice_figures(engine.database, execution_id)
        finally:
            await engine.close()
    return _summary(spec, agg, *slice_rows, series, time.perf_counter() - wall0)


def series_base(symbol: str) -> str:
    return symbol.split("/")[0]


async def _slice_figures(engine: AsyncEngine, execution_id: str) -> tuple[list[Decimal], int]:
    """Realised participations (emergency slices, which override the cap by design, left out)
    and the number of slices that traded, from the slice projection (one row per slice: far
    cheaper than decoding the whole event history of a 1,440-slice day)."""
    s = tables.execution_slices.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(s.participation, s.filled_qty, s.cap_overridden)
                                   .where(s.execution_id == execution_id))).all()
    return [p for p, _, over in rows if p is not None and not over], sum(1 for _, f, _ in rows if f > 0)


def summarise(spec: BacktestSpec, agg: Execution, history: list, series: CandleSeries,  # type: ignore[type-arg]
              wall_seconds: float) -> dict[str, Any]:
    """The backtest figures from the execution's event history."""
    from genesis.domain import events as ev

    slices = [e for e in history if isinstance(e, ev.TwapSliceExecuted)]
    overridden = {s.slice_index for s in slices if s.cap_overridden}
    participations = [m.participation for m in history if isinstance(m, ev.SliceParticipationMeasured)
                      and m.participation is not None and m.slice_index not in overridden]
    return _summary(spec, agg, participations, sum(1 for s in slices if s.filled_qty > 0), series, wall_seconds)


def _summary(spec: BacktestSpec, agg: Execution, participations: list[Decimal], traded_slices: int,
             series: CandleSeries, wall_seconds: float) -> dict[str, Any]:
    start = utc(spec.start)
    window = series.range(start, start + timedelta(seconds=spec.duration_seconds))
    vwap = benchmarks.market_vwap(window)
    active_end = min(agg.ended_at, start + timedelta(seconds=spec.duration_seconds)) if agg.ended_at else None
    market_volume = sum((c.volume for c in window if active_end is None or c.open_time < active_end), Decimal(0))
    side = Side(spec.side)
    q = Decimal("0.0001")
    return {
        "algo": spec.algo, "symbol": spec.symbol, "side": spec.side, "qty": str(agg.qty),
        "start": start.isoformat(), "duration_seconds": spec.duration_seconds, "state": agg.state.value,
        "filled_qty": str(agg.filled_qty),
        "avg_price": _q(agg.avg_price, Decimal("0.00000001")), "arrival_price": _q(agg.arrival_price, Decimal("0.00000001")),
        "market_vwap": _q(vwap, Decimal("0.00000001")),
        "slippage_vs_vwap_bps": _q(benchmarks.slippage_vs_vwap_bps(side, agg.avg_price, vwap), q),
        "implementation_shortfall_bps": _q(agg.implementation_shortfall_bps, q),
        "max_participation": _q(max(participations) if participations else None, Decimal("0.000001")),
        # filled / market volume from the start to the execution's end (the minute it ended counted
        # whole): what POV targets (its --participation)
        "realised_participation": _q(agg.filled_qty / market_volume if market_volume else None, Decimal("0.000001")),
        "slices": traded_slices,
        "maker_ratio": _q(agg.maker_qty / agg.filled_qty if agg.filled_qty else None, q),
        "fees": str(agg.fees), "wall_seconds": round(wall_seconds, 3),
    }


def _q(v: Decimal | None, quantum: Decimal) -> str | None:
    return None if v is None else str(v.quantize(quantum))
