"""Market data for the executors, from whichever venue the daemon runs on: prices, the
expected volume profile of a window, the recent traded volume and the anomaly flag.

History is fetched once per (symbol, window) and kept in memory; live figures come from the
venue's closed candles, so nothing here looks ahead.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import numpy as np

from genesis.domain import benchmarks
from genesis.domain.orders import BookTop
from genesis.domain.volume_anomaly import DEFAULT_ANOMALY_RATIO, is_volume_anomaly
from genesis.domain.volume_curve import CurveCache, VolumeCurve, VolumeCurveEstimator, day_start
from genesis.store.candle_cache import CandleCache
from genesis.venue.base import Candle, Venue

MINUTE = timedelta(minutes=1)
T = TypeVar("T")


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


@dataclass(slots=True)
class MarketData:
    venue: Venue
    lookback_days: int = 20
    cache: CandleCache | None = None
    _usual: dict[tuple[str, int], Decimal] = field(default_factory=dict)  # (symbol, minute of day)
    _curves: CurveCache = field(default_factory=CurveCache)
    _building: dict[tuple[str, datetime], asyncio.Future[VolumeCurve]] = field(default_factory=dict)
    # per (symbol, first minute, minutes): the usual volumes, and the same as the Decimals ``_usual`` keeps
    _profiles: dict[tuple[str, datetime, int], tuple[tuple[float, ...], tuple[Decimal, ...]]] = field(
        default_factory=dict)
    # per (symbol, first minute, minutes): the curve they were read from and its minute fractions
    _fractions: dict[tuple[str, datetime, int], tuple[VolumeCurve, tuple[float, ...]]] = field(default_factory=dict)

    async def history(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        """Closed 1-minute candles in ``[start, end)``, from the SQLite cache when it has them
        all, else from the venue (and then cached)."""
        expected = int((end - start) / MINUTE)
        if self.cache is not None:
            cached = await self.cache.load(symbol, start, end)
            if len(cached) >= expected:
                return cached
        candles = await self.venue.candles(symbol, start, end)
        if self.cache is not None:
            await self.cache.save(symbol, candles)
        return candles

    async def volume_curve(self, symbol: str, as_of: datetime) -> VolumeCurve:
        """The intraday volume curve for ``as_of``'s UTC day from the ``lookback_days`` full days
        before it (cached per symbol and day; recomputed once the day moves on). Callers that
        ask while it is being built share that one build."""
        curve = self._curves.get(symbol, as_of)
        if curve is not None:
            return curve
        key = (symbol, day_start(as_of))
        build = self._building.get(key)
        if build is None:
            build = self._building[key] = asyncio.ensure_future(self._build_curve(symbol, as_of))
            build.add_done_callback(lambda done: self._built(key, done))
        return await asyncio.shield(build)  # one caller giving up must not cancel the others' build

    def _built(self, key: tuple[str, datetime], build: asyncio.Future[VolumeCurve]) -> None:
        del self._building[key]  # a failed build is tried again by the next caller
        if not build.cancelled():
            build.exception()  # the callers got it; nobody left waiting is not an error

    async def _build_curve(self, symbol: str, as_of: datetime) -> VolumeCurve:
        end = day_start(as_of)
        start = end - timedelta(days=self.lookback_days)
        estimator = VolumeCurveEstimator(history_days=self.lookback_days,
                                         min_days=max(1, min(10, self.lookback_days)))
        numeric = getattr(self.venue, "volume_history", None)
        if numeric is not None:  # the simulator has the volumes as floats already
            times, volumes = numeric(symbol, start, end)
            curve = estimator.estimate(times, volumes, as_of)
        else:
            # 20 days of Decimal candles to floats is ~30,000 conversions: off the event loop
            candles = await self.history(symbol, start, end)
            curve = await asyncio.to_thread(_estimate_from_candles, estimator, candles, as_of)
        self._curves.put(symbol, curve)
        return curve

    async def market_vwap(self, symbol: str, start: datetime, now: datetime) -> Decimal | None:
        """Market VWAP (typical price, volume weighted) of the closed minutes in ``[start, now)``."""
        return benchmarks.market_vwap(await self.venue.candles(symbol, floor_minute(start), now))

    async def price(self, symbol: str) -> Decimal:
        """Current mid price."""
        return (await self.venue.book_top(symbol)).mid

    async def volume_24h(self, symbol: str, now: datetime) -> Decimal:
        """Base volume traded over the last 24 hours (closed minutes)."""
        return await self.traded_volume(symbol, now - timedelta(days=1), now)

    async def volume_anomaly(self, symbol: str, now: datetime, ratio: float = DEFAULT_ANOMALY_RATIO) -> bool:
        """The last closed minute's volume is ``ratio`` times above or below its usual level for
        that minute of day (the median of the last ``lookback_days`` days), boundary included
        (``volume_anomaly.is_volume_anomaly``)."""
        last = await self.last_minute(symbol, now)
        if last is None:
            return False
        at, volume = last
        if self.usual_minute_volume(symbol, at) is None:
            await self.window_profile(symbol, at, 1, lead_minutes=0)
        return is_volume_anomaly(volume, self.usual_minute_volume(symbol, at), ratio)

    async def volume_today(self, symbol: str, now: datetime) -> Decimal:
        """Volume traded since UTC midnight (closed minutes)."""
        return await self.traded_volume(symbol, day_start(now), now)

    async def book_top(self, symbol: str) -> BookTop:
        return await self.venue.book_top(symbol)

    async def window_profile(self, symbol: str, start: datetime, minutes: int, lead_minutes: int = 5) -> list[float]:
        """Expected volume of each minute of ``[start, start + minutes)``: the median of the
        same minutes of day over the last ``lookback_days`` days (days without data are
        skipped). The usual volumes of those minutes, and of the ``lead_minutes`` before the
        window, are kept for the anomaly check. Memoised per window: parents starting in the
        same minute share it (past days only, so it cannot change)."""
        first = floor_minute(start) - MINUTE * lead_minutes
        span = minutes + lead_minutes
        key = (symbol, first, span)
        known = self._profiles.get(key)
        if known is None:
            usuals = await self._minute_medians(symbol, first, span)
            known = _bounded_put(self._profiles, key, (usuals, tuple(Decimal(str(round(u, 8))) for u in usuals)))
        usuals, decimals = known
        minute_of_day = first.hour * 60 + first.minute
        for k, usual in enumerate(decimals):
            self._usual[(symbol, (minute_of_day + k) % _MINUTES_PER_DAY)] = usual
        return list(usuals[lead_minutes:])

    async def minute_fractions(self, symbol: str, start: datetime, minutes: int) -> list[float]:
        """The volume curve's expected share of the day's volume in each of the ``minutes``
        minutes from ``start`` floored to the minute (``VolumeCurve.fraction``). Memoised per
        window and curve: the parents re-planned at one instant (a restart) share it."""
        curve = await self.volume_curve(symbol, start)
        first = floor_minute(start)
        key = (symbol, first, minutes)
        known = self._fractions.get(key)
        if known is None or known[0] is not curve:  # a new day's curve: computed again
            known = _bounded_put(self._fractions, key, (curve, tuple(
                curve.fraction(first + MINUTE * k, first + MINUTE * (k + 1)) for k in range(minutes))))
        return list(known[1])

    async def _minute_medians(self, symbol: str, first: datetime, span: int) -> tuple[float, ...]:
        per_minute: list[list[float]] = [[] for _ in range(span)]
        for day in range(1, self.lookback_days + 1):
            day_start = first - timedelta(days=day)
            for candle in await self.venue.candles(symbol, day_start, day_start + MINUTE * span):
                k = int((candle.open_time - day_start) / MINUTE)
                if 0 <= k < span:
                    per_minute[k].append(float(candle.volume))
        return tuple(statistics.median(volumes) if volumes else 0.0 for volumes in per_minute)

    def usual_minute_volume(self, symbol: str, at: datetime) -> Decimal | None:
        """The usual volume of ``at``'s minute of day, if a window profile covered it."""
        m = floor_minute(at)
        return self._usual.get((symbol, m.hour * 60 + m.minute))

    async def last_minute(self, symbol: str, now: datetime) -> tuple[datetime, Decimal] | None:
        """The most recent closed minute and its volume."""
        end = floor_minute(now)
        candles = await self.venue.candles(symbol, end - MINUTE, end)
        return (candles[-1].open_time, candles[-1].volume) if candles else None

    async def volume_rate(self, symbol: str, now: datetime, minutes: int = 5) -> Decimal | None:
        """Base volume traded per second over the last ``minutes`` closed minutes (None if unknown)."""
        end = floor_minute(now)
        candles = await self.venue.candles(symbol, end - MINUTE * minutes, end)
        if not candles:
            return None
        return sum((c.volume for c in candles), Decimal(0)) / (60 * len(candles))

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal:
        """Volume of the closed minutes in ``[start, end)`` (post-trade participation)."""
        return sum((c.volume for c in await self.venue.candles(symbol, floor_minute(start), end)), Decimal(0))


_MINUTES_PER_DAY = 24 * 60
_MEMO_SIZE = 256  # windows kept per memo (the oldest goes first)


def _bounded_put(memo: dict, key: object, value: T) -> T:  # type: ignore[type-arg]
    """``memo[key] = value``, the oldest entry dropped once it holds ``_MEMO_SIZE``."""
    if len(memo) >= _MEMO_SIZE:
        del memo[next(iter(memo))]
    memo[key] = value
    return value


def _estimate_from_candles(estimator: VolumeCurveEstimator, candles: list[Candle], as_of: datetime) -> VolumeCurve:
    """Float volumes (statistics only, never money) from candles, then the curve."""
    times = np.fromiter((int(c.open_time.timestamp() * 1000) for c in candles), dtype=np.int64, count=len(candles))
    volumes = np.fromiter((float(c.volume) for c in candles), dtype=np.float64, count=len(candles))
    return estimator.estimate(times, volumes, as_of)
