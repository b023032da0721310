"""Execution benchmarks in exact Decimal arithmetic: market VWAP and TWAP over candles,
slippage against them, implementation shortfall, participation.

Typical price of a candle is ``(high + low + close) / 3``. The VWAP divides once, at the
end: ``sum((H+L+C) * V) / (3 * sum(V))``, so a hand calculation gives the same digits.
All bps figures are signed, positive = worse for us (a buy paid more than the benchmark, a
sell received less), quantised to 0.0001 bps like ``genesis.domain.execution.slippage_bps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable, Protocol

from genesis.domain.execution import slippage_bps
from genesis.domain.orders import Side

ZERO = Decimal(0)
THREE = Decimal(3)
MINUTE = timedelta(minutes=1)
MICROSECONDS_PER_MINUTE = Decimal(60_000_000)


class Bar(Protocol):
    """What the benchmarks read from a candle (``genesis.venue.base.Candle`` fits)."""

    @property
    def high(self) -> Decimal: ...
    @property
    def low(self) -> Decimal: ...
    @property
    def close(self) -> Decimal: ...
    @property
    def volume(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class RunningVwap:
    """Market VWAP accumulated bar by bar (for a live benchmark updated every slice).

    ``hlc_volume`` is ``sum((H+L+C) * V)``; ``value`` divides by ``3 * volume``.
    """

    hlc_volume: Decimal = ZERO
    volume: Decimal = ZERO
    bars: int = 0

    def add(self, bars: Iterable[Bar]) -> RunningVwap:
        """A new accumulator with ``bars`` included (the caller must not add a bar twice)."""
        hlc_volume, volume, n = self.hlc_volume, self.volume, self.bars
        for b in bars:
            hlc_volume += (b.high + b.low + b.close) * b.volume
            volume += b.volume
            n += 1
        return RunningVwap(hlc_volume, volume, n)

    @property
    def value(self) -> Decimal | None:
        """The VWAP, or None before any volume traded."""
        return self.hlc_volume / (THREE * self.volume) if self.volume > 0 else None


def market_vwap(candles: Iterable[Bar]) -> Decimal | None:
    """Volume-weighted typical price of ``candles``; None when they traded no volume."""
    return RunningVwap().add(candles).value


def twap_benchmark(candles: Iterable[Bar]) -> Decimal | None:
    """Mean typical price of ``candles`` (each bar counts once); None for no candles."""
    total, n = ZERO, 0
    for b in candles:
        total += b.high + b.low + b.close
        n += 1
    return total / (THREE * n) if n else None


def slippage_vs_vwap_bps(side: Side, avg_price: Decimal | None, vwap: Decimal | None) -> Decimal | None:
    """``sign * (avg_price - vwap) / vwap * 10,000``; positive = worse than the market VWAP."""
    return slippage_bps(Side(side), avg_price, vwap)


def implementation_shortfall_bps(side: Side, avg_price: Decimal | None,
                                 arrival_price: Decimal | None) -> Decimal | None:
    """Shortfall of the executed average against the arrival (decision-time) price, in bps.

    Measured on the filled quantity only (no opportunity cost for an unfilled remainder);
    positive = worse than arrival.
    """
    return slippage_bps(Side(side), avg_price, arrival_price)


def participation(qty: Decimal, market_volume: Decimal | None) -> Decimal | None:
    """Our quantity as a fraction of the market volume over the same interval (0.1 = 10%)."""
    if market_volume is None or market_volume <= 0:
        return None
    return qty / market_volume


class MinuteVolume(Protocol):
    """A 1-minute candle's start and volume (``genesis.venue.base.Candle`` fits)."""

    @property
    def open_time(self) -> datetime: ...
    @property
    def volume(self) -> Decimal: ...


def interval_volume(bars: Iterable[MinuteVolume], start: datetime, end: datetime) -> Decimal | None:
    """Market volume traded in ``[start, end)`` from 1-minute candles: each minute counts for
    the part of it inside the interval (volume taken as even within a minute, the finest grain
    candles have, and how the simulator trades it). None when a minute the interval touches
    has no candle: an unknown volume, never a guess."""
    volumes = {b.open_time: b.volume for b in bars}
    minute = start.replace(second=0, microsecond=0)
    total = ZERO
    while minute < end:
        volume = volumes.get(minute)
        if volume is None:
            return None
        overlap = min(end, minute + MINUTE) - max(start, minute)
        total += volume if overlap == MINUTE else \
            volume * Decimal(overlap // timedelta(microseconds=1)) / MICROSECONDS_PER_MINUTE
        minute += MINUTE
    return total
