"""The seeded model of a minute's trades (``genesis.paper.tape``) over the shipped candles."""

from __future__ import annotations

from decimal import Decimal as D

from genesis.paper.tape import MAX_TRADES_PER_MINUTE, minute_trades
from genesis.venue.base import Candle
from genesis.venue.candles import shipped_candles, to_epoch_ms
from genesis.venue.instruments import SIM_INSTRUMENTS


def test_every_minute_opens_touches_high_and_low_closes_and_sums_to_the_volume() -> None:
    for symbol in ("BTC/USDT", "ETH/USDT"):
        series, inst = shipped_candles(symbol), SIM_INSTRUMENTS[symbol]
        for index in range(0, len(series), len(series) // 150):  # 150 minutes of each
            candle = series.candle(index)
            trades = minute_trades(candle, inst, seed=3)
            lots = inst.round_qty_down(candle.volume)
            if lots == 0:
                assert trades == []
                continue
            prices = [t.price for t in trades]
            assert sum((t.qty for t in trades), D(0)) == lots
            assert all(t.qty >= inst.step_size for t in trades)
            assert max(prices) == candle.high and min(prices) == candle.low
            assert (prices[0], prices[-1]) == (candle.open, candle.close)
            assert all(p == inst.round_price(p) for p in prices)
            open_ms = to_epoch_ms(candle.open_time)
            times = [t.time_ms for t in trades]
            assert times == sorted(times) and open_ms == times[0] and times[-1] < open_ms + 60_000
            assert len(trades) <= MAX_TRADES_PER_MINUTE
            ids = [t.trade_id for t in trades]
            assert ids == sorted(set(ids))


def test_same_seed_and_minute_give_the_same_trades_another_seed_others() -> None:
    series, inst = shipped_candles("BTC/USDT"), SIM_INSTRUMENTS["BTC/USDT"]
    candle = series.candle(1234)
    minute_trades(series.candle(99), inst, seed=7)  # what was asked before does not matter
    assert minute_trades(candle, inst, seed=7) == minute_trades(candle, inst, seed=7)
    assert minute_trades(candle, inst, seed=7) != minute_trades(candle, inst, seed=8)


def test_a_thin_minute_trades_what_its_volume_allows() -> None:
    inst = SIM_INSTRUMENTS["BTC/USDT"]
    thin = Candle(shipped_candles("BTC/USDT").candle(0).open_time, D("100"), D("101"), D("99"),
                  D("100.5"), D("0.00003"))  # three lots: open, the farther extreme, close
    trades = minute_trades(thin, inst)
    assert [t.price for t in trades] == [D("100"), D("99"), D("100.5")]
    assert [t.qty for t in trades] == [D("0.00001")] * 3
    empty = Candle(thin.open_time, D("100"), D("100"), D("100"), D("100"), D("0"))
    assert minute_trades(empty, inst) == []
