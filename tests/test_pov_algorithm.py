"""``--algo pov`` end to end on the simulated venue with a virtual clock: it trades a share of
the volume the market actually traded, within the participation bounds, through the same
events, projections and risk check as every algorithm."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.requests import RequestError
from genesis.store import tables as t
from genesis.store.projector import rebuild
from tests.harness import harness
from tests.test_projections import snapshot

D = Decimal
POV = {"participation": "0.05", "min_participation": "0.03", "max_participation": "0.08"}


async def test_pov_trades_its_share_of_the_traded_volume_within_the_bounds(db_path):
    async with harness(db_path) as h:
        start = h.clock.now()
        execution_id = await h.supervisor.submit(h.request(qty="40", algo="pov", duration="15m", options=POV))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        agg = Execution.replay(execution_id, history)
        market = sum((c.volume for c in await h.venue.candles("BTC/USDT", start, start + timedelta(minutes=15))), D(0))
        realised = agg.filled_qty / market
        assert agg.state.value == "expired" and agg.filled_qty > 0  # 40 BTC is far more than 5% of 15 minutes
        assert D("0.03") <= realised <= D("0.08") and abs(realised - D("0.05")) < D("0.01")
        submitted = history[0]
        assert isinstance(submitted, ev.ExecutionSubmitted) and submitted.algo == "pov" and submitted.windowed
        assert submitted.params == {"participation": "0.05", "min_participation": "0.03", "max_participation": "0.08"}
        slices = [e for e in history if isinstance(e, ev.TwapSliceExecuted)]
        # every traded slice passed the risk check and stayed under the max of the volume it followed
        assert slices and all(s.filled_qty <= D("0.08") * s.forecast_volume + D("0.00001")
                              for s in slices if s.filled_qty > 0)
        done = history[-1] if isinstance(history[-1], ev.TwapCompleted) else next(
            e for e in history if isinstance(e, ev.TwapCompleted))
        assert done.reason == "window_ended" and done.occurred_at <= start + timedelta(minutes=15, seconds=1)
        row = await h.execution_row(execution_id)
        assert row["algo"] == "pov" and row["filled_qty"] == agg.filled_qty

        live = await snapshot(h.engine)
        async with h.engine.begin() as conn:
            await rebuild(conn)
        assert await snapshot(h.engine) == live  # the projections equal a replay of the events


async def test_a_pov_parent_ends_when_filled(db_path):
    async with harness(db_path) as h:
        execution_id = await h.supervisor.submit(h.request(qty="0.5", algo="pov", duration="30m",
                                                           options={"participation": "0.1"}))
        await h.supervisor.wait_all()
        agg = await h.store.load(execution_id)
        assert agg.state.value == "completed" and agg.filled_qty == D("0.5")
        assert agg.ended_at is not None and agg.started_at is not None
        assert agg.ended_at - agg.started_at < timedelta(minutes=30)
        risk_rows = await h.rows(t.execution_slices)
        assert risk_rows


@pytest.mark.parametrize("options, field", [
    ({}, "participation"),
    ({"participation": "1.5"}, "participation"),
    ({"participation": "0.05", "max_participation": "0.01"}, "max_participation"),
    ({"participation": "five"}, "participation"),
])
async def test_bad_pov_options_are_refused_naming_the_option(db_path, options, field):
    async with harness(db_path) as h:
        with pytest.raises(RequestError) as caught:
            h.request(algo="pov", duration="30m", options=options)
        assert caught.value.field == field


async def test_pov_options_are_refused_for_other_algorithms(db_path):
    async with harness(db_path) as h:
        with pytest.raises(RequestError, match="applies to --algo pov, not twap"):
            h.request(algo="twap", options={"participation": "0.05"})


def test_the_cli_takes_the_pov_options_from_the_algorithm(tmp_path):
    import json
    import sqlite3

    from click.testing import CliRunner

    from genesis.cli import main

    db = str(tmp_path / "cli.db")
    base = ["submit", "--db", db, "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1"]
    ok = CliRunner().invoke(main, [*base, "--algo", "pov", "--participation", "0.05", "--max-participation", "0.2",
                                   "--duration", "10m"])
    assert ok.exit_code == 0, ok.output
    (payload,) = sqlite3.connect(db).execute("SELECT payload FROM commands").fetchone()
    assert json.loads(payload)["participation"] == "0.05" and json.loads(payload)["max_participation"] == "0.2"
    refused = CliRunner().invoke(main, [*base, "--algo", "pov", "--participation", "2"])
    assert refused.exit_code == 2 and "--participation: target_participation must be in (0, 1]" in refused.output
    other = CliRunner().invoke(main, [*base, "--algo", "twap", "--participation", "0.05"])
    assert other.exit_code == 2 and "--participation: applies to --algo pov, not twap" in other.output


async def test_genesis_metrics_count_pov_trades_in_their_own_bucket(tmp_path):
    from datetime import datetime, timezone
    from pathlib import Path

    from genesis.backtest import BacktestSpec, run_backtest
    from genesis.store.db import sync_engine
    from genesis.store.queries import router_metrics

    sample = Path(__file__).parent / "data" / "BTC_USDT-1m-20250520-20250611.csv.gz"
    db = tmp_path / "bt.db"
    spec = BacktestSpec(sample, "BTC/USDT", "buy", "2", "pov", datetime(2025, 6, 10, 14, tzinfo=timezone.utc), 1800,
                        options={"participation": "0.05"})
    await run_backtest(spec, db_path=db)
    engine = sync_engine(db)
    try:
        metrics = router_metrics(engine)
    finally:
        engine.dispose()
    assert metrics["pov_trades_count"] > 0 and metrics["pov_avg_slippage_bps"] is not None
    assert metrics["twap_trades_count"] == 0 and metrics["vwap_trades_count"] == 0
