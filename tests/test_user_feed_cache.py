"""The user data stream's feed takes from ccxt's order and trade caches only what changed since
it last looked (ccxt's own ``ArrayCacheBySymbolById``), not the whole cache on every message."""

from __future__ import annotations

from ccxt.async_support.base.ws.cache import ArrayCacheBySymbolById

from genesis.venue.stream_feeds import UserFeed


def order(oid: str, status: str, filled: float, event: int) -> dict:
    return {"id": oid, "clientOrderId": f"c{oid}", "symbol": "BTC/USDT", "status": status,
            "filled": filled, "info": {"E": event, "i": oid}}


def test_orders_updated_since_the_last_look_are_merged_and_the_rest_not_read_again():
    cache, feed = ArrayCacheBySymbolById(1000), UserFeed()
    for i in range(5):
        cache.append(order(str(i), "open", 0, i))
    feed.on_order_cache(list(cache))
    assert {o: feed.orders[o]["status"] for o in feed.orders} == {str(i): "open" for i in range(5)}
    # order 1 fills (ccxt updates it in place and moves it to the end); order 3's entry changes
    # under the feed without a new message: a look that re-read everything would take it
    cache.append(order("1", "closed", 0.5, 10))
    next(o for o in cache if o["id"] == "3")["status"] = "bogus"
    feed.on_order_cache(list(cache))
    assert feed.orders["1"]["status"] == "closed" and feed.orders["1"]["filled"] == 0.5
    assert feed.orders["3"]["status"] == "open"
    assert feed.by_client_id["c1"] == "1"


def test_trades_after_the_newest_taken_are_merged_once():
    cache, feed = ArrayCacheBySymbolById(1000), UserFeed()
    cache.append({"id": "t1", "order": "1", "symbol": "BTC/USDT", "amount": 0.1})
    feed.on_trade_cache(list(cache))
    cache.append({"id": "t2", "order": "1", "symbol": "BTC/USDT", "amount": 0.2})
    cache.append({"id": "t3", "order": "2", "symbol": "BTC/USDT", "amount": 0.3})
    feed.on_trade_cache(list(cache))
    feed.on_trade_cache(list(cache))
    assert {o: sorted(t) for o, t in feed.trades.items()} == {"1": ["t1", "t2"], "2": ["t3"]}
    cache[0]["amount"] = 9  # an old entry is not read again
    feed.on_trade_cache(list(cache))
    assert feed.trades["1"]["t1"]["amount"] == 0.1


def test_traded_volume_of_a_short_stretch_reads_the_same_whatever_is_kept():
    from decimal import Decimal

    from genesis.venue.trade_volume import TradeVolume
    volume = TradeVolume()
    volume.stream_up(0)
    volume.ingest([{"id": str(s), "timestamp": s * 1000 + 500, "amount": "0.1"} for s in range(3600)],
                  3_600_000)
    # 3,600 one-second buckets kept; a stretch of 3 whole seconds inside reads three of them
    assert volume.volume(10_000, 13_000, 3_600_000) == Decimal("0.3")
    assert volume.volume(10_001, 13_000, 3_600_000) == Decimal("0.2")  # a bucket only partly inside
    assert volume.volume(0, 3_600_000, 3_600_000) == Decimal("360.0")


async def test_the_streaming_venue_keeps_ccxts_order_cache_small_unless_configured():
    from genesis.venue.ccxt_stream import STREAM_ORDERS_CACHED, StreamingCcxtVenue
    venue = StreamingCcxtVenue("binance", exchange_url="http://127.0.0.1:9")
    configured = StreamingCcxtVenue("binance", exchange_url="http://127.0.0.1:9", options={"ordersLimit": 50})
    try:
        assert venue.ex.options["ordersLimit"] == STREAM_ORDERS_CACHED == 200
        assert configured.ex.options["ordersLimit"] == 50
    finally:
        await venue.close()
        await configured.close()


def test_a_trade_told_again_does_not_hide_a_newer_one_behind_it():
    """ccxt's cache moves a duplicated trade to its end, behind a newer trade not yet taken:
    the newer one is still taken (by id, not by position), and the duplicate counts once."""
    cache, feed = ArrayCacheBySymbolById(1000), UserFeed()

    def trade(i: int) -> dict:
        return {"id": str(i), "order": "42", "symbol": "BTC/USDT", "amount": 0.1, "price": 100.0}

    cache.append(trade(5))
    feed.on_trade_cache(list(cache))
    cache.append(trade(6))
    cache.append(trade(5))  # T5 told again before the next look: moved behind T6
    assert [t["id"] for t in cache] == ["6", "5"]
    feed.on_trade_cache(list(cache))
    cache.append(trade(7))
    feed.on_trade_cache(list(cache))
    assert sorted(feed.trades["42"]) == ["5", "6", "7"]


async def test_the_reconciliation_reads_trades_from_the_last_id_the_stream_delivered():
    """While the user stream is down, order A (resting) fills as trade 100 and order B's
    placement response brings its taker trade 105 (merged into the feed): the reconciliation
    reads myTrades from one past the last trade the stream itself delivered (50), not past
    105, so trade 100 is read."""
    from types import SimpleNamespace

    from genesis.venue.stream_reconcile import StreamReconciler

    feed = UserFeed()
    cache = ArrayCacheBySymbolById(1000)
    cache.append({"id": "50", "order": "7", "symbol": "BTC/USDT", "amount": 0.1, "price": 100.0})
    feed.on_trade_cache(list(cache))
    feed.trades_dropped()  # the stream drops
    feed.merge_trades("B", [{"id": "105", "symbol": "BTC/USDT", "amount": 0.1, "price": 100.0}])
    exchange_trades = [{"id": "100", "order": "A", "symbol": "BTC/USDT", "amount": 1.0, "price": 100.0},
                       {"id": "105", "order": "B", "symbol": "BTC/USDT", "amount": 0.1, "price": 100.0}]
    asked: list[str] = []

    async def fetch_my_trades(symbol, since, limit, params):  # type: ignore[no-untyped-def]
        asked.append(params.get("fromId") or f"order {params.get('orderId')}")
        start = int(params.get("fromId", 0))
        return [t for t in exchange_trades if int(t["id"]) >= start]

    async def fetch_order(_id, symbol, params):  # type: ignore[no-untyped-def]
        return {"id": "A", "clientOrderId": "cA", "symbol": symbol, "status": "closed", "filled": 1.0}

    async def call(_name, fn, **_kw):  # type: ignore[no-untyped-def]
        return await fn()

    venue = SimpleNamespace(hub=SimpleNamespace(user=feed), calls=SimpleNamespace(call=call),
                            ex=SimpleNamespace(fetch_my_trades=fetch_my_trades, fetch_order=fetch_order),
                            _cid_params=lambda cid: {"origClientOrderId": cid}, placed_at_reconnects={})
    reconciler = StreamReconciler(venue)
    reconciler.order_placed("A", "BTC/USDT", "cA")
    await reconciler.run()
    assert asked == ["51"]
    assert sorted(feed.trades["A"]) == ["100"]
    assert feed.reconcile_from("BTC/USDT") == 50  # the gap closed: the stream's own latest again
