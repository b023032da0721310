"""The analysis views (migration 0004) on a hand-built history (tests/analytics_history.py)
and on an execution run by the real engine; the migration goes up, down and up again."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from pytest import approx

from genesis.config import parse_config
from genesis.store import migrate
from genesis.store.candle_cache import CandleCache
from tests.analytics_history import CANDLES, build, make_history_db
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue
from tests.migrated import migrated_sqlite

ANALYSIS_VIEWS = {"execution_analysis", "slice_analysis", "daily_execution_summary"}


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_history_db(tmp_path_factory)


def rows(path: Path, sql: str, *params: object) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def one(path: Path, view: str, execution_id: str) -> dict:
    (row,) = rows(path, f"SELECT * FROM {view} WHERE execution_id = ?", execution_id)
    return row


def views(path: Path) -> set[str]:
    return {r["name"] for r in rows(path, "SELECT name FROM sqlite_master WHERE type = 'view'")}


def test_execution_analysis_of_a_twap_with_candles_covering_its_window(history_db):
    a = one(history_db, "execution_analysis", "exec-a")
    assert (a["algo"], a["symbol"], a["side"], a["state"], a["completion_reason"]) == (
        "twap", "BTC/USDT", "buy", "completed", "filled")
    assert (a["target_qty"], a["filled_qty"], a["remaining_qty"], a["fill_ratio"]) == (1.0, 1.0, 0.0, 1.0)
    assert (a["trade_date"], a["start_hour_utc"]) == ("2025-06-10", 13)
    assert a["elapsed_seconds"] == 186.0 and a["paused_seconds"] == 30.0  # paused T+70s..T+100s
    # notional 0.25*100010 + 0.25*100040 + 0.2*100080 + 0.3*100110 = 25002.5 + 25010 + 20016 + 30033
    assert a["filled_notional_usdt"] == 100061.5 and a["avg_price"] == 100061.5
    assert a["arrival_price"] == 100000.0
    # IS = (100061.5 - 100000) / 100000 * 10^4 = 6.15 bps
    assert a["implementation_shortfall_bps"] == approx(6.15)
    # the candles opening in [13:00, 13:03:06): typical 100000, 100030, 100060, 100090 with
    # volumes 10, 20, 30, 40 -> VWAP (1,000,000 + 2,000,600 + 3,001,800 + 4,003,600) / 100 = 100060
    # (the 12:59 and 13:04 candles, far off, are outside; the engine's own 100050 loses)
    assert a["market_vwap_source"] == "candles"
    assert a["market_vwap"] == approx(100060.0, abs=1e-9)
    assert a["slippage_vs_vwap_bps"] == approx(1.5 / 100060 * 10000, rel=1e-9)  # 0.14991 bps
    # TWAP benchmark: (100000 + 100030 + 100060 + 100090) / 4 = 100045
    assert a["twap_benchmark"] == approx(100045.0)
    assert a["slippage_vs_twap_bps"] == approx(16.5 / 100045 * 10000, rel=1e-9)
    assert a["window_market_volume"] == 100.0 and a["window_participation"] == approx(0.01)
    # per slice: 0.25/10, 0.25/20, (denied: 0/30), 0.5/40; the average is over slices that traded
    assert a["max_participation"] == approx(0.025)
    assert a["avg_participation"] == approx((0.025 + 0.0125 + 0.0125) / 3)
    assert a["maker_qty"] == approx(0.45) and a["maker_ratio"] == approx(0.45)  # 0.25 + 0.2 maker
    assert a["fees_usdt"] == 31.0  # 5 + 10 + 4 + 12
    assert (a["slices_planned"], a["slices_executed"], a["slices_denied"], a["slices_skipped"],
            a["slices_open"]) == (4, 3, 1, 0, 0)
    # delays 2 s, 4 s, 0 s (the denial), 6 s
    assert a["avg_delay_seconds"] == 3.0 and a["max_delay_seconds"] == 6.0


def test_without_covering_candles_the_engine_vwap_stands_and_sells_sign_the_other_way(history_db):
    b = one(history_db, "execution_analysis", "exec-b")
    assert (b["side"], b["algo"], b["urgency"]) == ("sell", "vwap", "medium")
    # 4 @ 2498 + 6 @ 2497 = 24974 over 10 -> 2497.4; a sell below arrival is a cost:
    # IS = -(2497.4 - 2500) / 2500 * 10^4 = +10.4 bps; vs the engine VWAP 2499: -(2497.4 - 2499)/2499 * 10^4
    assert b["avg_price"] == approx(2497.4) and b["implementation_shortfall_bps"] == approx(10.4)
    assert b["market_vwap_source"] == "engine" and b["market_vwap"] == 2499.0
    assert b["slippage_vs_vwap_bps"] == approx(1.6 / 2499 * 10000, rel=1e-9)
    assert b["twap_benchmark"] is None and b["window_participation"] is None
    assert b["max_participation"] == approx(0.04) and b["avg_participation"] == approx(0.035)
    assert b["maker_ratio"] == 0.0 and b["fees_usdt"] == 5.0
    c = one(history_db, "execution_analysis", "exec-c")
    # 0.1 @ 99990 against 100000: 1 bps better than arrival and than the engine VWAP
    assert c["implementation_shortfall_bps"] == approx(-1.0) and c["slippage_vs_vwap_bps"] == approx(-1.0)
    assert c["market_vwap_source"] == "engine"  # no candles at 15:00


def test_a_running_execution_shows_its_progress_so_far(history_db):
    d = one(history_db, "execution_analysis", "exec-d")
    assert d["state"] == "running" and d["ended_at"] is None and d["elapsed_seconds"] is None
    assert d["fill_ratio"] == approx(0.4) and d["remaining_qty"] == approx(0.6)
    assert d["slices_executed"] == 2 and d["slices_open"] == 3
    assert d["implementation_shortfall_bps"] == approx(0.9901)  # 10/101000 * 10^4, stored to 4 places
    assert d["market_vwap_source"] == "engine" and d["trade_date"] == "2025-06-11"


def test_slice_analysis_has_delay_quantities_liquidity_and_the_risk_decision(history_db):
    s = {r["slice_index"]: r for r in rows(
        history_db, "SELECT * FROM slice_analysis WHERE execution_id = 'exec-a' ORDER BY slice_index")}
    assert [s[i]["delay_seconds"] for i in range(4)] == [2.0, 4.0, 0.0, 6.0]
    assert [s[i]["status"] for i in range(4)] == ["filled", "filled", "denied", "filled"]
    assert [s[i]["risk_decision"] for i in range(4)] == ["approved", "approved", "denied", "approved"]
    assert s[2]["risk_reason"] == "price collar: 250 bps from mid" and s[2]["filled_qty"] == 0.0
    assert [s[i]["planned_qty"] for i in range(4)] == [0.25] * 4
    assert [s[i]["filled_qty"] for i in range(4)] == [0.25, 0.25, 0.0, 0.5]
    assert s[3]["fill_ratio"] == 2.0  # took the denied slice's share too
    # slice 3: (0.2 * 100080 + 0.3 * 100110) / 0.5 = 100098, 0.2 maker + 0.3 taker, fees 4 + 12
    assert s[3]["avg_price"] == 100098.0 and (s[3]["maker_qty"], s[3]["taker_qty"]) == (0.2, 0.3)
    assert s[3]["fee"] == 16.0 and s[3]["client_order_id"] == "exec-a-3-1" and s[3]["attempts"] == 2
    assert s[3]["slippage_bps"] == approx(8 / 100090 * 10000, abs=1e-4)  # vs the mid at decision
    assert [s[i]["market_volume"] for i in range(4)] == [10.0, 20.0, 30.0, 40.0]
    assert [s[i]["participation"] for i in range(4)] == [0.025, 0.0125, 0.0, 0.0125]
    assert (s[0]["maker_qty"], s[1]["taker_qty"]) == (0.25, 0.25)
    d = rows(history_db, "SELECT status, risk_decision FROM slice_analysis WHERE execution_id = 'exec-d' "
                         "ORDER BY slice_index")
    assert [(r["status"], r["risk_decision"]) for r in d] == [("filled", "approved")] * 2 + [("planned", None)] * 3


def test_daily_summary_rolls_up_per_day_symbol_and_algo(history_db):
    got = {(r["trade_date"], r["symbol"], r["algo"]): r for r in rows(
        history_db, "SELECT * FROM daily_execution_summary")}
    assert set(got) == {("2025-06-10", "BTC/USDT", "twap"), ("2025-06-10", "ETH/USDT", "vwap"),
                        ("2025-06-11", "BTC/USDT", "twap")}
    btc = got[("2025-06-10", "BTC/USDT", "twap")]  # exec-a and exec-c
    assert (btc["executions"], btc["completed"]) == (2, 2)
    assert btc["filled_qty"] == approx(1.1) and btc["filled_notional_usdt"] == approx(100061.5 + 9999)
    assert btc["avg_is_bps"] == approx((6.15 - 1.0) / 2)
    assert btc["notional_weighted_is_bps"] == approx((6.15 * 100061.5 - 1.0 * 9999) / 110060.5)
    assert btc["avg_slippage_vs_vwap_bps"] == approx((1.5 / 100060 * 10000 - 1.0) / 2)
    assert btc["fees_usdt"] == 32.0 and btc["maker_ratio"] == approx(0.45 / 1.1)
    running = got[("2025-06-11", "BTC/USDT", "twap")]
    assert (running["executions"], running["completed"]) == (1, 0)


async def test_candles_that_do_not_cover_the_window_are_not_used(tmp_path):
    path = tmp_path / "partial.db"
    migrated_sqlite(path)
    await build(path, candles=[c for c in CANDLES if c[0] in (0, 3)])  # 2 of the 4 minutes
    a = one(path, "execution_analysis", "exec-a")
    assert a["market_vwap_source"] == "engine" and a["market_vwap"] == 100050.0
    assert a["twap_benchmark"] is None and a["window_market_volume"] is None


def test_migration_0004_upgrade_downgrade_upgrade_keeps_the_data(tmp_path):
    path = tmp_path / "m.db"
    migrate.upgrade(path)
    asyncio.run(build(path))
    assert ANALYSIS_VIEWS | {"router_metrics", "twap_executions"} <= views(path)
    migrate.downgrade(path, "0003")
    assert migrate.current_revision(path) == "0003"
    assert not ANALYSIS_VIEWS & views(path)
    assert {"router_metrics", "twap_executions", "twap_slice_history"} <= views(path)
    migrate.upgrade(path)
    assert ANALYSIS_VIEWS <= views(path)
    assert one(path, "execution_analysis", "exec-a")["slippage_vs_vwap_bps"] == approx(1.5 / 100060 * 10000)


async def test_views_agree_with_the_engine_on_a_real_twap(db_path):
    # flat market at 100000 (high/low one tick around it), 10 BTC a minute; taker only
    btc = series(HISTORY_DAYS + 1, flat("100000"), flat("10"))
    start = T0 + timedelta(days=HISTORY_DAYS, hours=1)
    config = parse_config({"router": {"maker_first": False}})
    async with harness(db_path, config, start=start, venue=lambda clock: venue(clock, btc)) as h:
        execution_id = await h.supervisor.submit(h.request(qty="1", duration="5m"))
        await h.supervisor.wait_all()
        row = await h.execution_row(execution_id)
        await CandleCache(h.engine).save("BTC/USDT", btc.range(start - timedelta(minutes=5),
                                                               start + timedelta(minutes=10)))
        fills = await h.rows(__import__("genesis.store.tables", fromlist=["fills"]).fills)
    a = one(db_path, "execution_analysis", execution_id)
    assert a["state"] == "completed" and a["filled_qty"] == 1.0
    assert a["implementation_shortfall_bps"] == approx(float(row["implementation_shortfall_bps"]))
    # typical price (100000.01 + 99999.99 + 100000) / 3 = 100000 every minute
    assert a["market_vwap_source"] == "candles" and a["market_vwap"] == approx(100000.0, rel=1e-12)
    assert a["twap_benchmark"] == approx(100000.0, rel=1e-12)
    assert a["slippage_vs_vwap_bps"] == approx(float(row["slippage_vs_vwap_bps"]), abs=1e-4)
    assert a["maker_ratio"] == 0.0 and a["fees_usdt"] == approx(float(sum(f["fee"] for f in fills)))
    minutes = len([m for m in range(10) if start + timedelta(minutes=m) < row["ended_at"]])
    assert a["window_market_volume"] == 10.0 * minutes
    slices = rows(db_path, "SELECT * FROM slice_analysis WHERE execution_id = ?", execution_id)
    assert a["avg_participation"] == approx(sum(s["participation"] for s in slices) / len(slices))
    assert all(s["risk_decision"] == "approved" and s["taker_qty"] == s["filled_qty"] for s in slices)
    assert sum(s["filled_qty"] for s in slices) == approx(1.0)
    assert D(str(a["avg_price"])) == row["avg_price"]
