"""The streaming ccxt venue through the paper exchange's stream faults, with the unmodified
ccxt.pro client: the user data stream reconciled at once when it reconnects, an execution
through disconnects, duplicated and reordered events, and silent stalls detected."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

from genesis.clock import VirtualClock
from genesis.domain.orders import OrderStatus, Side, TimeInForce
from genesis.paper.faults import StreamFaults
from genesis.requests import validate_submit
from genesis.venue.candles import to_epoch_ms
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.market_hub import Backoff
from genesis.venue.order_budget import OrderBudget
from tests.test_ccxt_stream import MAKER_FIRST, paths, streaming, until  # noqa: F401 (fixture)
from tests.test_ccxt_stream_volume import collapsing_series, tape_volume
from tests.test_fault_matrix import engine_on, exchange_orders, order_posts
from tests.test_paper_exchange import start
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, minute, order

FAST_BACKOFF = Backoff(base_seconds=0.01, max_seconds=0.05)


def exchange_trades(server: Any) -> dict[str, D]:
    return {str(tid): D(str(q)) for tid, q in server.exchange.store.db.execute(
        "SELECT trade_id, qty FROM trades")}


async def test_user_stream_reconnect_reconciles_orders_and_fills_at_once(streaming: Any) -> None:
    """The resting order fills while every stream message is lost: when the user stream is
    back, its order (by client order id) and its fills are read over REST right away, before
    anything asks for them, and merged by trade id; the order's report then comes from the
    stream without another request."""
    server, venue, clock = streaming
    venue.hub.backoff = FAST_BACKOFF
    await venue.instruments()
    top = await venue.book_top(BTC)
    cid = "gaaaaaaaaaaaa-7-0"
    placed = await venue.place_order(order(cid, Side.BUY, "1", str(top.bid), TimeInForce.POST_ONLY))
    assert placed.status is OrderStatus.OPEN and placed.venue_order_id is not None
    user = venue.hub.user
    await until(lambda: user.healthy, "the user stream")
    server.set_stream_faults(StreamFaults(p_disconnect=1.0))  # every pushed message: the socket closes
    clock.advance_to(minute(3))  # the market trades through the bid
    await until(lambda: exchange_trades(server) and user.trades_state.reconnects >= 1,
                "the fill, its events lost with the connection")
    server.set_stream_faults(StreamFaults())
    await until(lambda: sum((D(str(t["amount"])) for t in user.trades.get(
        placed.venue_order_id, {}).values()), D(0)) == D(1), "the reconciliation")
    assert set(user.trades[placed.venue_order_id]) == set(exchange_trades(server))
    assert user.orders[placed.venue_order_id]["status"] == "closed"
    assert venue.reconciler.runs >= 1
    # the last disconnect may still be reconnecting: wait until the stream is up and reconciled
    # as of its latest reconnect (a fetch behind it rightly reads REST)
    await until(lambda: user.healthy and venue.placed_at_reconnects.get(placed.venue_order_id)
                == user.trades_state.reconnects, "the latest reconnect reconciled")
    reads = paths(server)
    assert "/api/v3/order" in reads and "/api/v3/myTrades" in reads
    report = await venue.fetch_order(BTC, cid)
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D(1))
    assert sum((f.qty for f in report.fills), D(0)) == D(1)
    assert paths(server) == reads  # from the reconciled stream, no further request


async def test_execution_through_disconnects_duplicates_and_reordered_events(tmp_path: Path) -> None:
    """Market and user streams drop, duplicate and reorder messages while a maker-first TWAP
    runs: it fills its quantity, each exchange fill recorded once, each client order id sent
    once (the exchange's own orders, trades and request audit); the user stream reconciled
    after its reconnects."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    server.set_stream_faults(StreamFaults(p_disconnect=0.3, p_duplicate=0.25, p_out_of_order=0.25,
                                          seed=11))
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(),
                               timeout_ms=2000, config=FAST, fill_wait_seconds=1.0,
                               backoff=FAST_BACKOFF)
    await venue.instruments()
    twap = validate_submit(symbol=BTC, side="buy", qty="2", algo="twap", duration="8m", slices=4,
                           limit_price=None, request_id=None, instruments=SIM_INSTRUMENTS,
                           config=MAKER_FIRST)
    try:
        async with engine_on(tmp_path, clock, venue, MAKER_FIRST) as (store, supervisor, _):
            execution_id = await supervisor.submit(twap)
            await supervisor.wait_all()
            agg = await store.load(execution_id)
        trades = exchange_trades(server)
        posts = [c for c, status, _, _ in order_posts(server) if status == 200]
        orders = exchange_orders(server)
        counts = server.app.stream_faults.counts
        user_drops = venue.hub.user.trades_state.reconnects
    finally:
        await venue.close()
        await server.stop()
    assert (agg.state.value, agg.filled_qty) == ("completed", D(2))
    assert sorted(agg.trade_ids) == sorted(trades)  # each fill once
    assert sum(trades.values()) == D(2)
    assert len(posts) == len(set(posts)) == len(orders)  # each client order id sent once
    assert len({cid for cid, _ in orders}) == len(orders)
    assert counts.get("disconnect", 0) and counts.get("duplicate", 0) and counts.get("out_of_order", 0)
    assert venue.reconciler.runs >= (1 if user_drops else 0)  # after each drop of the user stream


