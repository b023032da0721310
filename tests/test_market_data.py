"""The market data service over the simulated venue: figures from closed candles only, and
the candle cache that spares a restart from fetching 20 days again."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from genesis.clock import VirtualClock
from genesis.engine.market_data import MarketData
from genesis.store.candle_cache import CandleCache
from genesis.store.db import async_engine
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal


async def test_figures_come_from_closed_candles_and_the_anomaly_flag(db_path):
    now = T0 + timedelta(days=HISTORY_DAYS, hours=2, seconds=30)
    spike = HISTORY_DAYS * 1440 + 119  # the minute 01:59 of the last day trades 10x its usual
    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: D("100") if i == spike else D("10"))
    clock = VirtualClock(now)
    market = MarketData(venue(clock, btc), lookback_days=HISTORY_DAYS)
    assert await market.price("BTC/USDT") == D("100000")
    assert await market.volume_24h("BTC/USDT", now) == D("10") * 1439 + D("100")
    assert await market.volume_anomaly("BTC/USDT", now)  # 01:59 just closed: 100 vs usual 10
    clock.advance_to(now + timedelta(minutes=1))
    assert not await market.volume_anomaly("BTC/USDT", clock.now())
    profile = await market.window_profile("BTC/USDT", now, 3)
    assert profile == [10.0, 10.0, 10.0]


async def test_candle_history_is_cached_in_sqlite(db_path):
    now = T0 + timedelta(days=HISTORY_DAYS, hours=1)
    btc = series(HISTORY_DAYS + 1, flat("100000"), flat("10"))
    engine = async_engine(db_path)
    try:
        cache = CandleCache(engine)
        first = MarketData(venue(VirtualClock(now), btc), lookback_days=HISTORY_DAYS, cache=cache)
        start, end = now - timedelta(days=1), now
        fetched = await first.history("BTC/USDT", start, end)
        assert len(fetched) == 1440
        assert len(await cache.load("BTC/USDT", start, end)) == 1440
        # a second service (a restart) with a venue that has no history serves it from SQLite
        empty = series(1, flat("1"), flat("1"), start=now)
        second = MarketData(venue(VirtualClock(now), empty), lookback_days=HISTORY_DAYS, cache=cache)
        again = await second.history("BTC/USDT", start, end)
        assert [c.volume for c in again] == [c.volume for c in fetched] and again[0].close == D("100000")
        assert await cache.save("BTC/USDT", fetched) == 0  # idempotent upsert
    finally:
        await engine.dispose()
