"""One venue contract, two implementations: the in-process SimulatedVenue, and CcxtVenue (the
real ccxt binance client) talking HTTP to the paper exchange on a free local port. Both run
the same synthetic market on a VirtualClock and must pass the same assertions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from typing import AsyncIterator

import pytest

from genesis.clock import VirtualClock
from genesis.domain.orders import (Liquidity, OrderReport, OrderRequest, OrderStatus, OrderType,
                                   Side, TimeInForce)
from genesis.paper.server import PaperServer, start_paper_exchange
from genesis.venue.base import (Candle, DuplicateOrderError, PermanentVenueError, Venue)
from genesis.venue.candles import CandleSeries
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.order_budget import OrderBudget
from genesis.venue.sim import SimulatedVenue

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
BTC = "BTC/USDT"
FLAT = ("100", "100.02", "99.99", "100", "10")  # mid 100: bid 99.99, ask 100.01, nothing crosses
DIP = ("100", "100.02", "99.50", "100", "10")  # trades through resting buys above 99.50
ROWS = [FLAT, FLAT, DIP, FLAT, FLAT, DIP, FLAT, FLAT, FLAT, FLAT]
KEY, SECRET = "contract-key-0001", "contract-secret-0001"
FAST = {"rateLimit": 1, "timeout_on_exit": 0}


def minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def market_series() -> dict[str, CandleSeries]:
    return {BTC: CandleSeries.from_candles(
        [Candle(minute(i), *(D(x) for x in row)) for i, row in enumerate(ROWS)], symbol=BTC)}


@dataclass
class Env:
    venue: Venue
    clock: VirtualClock
    paper: PaperServer | None = None


@pytest.fixture(params=["sim", "ccxt-paper", "ccxt-paper-streams"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    clock = VirtualClock(minute(0.5))
    if request.param == "sim":
        yield Env(SimulatedVenue(clock, market_series()), clock)
        return
    paper = await start_paper_exchange(state_path=tmp_path / "paper.db", key=KEY, secret=SECRET,
                                       clock=clock, series=market_series())
    kind = StreamingCcxtVenue if request.param == "ccxt-paper-streams" else CcxtVenue
    venue = kind("binance", credentials=Credentials(KEY, SECRET), exchange_url=paper.url,
                 clock=clock, budget=OrderBudget(), config=FAST)
    try:
        yield Env(venue, clock, paper)
    finally:
        await venue.close()
        await paper.stop()


def order(cid: str, side: Side, qty: str, price: str | None = None,
          tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    return OrderRequest(cid, BTC, side, kind, D(qty), D(price) if price else None, tif)


def filled(report: OrderReport) -> D:
    return sum((f.qty for f in report.fills), D(0))


# ---------------------------------------------------------------------- the contract
async def test_rules_and_book_top(env: Env) -> None:
    rules = (await env.venue.instruments())[BTC]
    assert (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
        D("0.01"), D("0.00001"), D("0.00001"), D("5"))
    top = await env.venue.book_top(BTC)
    assert (top.bid, top.ask) == (D("99.99"), D("100.01"))


async def test_market_order_fills_completely_as_taker(env: Env) -> None:
    report = await env.venue.place_order(order("gaaaaaaaaaaaa-0-0", Side.BUY, "1"))
    assert report.status is OrderStatus.FILLED and report.filled_qty == filled(report) == D("1")
    (fill,) = report.fills
    # ask 100.01 moved by 10 bps * sqrt(1 / 10) = 3.16 bps, rounded up to the tick
    assert (fill.price, fill.fee, fill.fee_asset, fill.liquidity) == (
        D("100.05"), D("0.10005"), "USDT", Liquidity.TAKER)
    assert fill.client_order_id == "gaaaaaaaaaaaa-0-0" and fill.timestamp == env.clock.now()


async def test_limit_ioc_fills_or_expires(env: Env) -> None:
    hit = await env.venue.place_order(order("gaaaaaaaaaaaa-1-0", Side.SELL, "0.5", "99.98",
                                            TimeInForce.IOC))
    assert (hit.status, filled(hit)) == (OrderStatus.FILLED, D("0.5"))
    assert hit.fills[0].price >= D("99.98")
    miss = await env.venue.place_order(order("gaaaaaaaaaaaa-2-0", Side.BUY, "0.5", "99.00",
                                             TimeInForce.IOC))
    assert (miss.status, miss.filled_qty, miss.fills) == (OrderStatus.CANCELLED, D(0), ())


async def test_post_only_rests_then_fills_when_the_market_trades_through(env: Env) -> None:
    placed = await env.venue.place_order(order("gaaaaaaaaaaaa-3-0", Side.BUY, "1", "99.90",
                                               TimeInForce.POST_ONLY))
    assert (placed.status, placed.filled_qty) == (OrderStatus.OPEN, D(0))
    env.clock.advance_to(minute(2))  # minute 1 did not go below 99.99
    assert (await env.venue.fetch_order(BTC, "gaaaaaaaaaaaa-3-0")).status is OrderStatus.OPEN
    env.clock.advance_to(minute(3))  # minute 2 dipped to 99.50
    report = await env.venue.fetch_order(BTC, "gaaaaaaaaaaaa-3-0")
    assert (report.status, report.filled_qty, filled(report)) == (OrderStatus.FILLED, D(1), D(1))
    assert {(f.price, f.liquidity) for f in report.fills} == {(D("99.90"), Liquidity.MAKER)}
    assert all(minute(2) <= f.timestamp < minute(3) for f in report.fills)


async def test_post_only_that_would_take_is_rejected(env: Env) -> None:
    report = await env.venue.place_order(order("gaaaaaaaaaaaa-4-0", Side.BUY, "1", "100.01",
                                               TimeInForce.POST_ONLY))
    assert (report.status, report.filled_qty, report.fills) == (OrderStatus.REJECTED, D(0), ())
    assert "post-only order would take liquidity" in (report.reason or "")


async def test_partial_fills_then_cancel_keeps_them(env: Env) -> None:
    await env.venue.place_order(order("gaaaaaaaaaaaa-5-0", Side.BUY, "4", "99.90"))
    env.clock.advance_to(minute(3))  # one dip minute: 25% of 10 BTC
    partial = await env.venue.fetch_order(BTC, "gaaaaaaaaaaaa-5-0")
    assert (partial.status, partial.filled_qty, filled(partial)) == (
        OrderStatus.PARTIALLY_FILLED, D("2.5"), D("2.5"))
    env.clock.advance_to(minute(4))
    cancelled = await env.venue.cancel_order(BTC, "gaaaaaaaaaaaa-5-0")
    assert (cancelled.status, cancelled.filled_qty, filled(cancelled)) == (
        OrderStatus.CANCELLED, D("2.5"), D("2.5"))
    assert sorted(f.trade_id for f in cancelled.fills) == sorted(f.trade_id for f in partial.fills)
    env.clock.advance_to(minute(6))  # the next dip must not fill a cancelled order
    again = await env.venue.fetch_order(BTC, "gaaaaaaaaaaaa-5-0")
    assert (again.status, again.filled_qty) == (OrderStatus.CANCELLED, D("2.5"))


async def test_cancel_and_find_by_client_id(env: Env) -> None:
    placed = await env.venue.place_order(order("gaaaaaaaaaaaa-6-0", Side.SELL, "1", "101"))
    found = await env.venue.fetch_order(BTC, "gaaaaaaaaaaaa-6-0")
    assert (found.venue_order_id, found.status) == (placed.venue_order_id, OrderStatus.OPEN)
    cancelled = await env.venue.cancel_order(BTC, "gaaaaaaaaaaaa-6-0")
    assert (cancelled.venue_order_id, cancelled.status, cancelled.filled_qty) == (
        placed.venue_order_id, OrderStatus.CANCELLED, D(0))
    twice = await env.venue.cancel_order(BTC, "gaaaaaaaaaaaa-6-0")  # already final: unchanged
    assert (twice.status, twice.venue_order_id) == (OrderStatus.CANCELLED, placed.venue_order_id)


async def test_unknown_client_id_is_not_found(env: Env) -> None:
    for report in (await env.venue.fetch_order(BTC, "gffffffffffff-9-9"),
                   await env.venue.cancel_order(BTC, "gffffffffffff-9-9")):
        assert (report.status, report.venue_order_id, report.filled_qty) == (
            OrderStatus.NOT_FOUND, None, D(0))


async def test_min_notional_and_funds_are_permanent_rejections(env: Env) -> None:
    with pytest.raises(PermanentVenueError, match="(?i)notional"):
        await env.venue.place_order(order("gaaaaaaaaaaaa-7-0", Side.BUY, "0.01", "100"))
    with pytest.raises(PermanentVenueError, match="(?i)insufficient"):
        await env.venue.place_order(order("gaaaaaaaaaaaa-8-0", Side.SELL, "1000", "100"))
    for cid in ("gaaaaaaaaaaaa-7-0", "gaaaaaaaaaaaa-8-0"):  # nothing was recorded
        assert (await env.venue.fetch_order(BTC, cid)).status is OrderStatus.NOT_FOUND


async def test_reused_client_id_of_an_open_order_is_a_duplicate(env: Env) -> None:
    """Both venues refuse an open order's id (the simulated venue refuses any id it has seen;
    the paper exchange, as Binance, takes a filled order's id again: tests/test_resend_fence.py)."""
    first = await env.venue.place_order(order("gaaaaaaaaaaaa-9-0", Side.SELL, "0.1", "1000"))
    assert first.status is OrderStatus.OPEN
    with pytest.raises(DuplicateOrderError):
        await env.venue.place_order(order("gaaaaaaaaaaaa-9-0", Side.SELL, "0.1", "1000"))
    again = await env.venue.fetch_order(BTC, "gaaaaaaaaaaaa-9-0")
    assert (again.status, again.venue_order_id, again.filled_qty) == (OrderStatus.OPEN, first.venue_order_id, D(0))


async def test_equity_and_closed_candles(env: Env) -> None:
    assert await env.venue.equity_usdt() == D("10010000")  # 10M USDT + 100 BTC at 100
    env.clock.advance_to(minute(3.5))
    candles = await env.venue.candles(BTC, minute(0), minute(10))
    assert [c.open_time for c in candles] == [minute(0), minute(1), minute(2)]
    assert (candles[2].low, candles[2].volume) == (D("99.50"), D("10"))
