"""One wiring of the engine, used by the daemon, ``genesis backtest``, the test harness and the
engine bench: the database, the bus, the event store, the clock, the venue and the supervisor
(risk, positions, market data, the runners' settings, pacer and hooks), from a config and
``EngineOptions``.

``build_engine`` builds it all at once (backtest, tests, bench). The daemon builds it in its
start-up phase a part at a time, because its clock depends on the store and its instruments
on the venue: ``open_store`` then ``build_supervisor``. ``Engine.close`` (``drain``, then
``release``) takes it down in the reverse order whichever way it was built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.bus import EventBus
from genesis.clock import Clock
from genesis.config import RuntimeConfig
from genesis.domain.instrument import Instrument
from genesis.domain.risk import RiskEngine
from genesis.engine.account_cap import AccountCaps
from genesis.engine.hooks import NO_HOOKS, EngineHooks
from genesis.engine.market_data import MarketData
from genesis.engine.supervisor import Supervisor
from genesis.engine.supervisor_config import runner_settings
from genesis.store.candle_cache import CandleCache
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from genesis.store.leases import SqlFence
from genesis.store.pg_session import DEFAULT_STALL_BOUND_SECONDS
from genesis.store.recorded_fills import RecordedFillsReader
from genesis.tuning import DEFAULT_TUNING, Tuning
from genesis.venue.base import MeasuresTradedVolume, Venue, capable


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How the engine is put together, beyond the config.

    ``durable``: fsync on commit (off only for throwaway databases: backtests, benches).
    ``commit_in``: where the store's transactions run (``"process"`` or ``"thread"``).
    ``candle_cache``: keep market history in SQLite across restarts (worth it only for a
    database that outlives the run). ``tuning``: the scheduling tuning (``genesis.tuning``).
    ``hooks``: chaos and bench hooks (``genesis.engine.hooks``; by default none).
    ``precondition``: run inside every commit transaction (a check in Python; it needs
    ``commit_in="thread"``). ``fence``: the daemon's account-lease fence on PostgreSQL, SQL
    sent with every commit (``genesis.engine.lease_keeper``; either committer).
    ``stall_bound_s``: on PostgreSQL, how long a transaction of the store's connections may
    wait for the daemon before the server ends it (``genesis.store.pg_session``: the lease
    keeper's, from the lease)."""

    durable: bool = True
    commit_in: str | None = None  # None: the backend's own (EventStore)
    candle_cache: bool = True
    tuning: Tuning = DEFAULT_TUNING
    hooks: EngineHooks = field(default_factory=lambda: NO_HOOKS)
    precondition: Callable[[Connection], None] | None = None  # run in every commit (thread committer)
    fence: SqlFence | None = None  # the daemon's lease fence on PostgreSQL
    stall_bound_s: float = DEFAULT_STALL_BOUND_SECONDS


@dataclass(slots=True)
class Engine:
    """The wired engine. ``clock``, ``venue`` and ``supervisor`` are None until built."""

    database: AsyncEngine
    bus: EventBus
    store: EventStore
    options: EngineOptions
    clock: Clock | None = None
    venue: Venue | None = None
    supervisor: Supervisor | None = None

    async def drain(self, timeout_seconds: float) -> None:
        """Stop the runners, waiting up to ``timeout_seconds`` for them to record where they are."""
        if self.supervisor is not None:
            await self.supervisor.shutdown(timeout_seconds)

    async def release(self, close_venue: bool = True) -> None:
        """Stop the store (what was appended is committed), close the bus, the venue (unless
        the caller owns it) and the database."""
        await self.store.stop()
        await self.bus.close()
        if close_venue and self.venue is not None:
            await self.venue.close()
        await self.database.dispose()

    async def close(self, drain_timeout_seconds: float = 1.0, close_venue: bool = True) -> None:
        """``drain``, then ``release``."""
        try:
            await self.drain(drain_timeout_seconds)
        finally:
            await self.release(close_venue)


async def open_store(db_path: Path, options: EngineOptions = EngineOptions(),
                     bus: EventBus | None = None) -> Engine:
    """The database (already migrated), a bus and the started event store."""
    database = async_engine(db_path, durable=options.durable, stall_bound_s=options.stall_bound_s)
    bus = bus or EventBus()
    store = EventStore(database, bus, commit_in=options.commit_in, tuning=options.tuning,
                       precondition=options.precondition, fence=options.fence)
    try:
        await store.start()
    except BaseException:
        await bus.close()
        await database.dispose()
        raise
    return Engine(database, bus, store, options)


def build_supervisor(engine: Engine, clock: Clock, venue: Venue, instruments: dict[str, Instrument],
                     config: RuntimeConfig) -> Supervisor:
    """The supervisor and what its runners share (risk, positions, market data, settings,
    pacer, hooks), from ``config``; kept on ``engine`` with its clock and venue."""
    options = engine.options
    market = MarketData(venue, config.twap.volume_lookback_days,
                        CandleCache(engine.database) if options.candle_cache else None)
    engine.clock, engine.venue = clock, venue
    pacer = options.tuning.pacer()
    # one ledger per account and symbol, shared by every runner of this supervisor
    account_caps = AccountCaps(config.risk.account_participation_cap, clock=clock, pace=pacer.turn,
                               traded_volume=venue.traded_volume if capable(venue, MeasuresTradedVolume) else None,
                               recorded_fills=RecordedFillsReader(engine.database).since)
    engine.supervisor = Supervisor(
        engine.store, venue, clock, instruments, RiskEngine(config.risk.limits()), runner_settings(config),
        router_twap=config.router.twap, strategist_min_equity_usdt=config.tiers.strategist_min_equity_usdt,
        market=market, pacer=pacer, hooks=options.hooks, account_caps=account_caps)
    return engine.supervisor


async def build_engine(db_path: Path, config: RuntimeConfig, clock: Clock,
                       venue: Callable[[Clock], Venue],
                       instruments: dict[str, Instrument] | Callable[[Venue], Awaitable[dict[str, Instrument]]],
                       options: EngineOptions = EngineOptions()) -> Engine:
    """The whole engine on a migrated database: ``venue`` is built on ``clock``;
    ``instruments``, a mapping or read from the venue (``venue.instruments``)."""
    engine = await open_store(db_path, options)
    try:
        venue_obj = venue(clock)
        engine.venue = venue_obj
        known = instruments if isinstance(instruments, dict) else await instruments(venue_obj)
        build_supervisor(engine, clock, venue_obj, known, config)
    except BaseException:
        await engine.close()
        raise
    return engine
