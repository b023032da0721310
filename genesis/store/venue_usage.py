"""The ``venue_usage`` table: the daemon's use of each venue account's limits, for the CLI.

The daemon (``genesis.observability.usage.VenueUsageRecorder``) rewrites its account's row
every few seconds; ``genesis status`` (another process) reads it. Not a projection: no event
fills it and a rebuild leaves it alone. ``updated_at`` is the daemon's wall clock at the write:
a row that stopped changing belongs to a daemon that stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from genesis.store import tables as t


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One account's figures. Counts the exchange did not report are None."""

    account: str
    venue: str
    updated_at: datetime
    weight_used_1m: float | None  # request weight used in the exchange's current minute
    weight_limit_1m: float | None
    weight_source: str | None  # "exchange" (its X-MBX-USED-WEIGHT-1M header) or "published" (our sum)
    order_count_10s: int | None  # the exchange's X-MBX-ORDER-COUNT-10S
    order_limit_10s: int | None
    order_count_1d: int | None
    order_limit_1d: int | None
    requests: int  # REST requests since the daemon started
    rate_limited: int  # 429/418 answers since the daemon started
    weight_since_start: float  # published weight of those requests
    slices_since_start: int  # slices the daemon closed since it started

    @property
    def weight_per_slice(self) -> float | None:
        """Published request weight per slice closed, since the daemon started."""
        return self.weight_since_start / self.slices_since_start if self.slices_since_start else None


async def write_usage(conn: AsyncConnection, row: UsageRow) -> None:
    """Replace the account's row (call inside a transaction)."""
    await conn.execute(delete(t.venue_usage).where(t.venue_usage.c.account == row.account))
    await conn.execute(insert(t.venue_usage).values(**asdict(row)))


def read_usage(conn: Connection) -> list[UsageRow]:
    """Every account's row, by account."""
    rows = conn.execute(select(t.venue_usage).order_by(t.venue_usage.c.account)).mappings()
    return [UsageRow(**dict(r)) for r in rows]
