"""The market data service's candle cache: an Alembic-managed ``candles`` table, so a restart
or a second execution does not fetch 20 days of history from the venue again.

Inserts only the rows that are missing (a portable upsert for immutable closed candles).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.store import tables as t
from genesis.venue.base import Candle


class CandleCache:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def load(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        c = t.candles.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(c.open_time, c.open, c.high, c.low, c.close, c.volume)
                .where(and_(c.symbol == symbol, c.open_time >= start, c.open_time < end))
                .order_by(c.open_time))
            return [Candle(*r) for r in rows]

    async def save(self, symbol: str, candles: list[Candle]) -> int:
        """Store closed candles not stored yet; returns how many were new."""
        if not candles:
            return 0
        c = t.candles.c
        async with self._engine.begin() as conn:
            have = set((await conn.scalars(select(c.open_time).where(and_(
                c.symbol == symbol, c.open_time >= candles[0].open_time,
                c.open_time <= candles[-1].open_time)))).all())
            rows = [{"symbol": symbol, "open_time": k.open_time, "open": k.open, "high": k.high, "low": k.low,
                     "close": k.close, "volume": k.volume} for k in candles if k.open_time not in have]
            if rows:
                await conn.execute(insert(t.candles), rows)
            return len(rows)
