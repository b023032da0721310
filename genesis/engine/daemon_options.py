"""The daemon's options and what its start-up derives from them: checked venue and
``--sim-start``, the clock, the venue. Anything the operator must fix is a ``DaemonError``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.clock import Clock, ScaledClock, WallClock, utc
from genesis.config import RuntimeConfig
from genesis.engine.hooks import NO_HOOKS, EngineHooks
from genesis.engine.venues import VenueSetupError, build_ccxt_venue, build_sim_venue, default_sim_start
from genesis.store import tables as t
from genesis.venue.base import Venue


class DaemonError(Exception):
    """The daemon cannot start (another one runs on this database, bad options...)."""


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    db_path: Path
    config_path: Path | None
    venue: str = "sim"
    speed: float = 1.0
    sim_start: datetime | None = None
    pidfile: bool = True
    exchange_url: str | None = None  # ccxt venues: base URL replacing the exchange's REST host
    # ccxt venues: the clock to run on, asked of the exchange (the paper exchange's simulated
    # time: ``genesis run --paper-clock``); None: the wall clock
    exchange_clock: Callable[[], Awaitable[Clock]] | None = None
    hooks: EngineHooks = NO_HOOKS  # chaos only: ``genesis run --kill-point``
    http: str | None = None  # HOST:PORT of the HTTP API (genesis.api); None: no API
    tokens_path: Path | None = None  # the API token file (--tokens); None: beside a SQLite database
    streams: bool = False  # ccxt venues: market data and fills from WebSocket streams
    accounts: tuple[str, ...] = ()  # the account leases to hold (genesis.store.leases); (): the venue's own
    lease_seconds: float = 15.0  # genesis.engine.lease_keeper.DEFAULT_LEASE_SECONDS


def check_options(options: DaemonOptions) -> tuple[datetime, datetime]:
    """Validate the venue and ``--sim-start``; the shipped candles' common ``(first, end)``."""
    if options.venue.startswith("ccxt:") and len(options.venue) > 5:
        return datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc)
    if options.venue != "sim":
        raise DaemonError(f"--venue {options.venue!r} is not available; use sim or ccxt:<exchange id>")
    from genesis.venue.candles import shipped_candles, shipped_symbols

    series = [shipped_candles(symbol) for symbol in shipped_symbols()]  # load before the clock ticks
    first = max(s.first_open_time for s in series)
    end = min(s.end_time for s in series)
    if options.sim_start is not None and not first <= utc(options.sim_start) < end:
        raise DaemonError(f"--sim-start {utc(options.sim_start).isoformat()} is outside the shipped "
                          f"candles ({first.isoformat()} to {end.isoformat()})")
    return first, end

async def daemon_clock(options: DaemonOptions, database: AsyncEngine,
                       sim_window: tuple[datetime, datetime]) -> Clock:
    """The wall clock for an exchange (or its own, when asked); for the simulated venue a
    ``ScaledClock`` from ``--sim-start``, never before the last event stored."""
    if options.venue.startswith("ccxt:"):
        # the wall clock for a real exchange; a paper exchange's simulated one when asked
        if options.exchange_clock is None:
            return WallClock()
        return await options.exchange_clock()
    _first, end = sim_window
    start = utc(options.sim_start) if options.sim_start else default_sim_start()
    # the simulated market never runs backwards across restarts: continue after the last event
    async with database.connect() as conn:
        last = await conn.scalar(select(func.max(t.events.c.occurred_at)))
    if last is not None and last > start:
        start = last
        if start >= end:
            raise DaemonError(f"the simulated market in {options.db_path} has reached the end of the "
                              f"shipped candles ({end.isoformat()}); use a new database")
    return ScaledClock(start, options.speed)

def daemon_venue(options: DaemonOptions, clock: Clock, config: RuntimeConfig,
                 may_send: Callable[[], bool] | None = None) -> Venue:
    try:
        if options.venue.startswith("ccxt:"):
            return build_ccxt_venue(options.venue.split(":", 1)[1], options.exchange_url, clock,
                                    streams=options.streams, config=config, may_send=may_send)
        return build_sim_venue(clock, config)
    except VenueSetupError as exc:
        raise DaemonError(str(exc)) from None
