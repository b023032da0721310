"""The daemon's start-up parts a warm standby runs before it holds its account leases
(``genesis.engine.daemon``): the event store, with the progress log on its bus, and the
clock, the venue and its markets. Anything the operator must fix is a ``DaemonError``."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.bus import EventBus
from genesis.clock import Clock
from genesis.config import RuntimeConfig
from genesis.domain import events as ev
from genesis.domain.instrument import Instrument
from genesis.engine.daemon_options import DaemonError, DaemonOptions, daemon_clock, daemon_venue
from genesis.engine.database_file import DatabaseFileError, check_writable, file_identity
from genesis.observability.runtime import Observability
from genesis.runtime.wiring import Engine, EngineOptions, open_store
from genesis.store.location import is_postgres
from genesis.venue.base import Venue, VenueError

log = structlog.get_logger("genesis.daemon")


def log_progress(event: ev.Event) -> None:
    """Bus subscriber: one line per committed slice outcome or lifecycle change."""
    fields = {"execution_id": event.execution_id, "at": event.occurred_at.isoformat()}
    if isinstance(event, ev.TwapSliceExecuted):
        fields.update(slice=f"{event.slice_index + 1}/{event.slice_count}", status=event.status,
                      filled=str(event.filled_qty), avg_price=str(event.avg_price),
                      slippage_bps=str(event.slippage_bps))
    elif isinstance(event, ev.TwapCompleted):
        fields.update(reason=event.reason, filled=str(event.filled_qty), avg_price=str(event.avg_price),
                      implementation_shortfall_bps=str(event.implementation_shortfall_bps))
    log.info(f"bus_{event.event_type}", **fields)


async def open_daemon_store(options: DaemonOptions, store_options: dict[str, Any]) -> tuple[Engine, Any]:
    """The started event store (``store_options``: the lease fence on PostgreSQL) and, for a
    SQLite file, its identity to watch (None on PostgreSQL)."""
    try:  # never report ready on a database that takes no writes (PostgreSQL: checked by the lock)
        identity = None if is_postgres(options.db_path) else file_identity(options.db_path)
        if identity is not None:
            await asyncio.to_thread(check_writable, options.db_path)
    except DatabaseFileError as exc:
        raise DaemonError(str(exc)) from None
    bus = EventBus()
    bus.subscribe("progress-log", log_progress,
                  (ev.TwapSliceExecuted, ev.VwapSliceExecuted, ev.TwapCompleted, ev.VwapCompleted,
                   ev.RiskDenied, ev.ExecutionPaused, ev.ExecutionResumed, ev.ExecutionCancelled,
                   ev.ExecutionFailed, ev.EmergencyLiquidationStarted))
    return await open_store(options.db_path, EngineOptions(hooks=options.hooks, **store_options), bus), identity


async def open_daemon_venue(options: DaemonOptions, database: AsyncEngine, sim_window: tuple[datetime, datetime],
                            observability: Observability, config: RuntimeConfig,
                            may_send: Callable[[], bool] | None = None) -> tuple[Clock, Venue, dict[str, Instrument]]:
    """The clock, the venue (watched by ``observability``; ``may_send``: the lease check of
    its order sends) and its markets."""
    clock = await daemon_clock(options, database, sim_window)
    venue = observability.watch_venue(daemon_venue(options, clock, config, may_send))
    try:
        instruments = await venue.instruments()
    except VenueError as exc:
        await venue.close()
        raise DaemonError(f"venue {venue.name}: cannot load its markets: {exc}") from None
    return clock, venue, instruments
