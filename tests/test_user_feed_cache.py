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
