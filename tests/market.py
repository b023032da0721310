"""Synthetic markets for tests: candle series with chosen prices and volumes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable

from genesis.clock import Clock
from genesis.venue.base import Candle
from genesis.venue.candles import CandleSeries
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.sim import SimulatedVenue

T0 = datetime(2025, 6, 1, 0, 0, tzinfo=timezone.utc)
HISTORY_DAYS = 3


def series(days: int, price: Callable[[int], Decimal], volume: Callable[[int], Decimal],
           start: datetime = T0, symbol: str = "BTC/USDT") -> CandleSeries:
    """One candle per minute for ``days`` days; ``price(i)``/``volume(i)`` for minute ``i``
    (open = close = price, high/low 1 tick around it)."""
    out = []
    for i in range(days * 1440):
        p = price(i)
        out.append(Candle(start + timedelta(minutes=i), p, p + Decimal("0.01"), p - Decimal("0.01"), p, volume(i)))
    return CandleSeries.from_candles(out, symbol)


def venue(clock: Clock, btc: CandleSeries, balances: dict[str, Decimal] | None = None) -> SimulatedVenue:
    return SimulatedVenue(clock, {"BTC/USDT": btc}, {"BTC/USDT": SIM_INSTRUMENTS["BTC/USDT"]},
                          balances=balances or {"USDT": Decimal("100000000"), "BTC": Decimal("1000")})


def flat(value: str) -> Callable[[int], Decimal]:
    v = Decimal(value)
    return lambda i: v
