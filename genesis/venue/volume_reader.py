"""``VolumeReader``: a ccxt venue's ``traded_volume`` (the ``MeasuresTradedVolume`` capability the
participation cap is held to), over a per-symbol ``TradeVolume``:

* ``StreamingCcxtVenue``: the ``TradeVolume`` its market hub fills from the trade stream; only
  what the stream did not cover (before the subscription, while it was down or stalled) is read
  over REST;
* ``CcxtVenue`` (REST only): a ``TradeVolume`` filled over REST alone: closed minutes from
  klines, the rest trade by trade from ``aggTrades`` (Binance weight 2 per page of 1000). What
  was read is kept, so each look reads only the stretch since the previous one.

Reads are bounded by ``rest_pages`` per look (what is left stays a gap: a lower bound, which
can only hold the cap tighter, read by the next look) and serialised per symbol (one read for
concurrent lookers).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from genesis.venue.ccxt_support import dt_to_ms, ms_to_dt
from genesis.venue.trade_volume import (AGG_TRADES_PAGE, DEFAULT_KEEP_SECONDS, DEFAULT_REST_PAGES,
                                        TradeVolume)


class VolumeReader:
    """The traded volume of ``venue``'s symbols (see module docstring). ``volume_of``: the
    symbol's ``TradeVolume`` (by default one kept here, filled over REST only). ``venue``: a
    ``CcxtVenue`` (its clock, ``candles``, client and ``calls.read_step``)."""

    def __init__(self, venue: Any, volume_of: Callable[[str], TradeVolume] | None = None,
                 *, keep_seconds: float = DEFAULT_KEEP_SECONDS,
                 rest_pages: int = DEFAULT_REST_PAGES):
        self.venue = venue
        self.keep_seconds = keep_seconds
        self.rest_pages = rest_pages
        self._own: dict[str, TradeVolume] = {}
        self._volume_of = volume_of or self._kept
        self._locks: dict[str, asyncio.Lock] = {}

    def _kept(self, symbol: str) -> TradeVolume:
        if symbol not in self._own:
            self._own[symbol] = TradeVolume(keep_seconds=self.keep_seconds)
        return self._own[symbol]

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal:
        """Base volume traded in ``[start, min(end, now))``, a lower bound (``TradeVolume``)."""
        now_ms = dt_to_ms(self.venue.clock.now())
        start_ms, end_ms = dt_to_ms(start), min(dt_to_ms(end), now_ms)
        if end_ms <= start_ms:
            return Decimal(0)
        volume = self._volume_of(symbol)
        volume.keep_seconds = self.keep_seconds
        volume.forget_stale(now_ms)
        if volume.rest_gaps(start_ms, end_ms, now_ms):
            async with self._locks.setdefault(symbol, asyncio.Lock()):
                await volume.fill_gaps(
                    start_ms, end_ms, now_ms=now_ms, max_pages=self.rest_pages,
                    fetch_trades=lambda since, until: self._agg_trades(symbol, since, until),
                    closed_minutes=lambda a, b: self._minutes(symbol, a, b))
        return volume.volume(start_ms, end_ms, now_ms)

    async def _agg_trades(self, symbol: str, since: int, until: int) -> list[dict[str, Any]]:
        venue = self.venue
        return await venue.calls.read_step("fetch_trades", lambda: venue.ex.fetch_trades(
            symbol, since, AGG_TRADES_PAGE, {"until": until}))

    async def _minutes(self, symbol: str, start_ms: int, end_ms: int) -> dict[int, Decimal]:
        candles = await self.venue.candles(symbol, ms_to_dt(start_ms), ms_to_dt(end_ms))
        return {dt_to_ms(c.open_time): c.volume for c in candles}
