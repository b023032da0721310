"""VWAP (Story 10.4.1) end to end on the simulated venue with the virtual clock."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from genesis.backtest import BacktestError, BacktestSpec, run_backtest
from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.engine.supervisor_config import apply_config
from tests.harness import harness

D = Decimal
SAMPLE = Path(__file__).parent / "data" / "BTC_USDT-1m-20250520-20250611.csv.gz"


def of(history, cls):  # type: ignore[no-untyped-def]
    return [e for e in history if isinstance(e, cls)]


async def test_vwap_follows_the_curve_fills_exactly_and_tracks_the_benchmark(db_path):
    async with harness(db_path) as h:
        execution_id = await h.supervisor.submit(h.request(algo="vwap", qty="3", duration="2h"))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        agg = Execution.replay(execution_id, history)
        assert agg.state.value == "completed" and agg.filled_qty == D("3")
        slices = of(history, ev.VwapSliceExecuted)
        assert slices
        assert all(type(s) is ev.VwapSliceExecuted for s in of(history, ev.TwapSliceExecuted))
        assert sum(s.filled_qty for s in slices) == D("3")
        # participation never above the cap of the expected interval volume (low urgency)
        assert all(s.filled_qty <= D("0.1") * s.forecast_volume for s in slices if s.forecast_volume)
        # real-time benchmark updated every slice and stored on the execution
        assert all(s.market_vwap is not None for s in slices[1:])
        (done,) = of(history, ev.TwapCompleted)
        assert isinstance(done, ev.VwapCompleted) and done.market_vwap is not None
        expected = ((done.avg_price - done.market_vwap) / done.market_vwap * 10000).quantize(D("0.0001"))
        assert done.slippage_vs_vwap_bps == expected
        row = await h.execution_row(execution_id)
        assert row["market_vwap"] == done.market_vwap and row["slippage_vs_vwap_bps"] == expected
        # child orders carry their parent: execution id, slice index, deterministic client id
        namespace = await h.store.namespace()
        for i in of(history, ev.OrderIntended):
            assert i.client_order_id == f"g{namespace}-{execution_id}-{i.slice_index}-{i.attempt}"


async def test_urgency_change_is_an_event_and_speeds_up_the_pace(db_path):
    async with harness(db_path) as h:
        low = await h.supervisor.submit(h.request(algo="vwap", qty="2", duration="2h", request_id="low"))
        fast = await h.supervisor.submit(h.request(algo="vwap", qty="2", duration="2h", request_id="fast"))
        start = h.clock.now()

        async def steer() -> None:
            async with h.clock.actor():
                await h.clock.sleep_until(start + timedelta(minutes=10))
                assert h.supervisor.set_urgency(fast, "high", "test")

        await asyncio.gather(steer(), h.supervisor.wait_all())
        hist_low = [s.event for s in await h.store.read(low)]
        hist_fast = [s.event for s in await h.store.read(fast)]
        (change,) = of(hist_fast, ev.UrgencyChanged)
        assert change.urgency == "high"
        halfway = start + timedelta(minutes=60)

        def done_by(history):  # type: ignore[no-untyped-def]
            return sum(f.qty for f in of(history, ev.FillRecorded) if f.occurred_at <= halfway)

        assert done_by(hist_fast) > done_by(hist_low)
        assert {s.urgency for s in of(hist_fast, ev.VwapSliceExecuted) if s.occurred_at > change.occurred_at} == {"high"}


async def liquidate_after(h, minutes: int) -> tuple[str, list[ev.Event]]:  # type: ignore[no-untyped-def]
    """A 2 BTC, 4-hour VWAP switched to emergency after ``minutes``: its id and history."""
    execution_id = await h.supervisor.submit(h.request(algo="vwap", qty="2", duration="4h"))
    start = h.clock.now()

    async def steer() -> None:
        async with h.clock.actor():
            await h.clock.sleep_until(start + timedelta(minutes=minutes))
            h.supervisor.set_urgency(execution_id, "emergency", "desk says flatten")

    await asyncio.gather(steer(), h.supervisor.wait_all())
    return execution_id, [s.event for s in await h.store.read(execution_id)]


async def test_emergency_liquidation_sends_the_rest_now_with_its_own_event(db_path):
    async with harness(db_path) as h:
        _, history = await liquidate_after(h, 30)
        (em,) = of(history, ev.EmergencyLiquidationStarted)
        assert em.reason == "desk says flatten" and em.remaining_qty > 0
        (done,) = of(history, ev.TwapCompleted)
        assert done.filled_qty == D("2")
        # everything after the emergency went out within a minute, as taker, beyond the cap
        after = [f for f in of(history, ev.FillRecorded) if f.occurred_at >= em.occurred_at]
        assert sum(f.qty for f in after) == em.remaining_qty
        assert (done.occurred_at - em.occurred_at) < timedelta(minutes=1)
        assert {f.liquidity for f in after} == {"taker"}


async def test_emergency_still_respects_hard_risk_limits(db_path):
    async with harness(db_path) as h:
        execution_id = await h.supervisor.submit(h.request(algo="vwap", qty="1", duration="1h"))
        apply_config(h.supervisor, parse_config({"risk": {"kill_switch": True}}))  # a hard limit, as on SIGHUP
        h.supervisor.set_urgency(execution_id, "emergency", "flatten")
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        assert of(history, ev.EmergencyLiquidationStarted) and of(history, ev.RiskDenied)
        assert not of(history, ev.FillRecorded)


def test_backtest_json_on_the_small_shipped_candle_file():
    spec = BacktestSpec(SAMPLE, "BTC/USDT", "buy", "5", "vwap", datetime(2025, 6, 10, 8, tzinfo=timezone.utc), 4 * 3600)
    result = asyncio.run(run_backtest(spec))
    json.dumps(result)  # serialisable as printed by --json
    for key in ("algo", "symbol", "side", "qty", "filled_qty", "avg_price", "arrival_price", "market_vwap",
                "slippage_vs_vwap_bps", "implementation_shortfall_bps", "max_participation", "slices",
                "maker_ratio", "fees", "wall_seconds"):
        assert key in result
    assert result["filled_qty"] == "5.00000" and result["algo"] == "vwap"
    avg, vwap = D(result["avg_price"]), D(result["market_vwap"])
    assert D(result["slippage_vs_vwap_bps"]) == ((avg - vwap) / vwap * 10000).quantize(D("0.0001"))
    assert D(result["max_participation"]) <= D("0.1")
    # deterministic: same inputs, same figures
    again = asyncio.run(run_backtest(spec))
    assert {k: v for k, v in again.items() if k != "wall_seconds"} == {k: v for k, v in result.items() if k != "wall_seconds"}


def test_backtest_without_enough_history_is_a_clear_error():
    spec = BacktestSpec(SAMPLE, "BTC/USDT", "buy", "5", "twap", datetime(2025, 6, 1, tzinfo=timezone.utc), 3600)
    with pytest.raises(BacktestError, match="needs 20 days of history"):
        asyncio.run(run_backtest(spec))
