"""Candle loading: exact Decimal values, O(1) minute lookup, clear errors for bad files."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from genesis.venue.base import Candle
from genesis.venue.candles import (CandleSeries, load_candles, shipped_candles, shipped_symbols,
                                   to_epoch_ms)

DATA = Path(__file__).resolve().parents[1] / "genesis" / "data"
T0 = datetime(2025, 5, 20, tzinfo=timezone.utc)
HEADER = "timestamp,open,high,low,close,volume\n"


def _write(tmp_path: Path, body: str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_shipped_btc_first_rows_are_exact_decimals() -> None:
    series = shipped_candles("BTC/USDT")
    assert len(series) == 87_840
    assert series.symbol == "BTC/USDT"
    assert series.first_open_time == T0
    assert series.last_open_time == datetime(2025, 7, 19, 23, 59, tzinfo=timezone.utc)
    assert series.candle(0) == Candle(T0, Decimal("105573.73"), Decimal("105597.1"),
                                      Decimal("105554.31"), Decimal("105554.32"),
                                      Decimal("10.82647"))
    last = series.candle_at(datetime(2025, 7, 19, 23, 59, 59, 999999, tzinfo=timezone.utc))
    assert last is not None and last.close == Decimal("117840.0")
    assert last.volume == Decimal("3.74146")


def test_shipped_eth_first_row() -> None:
    candle = shipped_candles("ETH/USDT").candle(0)
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
        Decimal("2528.14"), Decimal("2530.8"), Decimal("2527.97"), Decimal("2528.28"),
        Decimal("562.6879"))


def test_lookup_by_minute() -> None:
    series = shipped_candles("BTC/USDT")
    first = series.candle_at(T0 + timedelta(seconds=59, microseconds=999_999))
    second = series.candle_at(T0 + timedelta(minutes=1))
    assert first is not None and first.open_time == T0
    assert second is not None and second.open == Decimal("105554.32")
    assert second.high == Decimal("105609.89")
    assert series.candle_at(T0 - timedelta(microseconds=1)) is None
    assert series.candle_at(series.end_time) is None
    naive = series.candle_at(datetime(2025, 5, 20, 0, 1, 30))  # naive = UTC
    assert naive == second


def test_range_is_half_open_and_clipped() -> None:
    series = shipped_candles("BTC/USDT")
    got = series.range(T0 + timedelta(seconds=30), T0 + timedelta(minutes=3))
    assert [c.open_time for c in got] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    assert len(series.range(T0 - timedelta(days=1), T0 + timedelta(minutes=2))) == 2
    assert series.range(T0 + timedelta(minutes=5), T0 + timedelta(minutes=5)) == []
    assert len(series.range(series.last_open_time, series.end_time + timedelta(days=1))) == 1


def test_numeric_views() -> None:
    series = shipped_candles("BTC/USDT")
    volumes, closes, times = series.volumes_float(), series.closes_float(), series.open_times_ms()
    assert volumes.dtype == np.float64 and len(volumes) == len(series)
    assert volumes[0] == pytest.approx(10.82647)
    assert closes[0] == pytest.approx(105554.32)
    assert times[0] == to_epoch_ms(T0) == 1747699200000
    assert (np.diff(times) == 60_000).all()
    with pytest.raises(ValueError):
        volumes[0] = 1.0  # read-only


def test_shipped_symbols_and_unknown_symbol() -> None:
    assert shipped_symbols() == ("BTC/USDT", "ETH/USDT")
    with pytest.raises(KeyError, match="BTC/USDT, ETH/USDT"):
        shipped_candles("DOGE/USDT")


def test_a_shipped_file_loads_every_minute() -> None:
    # its load time is a `make bench` row ("shipped candle file load"), not a timed assertion
    series = load_candles(DATA / "BTC_USDT-1m.csv.gz")
    assert len(series) == 87_840


def test_plain_and_gzip_csv(tmp_path: Path) -> None:
    body = "60000,1.5,2,1,1.75,3\n120000,1.75,1.8,1.7,1.7,0\n"
    plain = load_candles(_write(tmp_path, body), symbol="X/Y")
    gz = tmp_path / "c.csv.gz"
    gz.write_bytes(gzip.compress((HEADER + body).encode()))
    zipped = load_candles(gz)
    assert len(plain) == len(zipped) == 2
    assert plain.candle(1) == zipped.candle(1)
    assert plain.candle(0).close == Decimal("1.75")
    assert plain.first_open_time == datetime(1970, 1, 1, 0, 1, tzinfo=timezone.utc)


def test_from_candles_round_trip() -> None:
    source = shipped_candles("ETH/USDT").range(T0, T0 + timedelta(minutes=3))
    rebuilt = CandleSeries.from_candles(source, symbol="ETH/USDT")
    assert rebuilt.range(T0, T0 + timedelta(minutes=3)) == source


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("60000,1,2,1,1\n", r"line 2: expected 6 fields"),
        ("60000,1,2,1,1,1\n120000,1,2,x,1,1\n", r"line 3: low 'x' is not a finite"),
        ("60000,1,2,1,1,1\n1.2e5,1,2,1,1,1\n", r"line 3: timestamp '1.2e5' is not integer"),
        ("60000,1,2,1,1,nan\n", r"line 2: volume 'nan'"),
        ("60000,1,2,1,1,1\n180000,1,2,1,1,1\n", r"line 3: .*120000 ms after the previous row"),
        ("60000,1,2,1,1,1\n60000,1,2,1,1,1\n", r"line 3: .*not increasing"),
        ("61000,1,2,1,1,1\n", r"line 2: .*not on a minute boundary"),
        ("60000,1,2,1,3,1\n", r"line 2: inconsistent candle"),
        ("", r"no candles"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body, name="bad.csv")
    with pytest.raises(ValueError, match=message) as info:
        load_candles(path)
    assert "bad.csv" in str(info.value)


def test_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("time,o,h,l,c,v\n60000,1,2,1,1,1\n")
    with pytest.raises(ValueError, match=r"h.csv, line 1: expected header"):
        load_candles(path)
