"""``genesis report``: the TCA JSON on the hand-built history (tests/analytics_history.py),
the theoretical best execution, the PNG chart and the HTML file."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.analytics.data import SOURCE_SHIPPED, load_history
from genesis.analytics.report import best_execution
from genesis.analytics.sql import readonly_engine
from genesis.cli import main
from genesis.domain import benchmarks
from genesis.domain import events as ev
from genesis.domain.orders import Side
from genesis.venue.candles import shipped_candles
from tests import analytics_history as hist
from tests.analytics_history import T, make_history_db
from tests.migrated import migrated_sqlite

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_history_db(tmp_path_factory)


def report(db, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["report", "--db", str(db), *args], catch_exceptions=False)
    return result


def test_report_json_equals_the_hand_computed_figures(history_db):
    before = hashlib.sha256(history_db.read_bytes()).hexdigest()
    result = report(history_db, "exec-a", "--json", "--no-store")
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert r["state"] == "completed" and r["completion_reason"] == "filled"
    assert r["window"] == {"start": "2025-06-10T13:00:00+00:00", "end": "2025-06-10T13:03:06+00:00",
                           "planned_end": "2025-06-10T13:04:00+00:00", "elapsed_seconds": 186.0,
                           "paused_seconds": 30.0, "held_seconds": 0.0}
    assert r["market_data"] == {"source": "candles table", "candles": 4, "window_volume": "100.00000000"}
    assert r["quantities"]["filled_qty"] == "1.00" and r["quantities"]["fill_ratio"] == "1.000000"
    assert r["prices"] == {
        "arrival_price": "100000.00000000",
        "avg_price": "100061.50000000",  # 100061.5 notional over 1 BTC
        "market_vwap": "100060.00000000",  # 10,006,000 / 100 (candles 13:00..13:03)
        "market_vwap_source": "candles table",
        "twap_benchmark": "100045.00000000",  # (100000 + 100030 + 100060 + 100090) / 4
        "engine_market_vwap": "100050.00000000",
    }
    assert r["costs_bps"] == {
        "implementation_shortfall": "6.1500",  # 61.5 / 100000 * 10^4
        "slippage_vs_vwap": "0.1499",  # 1.5 / 100060 * 10^4 = 0.149910
        "slippage_vs_twap": "1.6493",  # 16.5 / 100045 * 10^4 = 1.649258
        # fills in minutes with typical 100000 (0.25), 100030 (0.25), 100090 (0.5): 100052.5
        "timing": "5.2500",  # (100052.5 - 100000) / 100000 * 10^4
        "execution_cost": "0.9000",  # (100061.5 - 100052.5) / 100000 * 10^4; 5.25 + 0.9 = 6.15
        "fees": "3.0981",  # 31 / 100061.5 * 10^4 = 3.09809
    }
    assert r["fees_usdt"] == "31"
    assert r["liquidity"] == {"maker_qty": "0.45", "taker_qty": "0.55", "maker_ratio": "0.450000"}
    assert r["participation"] == {"max": "0.025000", "avg": "0.016667", "window": "0.010000", "cap": "0.10",
                                  "cap_overridden_slices": 0}
    assert r["slices"] == {"planned": 4, "executed": 3, "denied": 1, "skipped": 0, "unfilled": 0,
                           "failed": 0, "open": 0, "not_needed": 0, "expired": 0}
    # at 13:01, 13:02, 13:03 and the end 13:03:06 we had filled 0.25, 0.5, 0.5, 1.0 of the target;
    # the plan 0.5, 0.75, 1, 1 -> mean |diff| (0.25 + 0.25 + 0.5 + 0) / 4 = 0.25;
    # the market's volume share 0.1, 0.3, 0.6, 1 -> (0.15 + 0.2 + 0.1 + 0) / 4 = 0.1125
    assert r["timing"] == {"avg_delay_seconds": "3.000", "max_delay_seconds": "6.000",
                           "schedule_tracking_error": "0.250000", "volume_curve_tracking_error": "0.112500"}
    assert r["best_execution"] == {
        "best_price": "99980.00000000",  # lowest low of the window
        "avg_vs_best_bps": "8.1516",  # 81.5 / 99980 * 10^4 = 8.15163
        # 10% of the cheapest minute (13:00, 10 BTC at typical 100000) already holds 1 BTC
        "capped_best_price": "100000.00000000", "capped_best_qty": "1.00", "capped_best_feasible": True,
        "avg_vs_capped_best_bps": "6.1500", "participation_cap": "0.10",
    }
    assert hashlib.sha256(history_db.read_bytes()).hexdigest() == before  # --no-store: read-only


def started_mid_minute() -> list[list]:  # type: ignore[type-arg]
    """``exec-e``: TWAP buy 1 BTC started at 13:00:30 (arrival 100010, not the 13:00 candle's
    typical 100000): 0.5 @ 100020 at 13:00:40, in the start minute, and 0.5 @ 100050 at
    13:01:40, in the 13:01 minute (typical 100030); the window [13:00:30, 13:01:40) holds the
    13:01 candle only."""
    e, t0 = "exec-e", 30
    c0, o0 = hist._order(e, hist.s(t0), 0, 0, "0.5", "100010")
    c1, o1 = hist._order(e, hist.s(t0 + 60), 1, 0, "0.5", "100030")
    return [
        [ev.ExecutionSubmitted(e, hist.s(t0), "req-e", hist.BTC, "buy", D("1"), "twap", 120, 2),
         hist._started(e, hist.s(t0), "100010", [(0, "0.5"), (60, "0.5")], hist.s(t0 + 120))],
        [o0], hist._fill(e, c0, hist.s(t0 + 10), 0, "e1", "0.5", "100020", "5", "taker")
        + [hist._slice(e, hist.s(t0 + 10), 0, 2, "filled", "0.5", "0.5", "100020", "100010", "5", "10", "0.05",
                       taker="0.5", scheduled=hist.s(t0))],
        [o1], hist._fill(e, c1, hist.s(t0 + 70), 1, "e2", "0.5", "100050", "5", "taker")
        + [hist._slice(e, hist.s(t0 + 70), 1, 2, "filled", "0.5", "0.5", "100050", "100030", "5", "20", "0.025",
                       taker="0.5", scheduled=hist.s(t0 + 60))],
        [ev.TwapCompleted(e, hist.s(t0 + 70), D("1"), D("0"), D("100035"), D("100010"), D("2.4998"), D("10"),
                          "filled", D("100030"), D("0.4999"))],
    ]


def test_a_fill_in_the_start_minute_is_measured_against_arrival(tmp_path):
    path = tmp_path / "mid-minute.db"
    migrated_sqlite(path)
    asyncio.run(hist.build(path, executions=(started_mid_minute,)))
    r = json.loads(report(path, "exec-e", "--json", "--no-store").output)
    assert r["market_data"]["candles"] == 1  # 13:01; the 13:00 candle opened before the start
    assert r["costs_bps"]["implementation_shortfall"] == "2.4998"  # (100035 - 100010) / 100010 * 10^4
    # market price of the fills' minutes: arrival 100010 for 13:00 (the start minute), 100030
    # for 13:01: (0.5 * 100010 + 0.5 * 100030) / 1 = 100020
    assert r["costs_bps"]["timing"] == "0.9999"  # (100020 - 100010) / 100010 * 10^4 = 0.99990
    assert r["costs_bps"]["execution_cost"] == "1.4999"  # (100035 - 100020) / 100010 * 10^4 = 1.49985


def test_capped_best_execution_takes_the_cheapest_minutes_first(history_db):
    engine = readonly_engine(history_db)
    try:
        h = load_history(engine, "exec-a")
    finally:
        engine.dispose()
    # cap 2%: 0.2 @ 100000, 0.4 @ 100030, then 0.4 of the 0.6 available @ 100060
    # (20000 + 40012 + 40024) / 1 = 100036
    best = best_execution(Side.BUY, h.candles, D("1"), D("0.02"))
    assert best["capped_best_price"] == D("100036") and best["capped_best_feasible"] is True
    # cap 0.5%: only 0.05 + 0.1 + 0.15 + 0.2 = 0.5 BTC available; its price
    # (5000 + 10003 + 15009 + 20018) / 0.5 = 100060
    best = best_execution(Side.BUY, h.candles, D("1"), D("0.005"))
    assert (best["capped_best_price"], best["capped_best_qty"], best["capped_best_feasible"]) == (
        D("100060"), D("0.5"), False)
    # a seller wants the dearest minutes and the highest high
    best = best_execution(Side.SELL, h.candles, D("1"), D("0.02"))
    assert best["best_price"] == D("100120")
    # 0.8 @ 100090 then 0.2 @ 100060: (80072 + 20012) / 1
    assert best["capped_best_price"] == D("100084")


def test_without_candles_in_the_table_the_report_uses_the_shipped_sim_candles(history_db):
    result = report(history_db, "exec-b", "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    window = shipped_candles("ETH/USDT").range(T + timedelta(hours=1), T + timedelta(hours=1, seconds=62))
    assert len(window) == 2 and r["market_data"]["source"] == SOURCE_SHIPPED
    vwap = benchmarks.market_vwap(window)
    assert r["prices"]["market_vwap"] == str(vwap.quantize(D("0.00000001")))
    assert r["prices"]["engine_market_vwap"] == "2499.00000000"
    assert r["costs_bps"]["implementation_shortfall"] == "10.4000"  # -(2497.4 - 2500) / 2500 * 10^4
    expected = (-(D("2497.4") - vwap) / vwap * 10000).quantize(D("0.0001"))
    assert r["costs_bps"]["slippage_vs_vwap"] == str(expected)
    assert r["best_execution"]["best_price"] == str(max(c.high for c in window).quantize(D("0.00000001")))


def test_report_of_a_running_execution_and_of_an_unknown_id(history_db):
    r = json.loads(report(history_db, "exec-d", "--json").output)
    assert r["state"] == "running" and r["quantities"]["filled_qty"] == "0.4"
    assert r["window"]["end"] == "2025-06-11T13:01:01+00:00"  # its latest event so far
    assert r["slices"]["open"] == 3 and r["costs_bps"]["implementation_shortfall"] == "0.9901"
    result = CliRunner().invoke(main, ["report", "--db", str(history_db), "nope"])
    assert result.exit_code == 1 and "no execution 'nope'" in result.output


def test_plot_writes_a_png_chart(history_db, tmp_path):
    out = tmp_path / "tca.png"
    result = report(history_db, "exec-a", "--plot", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 30_000  # two panels of lines, not an empty canvas
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.size == (1100, 800)  # 11 x 8 inches at 100 dpi
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # drawn on, not blank
    assert "implementation_shortfall" in result.output and f"chart written to {out}" in result.output


def test_html_embeds_the_chart_and_the_numbers(history_db, tmp_path):
    out = tmp_path / "tca.html"
    result = report(history_db, "exec-a", "--html", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    match = re.search(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match is not None
    assert base64.b64decode(match.group(1))[:8] == PNG_SIGNATURE
    for figure in ("6.1500", "0.1499", "100060.00000000", "8.1516", "candles table"):
        assert figure in page
    assert "<script" not in page
