"""The daemon's standby (``genesis.engine.daemon``): before the account lease is claimed a
daemon stands by; on PostgreSQL the standby is warm (its fenced event store, venue and markets
open, the markets refreshed), and a daemon that loses the lease goes back to standby.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Callable, Coroutine

import structlog

from genesis.clock import Clock
from genesis.config import RuntimeConfig
from genesis.engine.daemon_options import DaemonOptions
from genesis.engine.daemon_startup import open_daemon_store, open_daemon_venue
from genesis.engine.database_file import watch_identity
from genesis.engine.lease_keeper import LeaseKeeper
from genesis.engine.supervisor import Supervisor
from genesis.engine.systemd import SystemdNotifier
from genesis.observability.runtime import Observability
from genesis.runtime.wiring import Engine
from genesis.store.eventstore import EventStore, StorageError
from genesis.venue.base import Venue, VenueError

log = structlog.get_logger("genesis.daemon")
STANDBY_MARKETS_REFRESH_SECONDS = 300.0  # a warm standby reloads the venue's markets this often


class WarmStandby:
    """The standby of ``Daemon`` (a part of it: it reads and sets the daemon's state)."""

    options: DaemonOptions
    config: RuntimeConfig
    stop_event: asyncio.Event
    notifier: SystemdNotifier
    leases: LeaseKeeper
    observability: Observability
    wired: Engine | None
    venue: Venue | None
    supervisor: Supervisor | None
    clock: Clock
    instruments: dict  # type: ignore[type-arg]
    engine: Any  # the database engine (sqlalchemy AsyncEngine)
    bus: Any
    store: EventStore
    _api: Any
    _lease_lost: bool
    _task_failed: bool
    ready: bool
    _spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]

    def _reset_for_standby(self) -> None:
        """After the account lease was lost and everything was stopped: start over in standby."""
        self.stop_event = asyncio.Event()
        self._lease_lost = self._task_failed = self.ready = False
        self.supervisor, self._api = None, None
        self.wired, self.venue = None, None

    def _standing_by(self) -> None:
        """systemd: a standby has started (``READY=1``), its status says it waits for the lease."""
        self.notifier.notify("READY=1\nSTATUS=standby: another daemon holds the account lease", wait_seconds=1.0)

    async def _keep_leases(self, keeper: LeaseKeeper) -> None:
        """Renew the leases; once one is lost, stop working (the daemon goes back to standby)."""
        await keeper.keep()
        self._lease_lost = True
        self.stop_event.set()

    async def _open_store(self) -> None:
        """The event store (fenced on PostgreSQL: it commits nothing until the leases are held)."""
        self.wired, identity = await open_daemon_store(self.options, self.leases.store_options())
        self.engine, self.bus, self.store = self.wired.database, self.wired.bus, self.wired.store
        self._spawn(self._watch_store(self.store), "store-watch")
        if identity is not None:
            self._spawn(watch_identity(self.options.db_path, identity), "database-file-watch")

    async def _open_venue(self, sim_window: tuple[datetime, datetime]) -> None:
        """The clock, the venue and its markets (``self.instruments``). The simulated venue's
        clock continues after the last stored event: built only once the leases are held."""
        self.clock, self.venue, self.instruments = await open_daemon_venue(
            self.options, self.engine, sim_window, self.observability, self.config)
        log.info("venue_markets_loaded", venue=self.venue.name, markets=len(self.instruments),
                 lease_held=bool(self.leases.held))

    async def _refresh_markets(self) -> None:
        """Warm standby: reload the venue's markets every ``STANDBY_MARKETS_REFRESH_SECONDS``,
        so a failover after a long standby starts on current ones."""
        assert self.venue is not None
        while True:
            await asyncio.sleep(STANDBY_MARKETS_REFRESH_SECONDS)
            try:
                self.instruments = await self.venue.instruments()
            except VenueError as exc:  # the markets already loaded stay; tried again next time
                log.warning("standby_markets_refresh_failed", error=str(exc))

    async def _close_warm(self) -> None:
        """Stopped in standby: close what the warm standby opened."""
        if self.venue is not None:
            await self.venue.close()
        if self.wired is not None:
            await self.wired.release(close_venue=False)

    @staticmethod
    async def _watch_store(store: EventStore) -> None:
        """A store whose writer stopped on its own (its commit process died...) takes no more
        events: fail this task, so the daemon exits 1 and systemd restarts it on what was committed."""
        error = await store.writer_failed()
        raise StorageError(f"the event store stopped: {error!r}")
