"""StreamingCcxtVenue against the paper exchange through the unmodified ccxt.pro client: book
top, candles and fills come from the streams (no REST for them while the streams are up);
one subscription per symbol however many users; REST while a stream is down."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal as D
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from genesis.clock import VirtualClock
from genesis.domain.orders import OrderStatus, Side, TimeInForce
from genesis.config import parse_config
from genesis.paper.faults import StreamFaults
from genesis.paper.local import free_port
from genesis.paper.server import PaperServer
from genesis.requests import validate_submit
from genesis.venue.base import RetryableVenueError
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.market_hub import USER_ORDERS_KEPT, Backoff, SymbolFeed, UserFeed
from genesis.venue.order_budget import OrderBudget
from tests.test_fault_matrix import engine_on, exchange_orders, order_posts
from tests.test_paper_exchange import start
from tests.test_paper_streams import moving_series
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, minute, order

WAIT_SECONDS = 10.0
MAKER_FIRST = parse_config({})


def paths(server: PaperServer) -> list[str]:
    return [row[0] for row in server.exchange.store.db.execute("SELECT path FROM requests")]


async def until(predicate: Any, what: str) -> None:
    for _ in range(int(WAIT_SECONDS / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def streaming(tmp_path: Path) -> AsyncIterator[tuple[PaperServer, StreamingCcxtVenue,
                                                           VirtualClock]]:
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock, series=moving_series())
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(),
                               config=FAST, fill_wait_seconds=WAIT_SECONDS)
    try:
        yield server, venue, clock
    finally:
        await venue.close()
        await server.stop()


async def test_book_top_and_candles_come_from_the_streams(streaming: Any) -> None:
    server, venue, clock = streaming
    await venue.instruments()
    await venue.book_top(BTC)  # subscribes; REST until subscribed
    await until(lambda: venue.hub.feed(BTC).book_state.up, "the subscription")
    for n in range(1, 4):
        clock.advance_to(minute(n + 0.5))
        await until(lambda n=n: minute(n) .timestamp() * 1000 in {
            float(t) for t in venue.hub.feed(BTC).klines}, f"the kline of minute {n}")
    await venue.book_top(BTC)  # a pushed ticker, or (quiet book) the REST snapshot kept once up
    before = paths(server)
    top = await venue.book_top(BTC)
    assert top.bid < top.ask and top.timestamp == clock.now()
    candles = await venue.candles(BTC, minute(1), minute(3))
    assert [c.open_time for c in candles] == [minute(1), minute(2)]
    assert (candles[0].open, candles[0].close) == (D(101), D(102))  # moving_series row 1
    assert paths(server) == before  # no REST request for either


async def test_resting_order_fills_come_from_the_user_stream(streaming: Any) -> None:
    server, venue, clock = streaming
    await venue.instruments()
    top = await venue.book_top(BTC)
    placed = await venue.place_order(order("gaaaaaaaaaaaa-1-0", Side.BUY, "1",
                                           str(top.bid), TimeInForce.POST_ONLY))
    assert placed.status is OrderStatus.OPEN
    clock.advance_to(minute(3))  # the market trades through the bid
    report = await venue.fetch_order(BTC, "gaaaaaaaaaaaa-1-0")
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D(1))
    assert sum((f.qty for f in report.fills), D(0)) == D(1)
    assert "/api/v3/myTrades" not in paths(server)


async def test_one_subscription_per_symbol_however_many_users(streaming: Any) -> None:
    server, venue, clock = streaming
    await venue.instruments()
    await asyncio.gather(*(venue.book_top(BTC) for _ in range(20)),
                         *(venue.candles(BTC, minute(0), minute(1)) for _ in range(20)))
    assert venue.hub.subscriptions == {f"{BTC} bookTicker": 1, f"{BTC} trade": 1,
                                       f"{BTC} kline_1m": 1}
    await until(lambda: venue.hub.feed(BTC).book_state.up, "the stream")
    subscribed = [s for conn in server.app.streams.connections for s in conn.streams]
    assert sorted(subscribed) == ["btcusdt@bookTicker", "btcusdt@kline_1m", "btcusdt@trade"]


# ---------------------------------------------------------------------- outages, through the runner
async def test_streams_dropping_mid_execution_lose_and_double_nothing(tmp_path: Path) -> None:
    """Market and user streams disconnect on 30 % of pushed messages while a maker-first TWAP
    runs: the venue reads over REST while they are down and the orders' fills again after
    each gap; the execution fills its quantity, each fill recorded once, each child order sent
    once (the exchange's own orders, trades and request audit)."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    server.set_stream_faults(StreamFaults(p_disconnect=0.3, seed=3))
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(),
                               timeout_ms=2000, config=FAST, fill_wait_seconds=1.0)
    venue.hub.backoff = Backoff(base_seconds=0.01, max_seconds=0.05)
    await venue.instruments()
    twap = validate_submit(symbol=BTC, side="buy", qty="2", algo="twap", duration="8m", slices=4,
                           limit_price=None, request_id=None, instruments=SIM_INSTRUMENTS,
                           config=MAKER_FIRST)
    try:
        async with engine_on(tmp_path, clock, venue, MAKER_FIRST) as (store, supervisor, _):
            execution_id = await supervisor.submit(twap)
            await supervisor.wait_all()
            agg = await store.load(execution_id)
        trades = [(str(r[0]), D(str(r[1]))) for r in server.exchange.store.db.execute(
            "SELECT trade_id, qty FROM trades")]
        posts = [c for c, status, _, _ in order_posts(server) if status == 200]
        orders = exchange_orders(server)
        disconnects = server.app.stream_faults.counts.get("disconnect", 0)
    finally:
        await venue.close()
        await server.stop()
    assert (agg.state.value, agg.filled_qty) == ("completed", D(2))
    assert sorted(agg.trade_ids) == sorted(tid for tid, _ in trades)  # each fill once
    assert sum(q for _, q in trades) == D(2)
    assert len(posts) == len(set(posts)) == len(orders)  # each child order sent once
    assert disconnects > 0


