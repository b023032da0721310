"""``VenueUsageRecorder``: the daemon's use of its venue account's limits, written for the CLI.

A venue that counts its request weight (``venue.weight``, a
``genesis.venue.request_weight.RequestWeight``: the ccxt venues) gets a row in ``venue_usage``
rewritten every ``interval_seconds`` (wall time): weight used in the exchange's last minute and
its limit, order counts per 10 s and per day with their limits, and the weight per slice since
the daemon started (the slices counted from the bus). The simulated venue counts no weight: no
row, and ``genesis status`` shows none.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.domain import events as ev
from genesis.store.venue_usage import UsageRow, write_usage

log = structlog.get_logger("genesis.usage")

DEFAULT_INTERVAL_SECONDS = 5.0
SLICE_EVENTS = (ev.TwapSliceExecuted, ev.VwapSliceExecuted)


def counts_weight(venue: object) -> bool:
    """Whether ``venue`` counts its request weight (has a ``RequestWeight`` as ``weight``)."""
    return callable(getattr(getattr(venue, "weight", None), "used", None))


class VenueUsageRecorder:
    """Writes ``account``'s ``venue_usage`` row (see module docstring)."""

    def __init__(self, engine: AsyncEngine, venue: Any, account: str,
                 interval_seconds: float = DEFAULT_INTERVAL_SECONDS):
        self.engine, self.venue, self.account, self.interval_seconds = engine, venue, account, interval_seconds
        self.slices = 0

    def on_event(self, event: ev.Event) -> None:
        """Bus subscriber: count the slices closed."""
        if isinstance(event, SLICE_EVENTS):
            self.slices += 1

    def row(self) -> UsageRow:
        """The figures now."""
        w = self.venue.weight
        used, limit = w.used()
        return UsageRow(self.account, self.venue.name, datetime.now(timezone.utc), used, limit, w.source,
                        w.order_count_10s, w.order_limit_10s, w.order_count_1d, w.order_limit_1d, w.requests,
                        w.rate_limited, w.published_since_start, self.slices)

    async def write(self) -> None:
        """Write the row now; a database error is logged (the next write tries again)."""
        try:
            async with self.engine.begin() as conn:
                await write_usage(conn, self.row())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("venue_usage_write_failed", error=str(exc))

    async def run(self) -> None:
        """Write every ``interval_seconds`` until cancelled."""
        while True:
            await self.write()
            await asyncio.sleep(self.interval_seconds)
