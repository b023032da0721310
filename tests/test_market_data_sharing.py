"""Market data that 1,000 parents starting together share: one volume-curve build per symbol
and day (from the simulator's float volumes, the same curve as from its candles), one
volume profile per window, closed candles found by index arithmetic."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from genesis.clock import VirtualClock
from genesis.engine.market_data import MarketData
from genesis.venue.base import Candle
from genesis.venue.candles import shipped_candles
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.sim import SimulatedVenue

NOW = datetime(2025, 6, 10, 13, 0, 30, tzinfo=timezone.utc)
BTC = "BTC/USDT"


class CandlesOnly:
    """A venue that only serves candles (like an exchange), counting the calls."""

    def __init__(self, venue: SimulatedVenue):
        self.venue, self.calls = venue, 0

    async def candles(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        self.calls += 1
        return await self.venue.candles(symbol, start, end)


class CountingSim(SimulatedVenue):
    builds = 0

    def volume_history(self, symbol, start, end):  # type: ignore[no-untyped-def]
        self.builds += 1
        return super().volume_history(symbol, start, end)


def sim(cls: type[SimulatedVenue] = SimulatedVenue) -> SimulatedVenue:
    return cls(VirtualClock(NOW), {BTC: shipped_candles(BTC)}, {BTC: SIM_INSTRUMENTS[BTC]})


async def test_one_curve_build_for_many_parents_and_the_same_curve_as_from_candles() -> None:
    venue = sim(CountingSim)
    market = MarketData(venue)
    curves = await asyncio.gather(*(market.volume_curve(BTC, NOW) for _ in range(50)))
    assert venue.builds == 1  # type: ignore[attr-defined]
    assert all(c is curves[0] for c in curves)
    from_candles = await MarketData(CandlesOnly(sim())).volume_curve(BTC, NOW)  # type: ignore[arg-type]
    assert from_candles.weights == curves[0].weights
    assert from_candles.typical_daily_volume == curves[0].typical_daily_volume
    assert from_candles.days_used == curves[0].days_used == 20


async def test_a_window_profile_is_fetched_once_and_keeps_the_usual_volumes() -> None:
    venue = CandlesOnly(sim())
    market = MarketData(venue)  # type: ignore[arg-type]
    first = await market.window_profile(BTC, NOW, 15)
    fetched = venue.calls
    assert fetched == 20 and len(first) == 15 and all(v > 0 for v in first)
    usual = market.usual_minute_volume(BTC, NOW)
    again = await market.window_profile(BTC, NOW + timedelta(seconds=20), 15)  # same minute
    assert again == first and venue.calls == fetched
    assert market.usual_minute_volume(BTC, NOW) == usual and isinstance(usual, Decimal)
    later = await market.window_profile(BTC, NOW + timedelta(minutes=1), 15)
    assert venue.calls == 2 * fetched and later[:14] == first[1:]


def test_closed_candle_indices_match_the_candles_closed_by_then() -> None:
    series = shipped_candles(BTC)
    rng = random.Random(3)
    first = series.first_open_time
    for _ in range(300):
        start = first + timedelta(seconds=rng.uniform(-600, 7200))
        end = start + timedelta(seconds=rng.uniform(-60, 3600))
        now = start + timedelta(seconds=rng.uniform(-120, 4000), microseconds=rng.randrange(1000))
        expected = [c for c in series.range(start, min(end, now)) if c.open_time + timedelta(minutes=1) <= now]
        assert [series.candle(i) for i in series.indices(start, min(end, now), closed_by=now)] == expected


async def test_minute_fractions_are_the_curves_and_follow_a_new_days_curve() -> None:
    market = MarketData(sim())
    curve = await market.volume_curve(BTC, NOW)
    first = NOW.replace(second=0)
    expected = [curve.fraction(first + timedelta(minutes=k), first + timedelta(minutes=k + 1)) for k in range(15)]
    assert await market.minute_fractions(BTC, NOW, 15) == expected
    assert await market.minute_fractions(BTC, NOW + timedelta(seconds=20), 15) == expected  # same minute: shared
    assert await market.minute_fractions(BTC, NOW, 3) == expected[:3]
    # the next day's curve (built from other days) replaces the memo's values for the same key
    next_day = NOW + timedelta(days=1)
    market._fractions[(BTC, next_day.replace(second=0), 15)] = (curve, tuple(expected))  # as if kept from before
    new_curve = await market.volume_curve(BTC, next_day)
    assert new_curve is not curve
    later = next_day.replace(second=0)
    assert await market.minute_fractions(BTC, next_day, 15) == [
        new_curve.fraction(later + timedelta(minutes=k), later + timedelta(minutes=k + 1)) for k in range(15)]


async def test_a_window_profile_kept_in_the_memo_restores_its_usual_volumes() -> None:
    market = MarketData(sim())
    await market.window_profile(BTC, NOW, 15)
    usual = market.usual_minute_volume(BTC, NOW)
    await market.window_profile(BTC, NOW + timedelta(days=1), 15)  # same minutes of day, other days
    assert market.usual_minute_volume(BTC, NOW) != usual
    await market.window_profile(BTC, NOW, 15)  # from the memo
    assert market.usual_minute_volume(BTC, NOW) == usual