async def test_a_silent_stream_is_closed_reconnected_and_read_over_rest_meanwhile(
        tmp_path: Path) -> None:
    """The paper exchange stops sending (sockets open, pings answered): past their stall time
    the market streams are closed and reconnected; meanwhile the book top is read over REST and
    the traded volume of the silent stretch comes from REST too, equal to the exchange's tape."""
    series = collapsing_series()
    clock = VirtualClock(minute(1.5))
    server = await start(tmp_path, clock, series=series)
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(),
                               config=FAST, backoff=FAST_BACKOFF,
                               stall_after_seconds={"book": 2.0, "trade": 2.0, "kline": 2.0})
    try:
        await venue.instruments()
        feed = venue.hub.feed(BTC)
        await until(lambda: feed.trade_state.up and feed.book_state.up, "the streams")
        clock.advance_to(minute(1.75))
        await until(lambda: feed.volume.stream_horizon(to_epoch_ms(clock.now()))
                    == to_epoch_ms(clock.now()), "the trades up to now")
        server.set_stream_faults(StreamFaults(stall=True))
        clock.advance_to(minute(2.5))  # 45 s of the exchange's time, nothing sent
        await until(lambda: feed.trade_state.stalls >= 1 and feed.kline_state.stalls >= 1,
                    "the stalls found")
        assert "open but silent" in feed.trade_state.last_error
        assert feed.trade_state.reconnects >= 1
        if not feed.book_state.up:
            before = paths(server).count("/api/v3/depth")
            await venue.book_top(BTC)
            assert paths(server).count("/api/v3/depth") == before + 1  # REST while it is down
        got = await venue.traded_volume(BTC, minute(1.5), minute(2.5))
        assert got == tape_volume(series, to_epoch_ms(minute(1.5)), to_epoch_ms(minute(2.5)))
        assert "/api/v3/aggTrades" in paths(server)  # the silent stretch, over REST
        server.set_stream_faults(StreamFaults())
        clock.advance_to(minute(2.75))
        await until(lambda: feed.trade_state.up and feed.volume.stream_horizon(
            to_epoch_ms(clock.now())) == to_epoch_ms(clock.now()), "the trades again")
        got = await venue.traded_volume(BTC, minute(1.5), minute(2.75))
        assert got == tape_volume(series, to_epoch_ms(minute(1.5)), to_epoch_ms(minute(2.75)))
    finally:
        await venue.close()
        await server.stop()


def test_the_runtime_config_sets_the_streams_and_the_traded_volume(monkeypatch: Any) -> None:
    from genesis.clock import WallClock
    from genesis.config import ConfigError, parse_config
    from genesis.engine.venues import build_ccxt_venue
    from genesis.venue.ccxt_rest_volume import TradedVolumeCcxtVenue
    from genesis.venue.ccxt_venue import CcxtVenue

    monkeypatch.setenv("GENESIS_API_KEY", KEY)
    monkeypatch.setenv("GENESIS_API_SECRET", SECRET)
    config = parse_config({"ccxt": {"rest_traded_volume": True, "traded_volume_rest_pages": 3,
                                    "streams": {"stall_after_seconds": {"kline": 4},
                                                "reconnect_base_seconds": 0.2}}})
    streaming = build_ccxt_venue("binance", None, WallClock(), streams=True, config=config)
    rest = build_ccxt_venue("binance", None, WallClock(), config=config)
    plain = build_ccxt_venue("binance", None, WallClock())
    assert isinstance(streaming, StreamingCcxtVenue)
    assert streaming.hub.stall_after_seconds == {"book": 60.0, "trade": 30.0, "kline": 4.0}
    assert streaming.hub.backoff == Backoff(0.2, 30.0) and streaming.volumes.rest_pages == 3
    assert isinstance(rest, TradedVolumeCcxtVenue) and rest.volumes.rest_pages == 3
    assert type(plain) is CcxtVenue and not hasattr(plain, "traded_volume")  # cap on the forecast
    for bad, named in [({"stall_after_seconds": {"trade": 0}}, "ccxt.streams.stall_after_seconds.trade"),
                       ({"reconnect_base_seconds": 40}, "ccxt.streams: reconnect_base_seconds"),
                       ({"stall": 1}, "ccxt.streams.stall: unknown key")]:
        try:
            parse_config({"ccxt": {"streams": bad}})
        except ConfigError as exc:
            assert named in str(exc), str(exc)
        else:
            raise AssertionError(f"{bad} accepted")
