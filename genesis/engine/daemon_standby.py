"""The daemon's standby (``genesis.engine.daemon``): before the account lease is claimed a
daemon stands by; on PostgreSQL the standby is warm (its fenced event store, venue and markets
open, the markets refreshed), and a daemon that loses the lease goes back to standby (with a
new ``WarmStandby``).
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
from genesis.observability.runtime import Observability
from genesis.runtime.wiring import Engine
from genesis.store.eventstore import EventStore, StorageError
from genesis.venue.base import Venue, VenueError

log = structlog.get_logger("genesis.daemon")
STANDBY_MARKETS_REFRESH_SECONDS = 300.0  # a warm standby reloads the venue's markets this often

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


class WarmStandby:
    """What a daemon opens before (warm standby) or after it claims the account lease, for
    one round from standby to stop: the event store (``wired``), then the clock, the venue and
    its markets (``instruments``). ``spawn`` starts the daemon's tasks (their failure stops it),
    ``notify`` speaks to systemd, ``store_options`` are the ``EventStore`` keyword arguments
    (the lease fence), ``lease_held`` whether the leases are held; ``may_send`` whether an
    order may be sent now (the leases held and unexpired by the daemon's own reckoning,
    ``LeaseKeeper.may_send``), checked by the ccxt venue as it stamps each order."""

    def __init__(self, options: DaemonOptions, config: Callable[[], RuntimeConfig], observability: Observability,
                 store_options: Callable[[], dict[str, Any]], lease_held: Callable[[], bool],
                 spawn: Spawn, notify: Callable[..., None], may_send: Callable[[], bool] | None = None):
        self._options, self._config, self._observability = options, config, observability
        self._store_options, self._lease_held = store_options, lease_held
        self._spawn, self._notify, self._may_send = spawn, notify, may_send
        self.wired: Engine | None = None
        self.venue: Venue | None = None
        self.clock: Clock | None = None
        self.instruments: dict = {}  # type: ignore[type-arg]

    def standing_by(self) -> None:
        """systemd: a standby has started (``READY=1``), its status says it waits for the lease."""
        self._notify("READY=1\nSTATUS=standby: another daemon holds the account lease", wait_seconds=1.0)

    async def open_store(self) -> Engine:
        """The event store (fenced on PostgreSQL: it commits nothing until the leases are held)."""
        self.wired, identity = await open_daemon_store(self._options, self._store_options())
        self._spawn(self._watch_store(self.wired.store), "store-watch")
        if identity is not None:
            self._spawn(watch_identity(self._options.db_path, identity), "database-file-watch")
        return self.wired

    async def open_venue(self, sim_window: tuple[datetime, datetime]) -> None:
        """The clock, the venue and its markets (``instruments``). The simulated venue's clock
        continues after the last stored event: built only once the leases are held."""
        assert self.wired is not None
        self.clock, self.venue, self.instruments = await open_daemon_venue(
            self._options, self.wired.database, sim_window, self._observability, self._config(), self._may_send)
        log.info("venue_markets_loaded", venue=self.venue.name, markets=len(self.instruments),
                 lease_held=self._lease_held())

    async def refresh_markets(self) -> None:
        """Warm standby: reload the venue's markets every ``STANDBY_MARKETS_REFRESH_SECONDS``,
        so a failover after a long standby starts on current ones."""
        assert self.venue is not None
        while True:
            await asyncio.sleep(STANDBY_MARKETS_REFRESH_SECONDS)
            try:
                self.instruments = await self.venue.instruments()
            except VenueError as exc:  # the markets already loaded stay; tried again next time
                log.warning("standby_markets_refresh_failed", error=str(exc))

    async def close(self) -> None:
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
