"""The daemon: migrations, store, venue, supervisor, command inbox, signals, systemd.

``Daemon.run()`` is what ``genesis run`` calls; it reads as its phases: ``startup`` (lock,
options, database, the engine as ``genesis.runtime.wiring`` builds it, recovery), ``serve``
(ready; the command poller and the watchdog until a stop), ``shutdown`` (drain the runners,
stop the store, close the rest). Signals: SIGUSR1 pauses every running
execution, SIGUSR2 resumes every paused one, SIGTERM/SIGINT drain and exit 0, SIGHUP reloads
the config (an invalid file is refused and the old config stays). A burst of signals coalesces
(``engine.signals``): any number of SIGHUPs is one reload (one more if they arrive during it),
and of SIGUSR1/SIGUSR2 the last one decides. The daemon holds its collaborators: the signal
handling and the config reload (``engine.daemon_signals``), and per round from standby to stop
what it opens, warm before the account lease is claimed (``engine.daemon_standby``).
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.exc import SQLAlchemyError

from genesis.clock import Clock
from genesis.config import RuntimeConfig
from genesis.engine.command_poller import CommandPoller
from genesis.engine.core_dumps import forbid_core_dumps, is_dumpable
from genesis.engine.daemon_options import DaemonError, DaemonOptions, check_options
from genesis.engine.daemon_signals import ConfigReloader, SignalHandlers
from genesis.engine.daemon_standby import WarmStandby
from genesis.engine.database_file import DatabaseFileError, check_writable
from genesis.engine.command_listener import listen_for_commands
from genesis.engine.lease_keeper import LeaseKeeper, default_account
from genesis.engine.pidlock import LockError, daemon_lock
from genesis.engine.supervisor import Supervisor
from genesis.engine.systemd import SystemdNotifier
from genesis.observability.alerts import AlertsSetupError
from genesis.observability.runtime import Observability
from genesis.runtime.wiring import Engine, build_supervisor
from genesis.store import migrate
from genesis.store.eventstore import EventStore
from genesis.store.location import is_postgres
from genesis.tuning import DEFAULT_TUNING
from genesis.venue.base import Venue

log = structlog.get_logger("genesis.daemon")


class Daemon:
    """One ``genesis run``: ``options`` and the current ``config`` (a SIGHUP replaces it);
    ``supervisor`` once the leases are held, ``ready`` once the executions are recovered."""

    def __init__(self, options: DaemonOptions, config: RuntimeConfig):
        self.options, self.config = options, config
        self.stop_event = asyncio.Event()
        self.notifier = SystemdNotifier()
        self._tasks: set[asyncio.Task[None]] = set()
        self._opened: WarmStandby | None = None  # this round's store, venue, clock and markets
        self._lock = daemon_lock(options.db_path, options.pidfile)
        self.supervisor: Supervisor | None = None
        supervisor = lambda: self.supervisor  # noqa: E731
        reloader = ConfigReloader(options.config_path, lambda: self.config, self._adopt_config, supervisor,
                                  self._spawn)
        self._signals = SignalHandlers(self._signal_stop, supervisor, reloader)
        self._task_failed = False
        self._inbox_nudge = asyncio.Event()  # set by the API after it writes a command
        self._api = None  # genesis.api.server.ApiServer when --http
        self.ready = False  # recovered and taking commands (the API's /readyz)

    @property
    def pid_path(self) -> Path:
        return self._lock.path

    @property
    def venue(self) -> Venue | None:
        """The venue, once open (this round)."""
        return self._opened.venue if self._opened is not None else None

    @property
    def clock(self) -> Clock | None:
        """The clock, once the venue is open (this round)."""
        return self._opened.clock if self._opened is not None else None

    @property
    def store(self) -> EventStore:
        """The event store (``AttributeError`` until it is open, like any attribute not set yet)."""
        return self._wired("store").store

    @property
    def bus(self):  # type: ignore[no-untyped-def]
        """The event bus (``AttributeError`` until the store is open)."""
        return self._wired("bus").bus

    def _wired(self, name: str) -> Engine:
        if self._opened is None or self._opened.wired is None:
            raise AttributeError(f"{name}: the event store is not open yet")
        return self._opened.wired

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, shut down. Exit code 0, or 1 when a daemon task died."""
        # handlers first: a signal during start-up must not kill the process half-way
        self._signals.install()
        try:
            try:
                self._lock.acquire()
            except LockError as exc:
                raise DaemonError(str(exc)) from None
            while True:
                try:
                    code = await self._run_once()
                finally:
                    self._lock.release()
                if not self._lease_lost or self._stop_signalled:
                    return code
                log.info("daemon_standby_again", note="the account lease was lost; waiting to claim it")
                self._reset_for_standby()
                try:
                    self._lock.acquire()
                except LockError as exc:
                    raise DaemonError(str(exc)) from None
        finally:
            self._signals.uninstall()

    _stop_signalled = False  # SIGTERM/SIGINT: never go back to standby
    _lease_lost = False  # stopped working because another daemon took the account over

    async def _run_once(self) -> int:
        """Standby until the account lease is claimed, then start, serve, shut down. On
        PostgreSQL the standby is warm: its event store (fenced), venue and markets are open
        before the claim, so a failover leaves only recovery and reconciliation to do."""
        sim_window = check_options(self.options)  # bad options (and alert URLs) fail before the database is touched
        try:
            self.observability = Observability(lambda: self.config)
        except AlertsSetupError as exc:
            raise DaemonError(str(exc)) from None
        try:  # the leases table first
            await asyncio.to_thread(migrate.upgrade, self.options.db_path)
            if not is_postgres(self.options.db_path):  # a file that takes no writes: refused, never retried
                await asyncio.to_thread(check_writable, self.options.db_path)
        except (SQLAlchemyError, migrate.command_error()) as exc:  # evaluated only on an error
            raise DaemonError(f"{self.options.db_path}: cannot open or migrate the database: "
                              f"{getattr(exc, 'orig', None) or exc}") from None
        except DatabaseFileError as exc:
            raise DaemonError(str(exc)) from None
        self.leases = LeaseKeeper(self.options.db_path,
                                  self.options.accounts or (default_account(self.options.venue),),
                                  self.options.lease_seconds)
        if self.notifier.watchdog_seconds:  # a standby is alive too: systemd must not kill it
            self._spawn(self._watchdog(), "systemd-watchdog")
        leases = self.leases
        opened = self._opened = WarmStandby(self.options, lambda: self.config, self.observability,
                                            leases.store_options, lambda: bool(leases.held), self._spawn,
                                            self.notifier.notify, leases.may_send)
        if self.leases.fenced:  # warm standby: everything that writes nothing, before the claim
            await opened.open_store()
            if self.options.venue != "sim":
                await opened.open_venue(sim_window)
                self._spawn(opened.refresh_markets(), "standby-markets")
        if not await self.leases.wait_claimed(self.stop_event, opened.standing_by):
            self.leases.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await opened.close()
            return 0
        for task in [t for t in self._tasks if t.get_name() == "standby-markets"]:
            task.cancel()
        self._spawn(self._keep_leases(self.leases), "lease-keeper")  # renewing from the claim on
        recovered = await self._startup(sim_window)
        await self._serve(recovered)
        await self._shutdown()
        return 1 if self._task_failed else 0

    async def _startup(self, sim_window: tuple[datetime, datetime]) -> int:
        """Leases held: whatever the warm standby has not opened yet (store, clock, venue), the
        supervisor, the live executions recovered (how many). ``DaemonError`` for anything the
        operator must fix."""
        opened = self._opened
        assert opened is not None
        wired = opened.wired or await opened.open_store()
        if opened.venue is None:
            await opened.open_venue(sim_window)
        instruments = opened.instruments
        self.supervisor = build_supervisor(wired, opened.clock, opened.venue, instruments, self.config)
        self.supervisor.accounts = self.leases.accounts  # it works only the executions of its accounts
        await self.observability.start(wired.bus, wired.store, wired.database, opened.venue, instruments,
                                       account=self.leases.accounts[0])
        if self.options.http:
            await self._start_api(instruments)
        # before recovery: frozen objects are never collected, runners must not be
        DEFAULT_TUNING.apply_to_process()
        recovered = await self.supervisor.recover()
        self._signals.apply_deferred()
        return len(recovered)

    async def _serve(self, recovered: int) -> None:
        """Ready: serve commands (and the systemd watchdog) until a stop signal or a failed task."""
        assert self.supervisor is not None
        poller = CommandPoller(self._wired("database").database, self.store, self.supervisor, lambda: self.config,
                               self._inbox_nudge,
                               owner=self.leases.owner if self.leases.fenced else None,
                               accounts=self.leases.accounts)
        self._spawn(poller.run(self.stop_event), "command-poller")
        if is_postgres(self.options.db_path):  # NOTIFY wakes the poller at once
            self._spawn(listen_for_commands(self.options.db_path, self.wake_command_poller), "command-listener")
        self.ready = True
        self.notifier.notify("READY=1", wait_seconds=1.0)
        log.info("daemon_ready", db=str(self.options.db_path), venue=self.venue.name,
                 clock=self.clock.now().isoformat(), recovered=recovered, pid=os.getpid(),
                 dumpable=is_dumpable())
        await self.stop_event.wait()

    async def _start_api(self, instruments: dict) -> None:  # type: ignore[type-arg]
        from genesis.api.server import ApiSetupError, serve_api  # aiohttp's web stack only with --http
        from genesis.api.tokens import TokenFileMissing, token_path
        from genesis.dashboard.routes import dashboard_routes

        try:
            tokens = token_path(self.options.db_path, self.options.tokens_path)
            self._api = await serve_api(self, self.options.http, instruments,
                                        dashboard_routes(self.options.db_path, tokens), tokens)
        except (ApiSetupError, TokenFileMissing) as exc:
            await self.observability.stop()
            await self.venue.close()
            raise DaemonError(str(exc)) from None

    def wake_command_poller(self) -> None:
        """Read the command inbox now instead of at the next poll (the API just wrote to it)."""
        self._inbox_nudge.set()

    def _spawn(self, coro, name: str) -> asyncio.Task[None]:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("daemon_task_failed", task=task.get_name(), error=repr(task.exception()))
            self._task_failed = True
            self.stop_event.set()

    # -- lifecycle -------------------------------------------------------------------------

    def _adopt_config(self, config: RuntimeConfig) -> None:
        self.config = config  # the poller reads its interval here

    def _signal_stop(self) -> None:
        """SIGTERM/SIGINT: drain and exit, never back to standby."""
        self._stop_signalled = True
        self.stop_event.set()

    def _reset_for_standby(self) -> None:
        """After the account lease was lost and everything was stopped: start over in standby."""
        self.stop_event = asyncio.Event()
        self._lease_lost = self._task_failed = self.ready = False
        self.supervisor, self._api, self._opened = None, None, None

    async def _keep_leases(self, keeper: LeaseKeeper) -> None:
        """Renew the leases; once one is lost, stop working (the daemon goes back to standby)."""
        await keeper.keep()
        self._lease_lost = True
        self.stop_event.set()

    async def _watchdog(self) -> None:
        assert self.notifier.watchdog_seconds
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(self.notifier.watchdog_seconds / 2)

    async def _shutdown(self) -> None:
        self.notifier.notify("STOPPING=1", wait_seconds=1.0)
        if self._api is not None:
            await self._api.stop()
        log.info("daemon_draining", executions=len(self.supervisor.active_ids))
        wired = self._wired("engine")
        await wired.drain(self.config.engine.drain_timeout_seconds)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.observability.stop()  # after the drain: the alerts it raised are sent
        await wired.release()
        await self.leases.release()  # after the last commit: a standby takes over at once
        self.leases.close()
        log.info("daemon_stopped")


def run_daemon(options: DaemonOptions, config: RuntimeConfig) -> int:
    """``genesis run``: the daemon on a fresh event loop; its exit code."""
    forbid_core_dumps()  # before any credential is loaded
    return asyncio.run(Daemon(options, config).run())