async def test_market_stream_down_reads_rest_then_reports_the_market_unavailable(
        tmp_path: Path) -> None:
    """The market streams cannot connect: the book top is read over REST until the stream has
    been down for ``unavailable_after_seconds``, then the venue refuses with a retryable error
    naming the outage (the engine holds new slices and retries)."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(),
                               config=FAST, unavailable_after_seconds=0.5)
    venue.ex.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{free_port()}/ws"  # nothing listens
    venue.hub.backoff = Backoff(base_seconds=0.01, max_seconds=0.05)
    try:
        top = await venue.book_top(BTC)
        assert (top.bid, top.ask) == (D("99.99"), D("100.01"))  # over REST
        await until(lambda: venue.hub.feed(BTC).book_state.down_for() > 0.5, "the outage")
        with pytest.raises(RetryableVenueError, match="market data stream down for"):
            await venue.book_top(BTC)
        assert venue.hub.feed(BTC).book is None
    finally:
        await venue.close()
        await server.stop()


async def test_request_weight_is_the_exchanges_count_shared_by_the_account(streaming: Any) -> None:
    server, venue, clock = streaming
    await venue.instruments()  # exchangeInfo: 20
    await venue.book_top(BTC)  # depth (limit 5): 5, the stream has no book yet
    await venue.place_order(order("gaaaaaaaaaaaa-2-0", Side.BUY, "0.1"))  # POST order: 1
    assert venue.request_weight() == (26.0, 6000.0)
    assert (venue.weight.order_count_10s, venue.weight.order_count_1d) == (1, 1)
    other = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock)
    assert other.weight is venue.weight  # every venue on the account counts into one
    await other.close()


def test_a_minute_counts_as_closed_only_when_its_connection_saw_it_end() -> None:
    """Kline snapshots are cumulative: minute M is closed once a later minute arrived on the
    same connection. After a reconnect that skipped M's end, M stays open (read over REST)."""
    feed = SymbolFeed(BTC)
    m = [60_000 * i for i in range(5)]
    feed.on_klines([[m[0], 1, 1, 1, 1, 1]], [[m[0], 1, 1, 1, 1, 1]], reconnected=False)
    assert feed.closed == set()
    cache = [[m[0], 1, 2, 1, 2, 3], [m[1], 2, 2, 2, 2, 1]]
    feed.on_klines(cache[1:], cache, reconnected=False)
    assert feed.closed == {m[0]} and feed.klines[m[0]][5] == 3
    # the connection drops during minute 1 and comes back in minute 3
    cache += [[m[3], 4, 4, 4, 4, 1]]
    feed.on_klines(cache[2:], cache, reconnected=True)
    assert feed.closed == {m[0]}  # minute 1's end was not seen
    cache += [[m[4], 5, 5, 5, 5, 1]]
    feed.on_klines(cache[3:], cache, reconnected=False)
    assert feed.closed == {m[0], m[3]}


def test_reconnect_backoff_grows_and_is_jittered() -> None:
    backoff, rng = Backoff(base_seconds=0.5, max_seconds=30.0), random.Random(1)
    delays = [[backoff.delay(attempt, rng) for _ in range(200)] for attempt in (0, 3, 10)]
    assert all(0 <= d <= cap for ds, cap in zip(delays, (0.5, 4.0, 30.0)) for d in ds)
    assert all(len({round(d, 6) for d in ds}) > 150 for ds in delays)  # spread, not one value


def test_streams_option_is_refused_for_the_simulated_venue(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from genesis.cli import main

    result = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "g.db"), "--streams"])
    assert result.exit_code == 2 and "--streams" in result.output
    assert "only for --venue ccxt:<exchange id>" in result.output


def test_user_feed_keeps_a_bounded_number_of_orders() -> None:
    user = UserFeed()
    user.on_orders([{"id": str(i), "clientOrderId": f"c{i}"} for i in range(USER_ORDERS_KEPT + 5)])
    assert len(user.orders) == len(user.by_client_id) == USER_ORDERS_KEPT
    assert "0" not in user.orders and str(USER_ORDERS_KEPT + 4) in user.orders
