"""Benchmark arithmetic on hand-computed examples (the numbers are worked out in comments)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from genesis.domain.benchmarks import (RunningVwap, implementation_shortfall_bps, market_vwap,
                                       participation, slippage_vs_vwap_bps, twap_benchmark)
from genesis.domain.orders import Side
from genesis.venue.base import Candle

T0 = datetime(2025, 7, 1, tzinfo=timezone.utc)
D = Decimal


def _candle(minute: int, high: str, low: str, close: str, volume: str) -> Candle:
    return Candle(T0 + timedelta(minutes=minute), D(close), D(high), D(low), D(close), D(volume))


# typical prices: (10 + 8 + 9)/3 = 9 with volume 1; (12 + 10 + 11.5)/3 = 11.1666... with volume 3
CANDLES = [_candle(0, "10", "8", "9", "1"), _candle(1, "12", "10", "11.5", "3")]


def test_market_vwap_by_hand() -> None:
    # sum((H+L+C) * V) / (3 * sum(V)) = (27*1 + 33.5*3) / (3*4) = 127.5 / 12 = 10.625
    assert market_vwap(CANDLES) == D("10.625")
    # one candle: its typical price; zero volume or no candles: no VWAP
    assert market_vwap(CANDLES[:1]) == D(9)
    assert market_vwap([_candle(0, "10", "8", "9", "0")]) is None
    assert market_vwap([]) is None


def test_twap_benchmark_by_hand() -> None:
    # (27 + 33.5) / (3 * 2) = 60.5 / 6 = 10.08333...
    assert twap_benchmark(CANDLES) == D("60.5") / 6
    assert str(twap_benchmark(CANDLES)) == "10.08333333333333333333333333"
    assert twap_benchmark([]) is None


def test_running_vwap_accumulates_bar_by_bar() -> None:
    r = RunningVwap()
    assert r.value is None
    r1 = r.add(CANDLES[:1])
    r2 = r1.add(CANDLES[1:])
    assert (r1.value, r2.value) == (D(9), D("10.625"))
    assert (r2.hlc_volume, r2.volume, r2.bars) == (D("127.5"), D(4), 2)
    assert r.value is None and r1.bars == 1  # immutable: adding returns a new accumulator


def test_slippage_vs_vwap_is_signed_worse_for_us_positive() -> None:
    vwap = D("10.625")
    # buy at 10.70: (10.70 - 10.625) / 10.625 * 10000 = 0.075 / 10.625 * 10000 = 70.588235... bps
    assert slippage_vs_vwap_bps(Side.BUY, D("10.70"), vwap) == D("70.5882")
    # the same price is better than the VWAP for a seller
    assert slippage_vs_vwap_bps(Side.SELL, D("10.70"), vwap) == D("-70.5882")
    assert slippage_vs_vwap_bps(Side.BUY, D("100"), D("100.5")) == D("-49.7512")  # -0.5/100.5
    assert slippage_vs_vwap_bps(Side.BUY, None, vwap) is None
    assert slippage_vs_vwap_bps(Side.BUY, D(1), None) is None


def test_implementation_shortfall_by_hand() -> None:
    # buy 101.2345 vs arrival 101: 0.2345 / 101 * 10000 = 23.217821... bps
    assert implementation_shortfall_bps(Side.BUY, D("101.2345"), D("101")) == D("23.2178")
    # sell 99.5 vs arrival 100: received 0.5 less -> 50 bps worse
    assert implementation_shortfall_bps(Side.SELL, D("99.5"), D("100")) == D("50.0000")
    assert implementation_shortfall_bps(Side.SELL, D("100.2"), D("100")) == D("-20.0000")
    assert implementation_shortfall_bps(Side.BUY, D("100"), D("0")) is None


def test_participation_by_hand() -> None:
    assert participation(D("0.5"), D("10")) == D("0.05")
    assert participation(D("3"), D("12")) == D("0.25")
    assert participation(D("1"), D("0")) is None
    assert participation(D("1"), None) is None
