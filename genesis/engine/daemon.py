"""The daemon: migrations, store, venue, supervisor, command inbox, signals, systemd.

``Daemon.run()`` is what ``genesis run`` calls. Signals: SIGUSR1 pauses every running
execution, SIGUSR2 resumes every paused one, SIGTERM/SIGINT drain and exit 0, SIGHUP reloads
the config (an invalid file is refused and the old config stays). A burst of signals coalesces
(``engine.signals``): any number of SIGHUPs is one reload (one more if they arrive during it),
and of SIGUSR1/SIGUSR2 the last one decides.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import structlog
from alembic.util import CommandError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from genesis.algorithms.registry import submit_options
from genesis.bus import EventBus
from genesis.clock import Clock, ScaledClock, utc
from genesis.config import ConfigError, RuntimeConfig, load_config
from genesis.domain import events as ev
from genesis.domain.ids import is_execution_id
from genesis.engine.control import Desire
from genesis.engine.core_dumps import forbid_core_dumps, is_dumpable
from genesis.engine.command_listener import listen_for_commands
from genesis.engine.lease_keeper import DEFAULT_LEASE_SECONDS, LeaseKeeper, default_account
from genesis.engine.database_file import DatabaseFileError, check_writable, file_identity, watch_identity
from genesis.engine.supervisor import SubmissionRejected, Supervisor, apply_config, build_supervisor
from genesis.engine.pacing import settle_heap
from genesis.engine.pidlock import LockError, daemon_lock
from genesis.engine.signals import SignalBridge
from genesis.engine.systemd import SystemdNotifier
from genesis.engine.venues import VenueSetupError, build_ccxt_venue, build_sim_venue, default_sim_start
from genesis.log import configure_logging
from genesis.observability.alerts import AlertsSetupError
from genesis.observability.runtime import Observability
from genesis.requests import RequestError, validate_submit
from genesis.store import migrate
from genesis.store import tables as t
from genesis.store.candle_cache import CandleCache
from genesis.store.db import async_engine
from genesis.store.location import is_postgres
from genesis.store.eventstore import EventStore, StorageError, StoreClosedError
from genesis.store.inbox import Command, pending_commands
from genesis.venue.base import PermanentVenueError, Venue, VenueError

log = structlog.get_logger("genesis.daemon")
RELOAD_SETTLE_SECONDS = 0.1  # a SIGHUP reloads once no other has come for this long
COMMAND_CHAINS_AT_ONCE = 32  # executions whose commands the poller applies concurrently


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
    http: str | None = None  # HOST:PORT of the HTTP API (genesis.api); None: no API
    accounts: tuple[str, ...] = ()  # the account leases to hold (genesis.store.leases); (): the venue's own
    lease_seconds: float = DEFAULT_LEASE_SECONDS


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


class Daemon:
    def __init__(self, options: DaemonOptions, config: RuntimeConfig):
        self.options, self.config = options, config
        self.stop_event = asyncio.Event()
        self.notifier = SystemdNotifier()
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivered: set[int] = set()
        self._lock = daemon_lock(options.db_path, options.pidfile)
        self.supervisor: Supervisor | None = None
        self._early_toggle: str | None = None  # the last SIGUSR1/2 before the supervisor existed
        self._signals: SignalBridge | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False  # a SIGHUP arrived while a reload was under way
        self._task_failed = False
        self._inbox_nudge = asyncio.Event()  # set by the API after it writes a command
        self._api = None  # genesis.api.server.ApiServer when --http
        self.ready = False  # recovered and taking commands (the API's /readyz)
        self._lease_lost = False  # stopped working because another daemon took the account over

    @property
    def pid_path(self) -> Path:
        return self._lock.path

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, drain. Exit code 0, or 1 when a daemon task died."""
        # handlers first: a signal during start-up must not kill the process half-way
        self._install_signals()
        try:
            while True:
                code = await self._run_locked()
                if not self._lease_lost or self._stop_signalled:
                    return code
                log.info("daemon_standby_again", note="the account lease was lost; waiting to claim it")
                self._reset_for_standby()
        finally:
            assert self._signals is not None
            self._signals.uninstall()

    _stop_signalled = False  # SIGTERM/SIGINT: never go back to standby

    def _reset_for_standby(self) -> None:
        """After the account lease was lost and everything was stopped: start over in standby."""
        self.stop_event = asyncio.Event()
        self._lease_lost = self._task_failed = self.ready = False
        self.supervisor, self._api = None, None
        self._delivered.clear()

    def _standing_by(self) -> None:
        """systemd: a standby has started (``READY=1``), its status says it waits for the lease."""
        self.notifier.notify("READY=1\nSTATUS=standby: another daemon holds the account lease", wait_seconds=1.0)

    async def _keep_leases(self, keeper: LeaseKeeper) -> None:
        """Renew the leases; once one is lost, stop working (the daemon goes back to standby)."""
        await keeper.keep()
        self._lease_lost = True
        self.stop_event.set()

    async def _run_locked(self) -> int:
        try:
            self._lock.acquire()
        except LockError as exc:
            raise DaemonError(str(exc)) from None
        try:
            self._sim_window = self._check_options()  # bad options fail before the database is touched
            try:
                self.observability = Observability(lambda: self.config)
            except AlertsSetupError as exc:
                raise DaemonError(str(exc)) from None
            try:
                await asyncio.to_thread(migrate.upgrade, self.options.db_path)
            except (SQLAlchemyError, CommandError) as exc:
                raise DaemonError(f"{self.options.db_path}: cannot open or migrate the database: "
                                  f"{getattr(exc, 'orig', None) or exc}") from None
            try:  # never report ready on a database that takes no writes (PostgreSQL: checked by the lock)
                identity = None if is_postgres(self.options.db_path) else file_identity(self.options.db_path)
                if identity is not None:
                    await asyncio.to_thread(check_writable, self.options.db_path)
            except DatabaseFileError as exc:
                raise DaemonError(str(exc)) from None
            self.leases = LeaseKeeper(self.options.db_path,
                                      self.options.accounts or (default_account(self.options.venue),),
                                      self.options.lease_seconds)
            if self.notifier.watchdog_seconds:  # a standby is alive too: systemd must not kill it
                self._spawn(self._watchdog(), "systemd-watchdog")
            if not await self.leases.wait_claimed(self.stop_event, self._standing_by):  # standby until claimed
                self.leases.close()
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                return 0
            self._spawn(self._keep_leases(self.leases), "lease-keeper")  # renewing from the claim on
            self.engine = async_engine(self.options.db_path)
            self.bus = EventBus()
            self.bus.subscribe("progress-log", log_progress,
                               (ev.TwapSliceExecuted, ev.VwapSliceExecuted, ev.TwapCompleted, ev.VwapCompleted,
                                ev.RiskDenied, ev.ExecutionPaused, ev.ExecutionResumed, ev.ExecutionCancelled,
                                ev.ExecutionFailed, ev.EmergencyLiquidationStarted))
            self.store = EventStore(self.engine, self.bus, **self.leases.store_options())
            await self.store.start()
            self._spawn(self._watch_store(self.store), "store-watch")
            if identity is not None:
                self._spawn(watch_identity(self.options.db_path, identity), "database-file-watch")
            self.clock = await self._make_clock()
            self.venue = self.observability.watch_venue(self._make_venue())
            try:
                instruments = await self.venue.instruments()
            except VenueError as exc:
                await self.venue.close()
                raise DaemonError(f"venue {self.venue.name}: cannot load its markets: {exc}") from None
            self.supervisor = build_supervisor(self.store, self.venue, self.clock, instruments, self.config,
                                               CandleCache(self.engine))
            await self.observability.start(self.bus, self.store, self.engine, self.venue, instruments)
            if self.options.http:
                await self._start_api(instruments)
            settle_heap()  # before recovery: frozen objects are never collected, runners must not be
            recovered = await self.supervisor.recover()
            if self._early_toggle == "pause":
                self._signal_pause()
            elif self._early_toggle == "resume":
                self._signal_resume()
            self._spawn(self._poll_commands(), "command-poller")
            if is_postgres(self.options.db_path):  # NOTIFY wakes the poller at once
                self._spawn(listen_for_commands(self.options.db_path, self.wake_command_poller), "command-listener")
            self.ready = True
            self.notifier.notify("READY=1", wait_seconds=1.0)
            log.info("daemon_ready", db=str(self.options.db_path), venue=self.venue.name,
                     clock=self.clock.now().isoformat(), recovered=len(recovered), pid=os.getpid(),
                     dumpable=is_dumpable())
            await self.stop_event.wait()
            await self._shutdown()
            return 1 if self._task_failed else 0
        finally:
            self._lock.release()

    async def _start_api(self, instruments: dict) -> None:  # type: ignore[type-arg]
        from genesis.api.server import ApiSetupError, serve_api  # aiohttp's web stack only with --http
        from genesis.dashboard.routes import dashboard_routes

        try:
            self._api = await serve_api(self, self.options.http, instruments,
                                        dashboard_routes(self.options.db_path))
        except ApiSetupError as exc:
            await self.observability.stop()
            await self.venue.close()
            raise DaemonError(str(exc)) from None

    def wake_command_poller(self) -> None:
        """Read the command inbox now instead of at the next poll (the API just wrote to it)."""
        self._inbox_nudge.set()

    def _check_options(self) -> tuple[datetime, datetime]:
        """Validate the venue and ``--sim-start``; the shipped candles' common ``(first, end)``."""
        if self.options.venue.startswith("ccxt:") and len(self.options.venue) > 5:
            return datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc)
        if self.options.venue != "sim":
            raise DaemonError(f"--venue {self.options.venue!r} is not available; use sim or ccxt:<exchange id>")
        from genesis.venue.candles import shipped_candles, shipped_symbols

        series = [shipped_candles(symbol) for symbol in shipped_symbols()]  # load before the clock ticks
        first = max(s.first_open_time for s in series)
        end = min(s.end_time for s in series)
        if self.options.sim_start is not None and not first <= utc(self.options.sim_start) < end:
            raise DaemonError(f"--sim-start {utc(self.options.sim_start).isoformat()} is outside the shipped "
                              f"candles ({first.isoformat()} to {end.isoformat()})")
        return first, end

    async def _make_clock(self) -> Clock:
        if self.options.venue.startswith("ccxt:"):
            # a paper exchange's own simulated clock, or the wall clock for a real exchange
            from genesis.paper.clock import ExchangeUnreachable, exchange_clock

            try:
                return await exchange_clock(self.options.exchange_url)
            except ExchangeUnreachable as exc:
                raise DaemonError(str(exc)) from None
        _first, end = self._sim_window
        start = utc(self.options.sim_start) if self.options.sim_start else default_sim_start()
        # the simulated market never runs backwards across restarts: continue after the last event
        async with self.engine.connect() as conn:
            last = await conn.scalar(select(func.max(t.events.c.occurred_at)))
        if last is not None and last > start:
            start = last
            if start >= end:
                raise DaemonError(f"the simulated market in {self.options.db_path} has reached the end of the "
                                  f"shipped candles ({end.isoformat()}); use a new database")
        return ScaledClock(start, self.options.speed)

    def _make_venue(self) -> Venue:
        try:
            if self.options.venue.startswith("ccxt:"):
                return build_ccxt_venue(self.options.venue.split(":", 1)[1], self.options.exchange_url, self.clock)
            return build_sim_venue(self.clock, self.config)
        except VenueSetupError as exc:
            raise DaemonError(str(exc)) from None

    @staticmethod
    async def _watch_store(store: EventStore) -> None:
        """A store whose writer stopped on its own (its commit process died...) takes no more
        events: fail this task, so the daemon exits 1 and systemd restarts it on what was committed."""
        error = await store.writer_failed()
        raise StorageError(f"the event store stopped: {error!r}")

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

    # -- signals ---------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._signals = SignalBridge(asyncio.get_running_loop(), (
            signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT, signal.SIGHUP), self._on_signals)
        self._signals.install()

    def _on_signals(self, arrived: dict[int, int]) -> None:
        """On the loop, once per burst: ``arrived`` maps each signal to the order of its last arrival."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            if sig in arrived:
                self._signal_stop(signal.Signals(sig).name)
        toggles = [sig for sig in (signal.SIGUSR1, signal.SIGUSR2) if sig in arrived]
        if toggles:
            last = max(toggles, key=arrived.__getitem__)
            if last == signal.SIGUSR1:
                self._signal_pause()
            else:
                self._signal_resume()
        if signal.SIGHUP in arrived:
            if self._reload_task is not None and not self._reload_task.done():
                self._reload_again = True  # read the file once more when this reload ends
            else:
                self._reload_task = self._spawn(self._reload_config(), "config-reload")

    def _signal_pause(self) -> None:
        if self.supervisor is None:
            self._early_toggle = "pause"
            log.info("signal_deferred", signal="SIGUSR1", note="applied once executions are recovered")
            return
        n = self.supervisor.pause_all("signal SIGUSR1")
        log.info("signal_pause_all", signal="SIGUSR1", executions=n)

    def _signal_resume(self) -> None:
        if self.supervisor is None:
            self._early_toggle = "resume"
            log.info("signal_deferred", signal="SIGUSR2", note="applied once executions are recovered")
            return
        n = self.supervisor.resume_all("signal SIGUSR2")
        log.info("signal_resume_all", signal="SIGUSR2", executions=n)

    def _signal_stop(self, name: str) -> None:
        log.info("signal_stop", signal=name)
        self._stop_signalled = True
        self.stop_event.set()

    async def _reload_config(self) -> None:
        """Read the config once the SIGHUPs have settled (one read per burst), and once more
        if another arrived during the read."""
        while True:
            self._reload_again = False
            await asyncio.sleep(RELOAD_SETTLE_SECONDS)  # wall time, not the simulated clock
            if self._reload_again:
                continue  # the burst goes on
            await self._reload_config_once()
            if not self._reload_again:
                return

    async def _reload_config_once(self) -> None:
        path = self.options.config_path
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config_reload_rejected", error=str(exc), note="the previous config stays in force")
            return
        old_level, self.config = self.config.logging.level, new  # the poller reads its interval here
        if self.supervisor is not None:  # else build_supervisor reads self.config when it gets there
            apply_config(self.supervisor, new)
        log.info("config_reloaded", path=str(path), kill_switch=new.risk.kill_switch,
                 logging_level=new.logging.level, command_poll_seconds=new.engine.command_poll_seconds)
        if new.logging.level != old_level:  # after the line above, which the old level decides
            configure_logging(new.logging.level)

    # -- commands --------------------------------------------------------------------------

    async def _poll_commands(self) -> None:
        while not self.stop_event.is_set():
            try:
                async with self.engine.connect() as conn:
                    commands = await pending_commands(conn)
            except SQLAlchemyError as exc:
                log.error("command_poll_failed", error=str(exc))
                commands = []
            chains: dict[str, list[Command]] = {}  # one execution's commands stay in order
            for cmd in commands:
                if cmd.command_id not in self._delivered:
                    chains.setdefault(cmd.execution_id, []).append(cmd)
            slots = asyncio.Semaphore(COMMAND_CHAINS_AT_ONCE)
            await asyncio.gather(*(self._dispatch_chain(chain, slots) for chain in chains.values()))
            try:
                await asyncio.wait_for(self._inbox_nudge.wait(), self.config.engine.command_poll_seconds)
            except TimeoutError:
                pass
            self._inbox_nudge.clear()

    async def _dispatch_chain(self, chain: list[Command], slots: asyncio.Semaphore) -> None:
        """One execution's commands, in order; up to ``COMMAND_CHAINS_AT_ONCE`` executions side
        by side, so a burst of submissions shares the store's group commits instead of one
        commit each (and the venue sees a bounded number of book requests at once)."""
        async with slots:
            for cmd in chain:
                await self._dispatch_guarded(cmd)

    async def _dispatch_guarded(self, cmd: Command) -> None:
        """Task boundary of one command: whatever goes wrong with it becomes its recorded
        rejection, and the poller goes on serving the others."""
        try:
            await self._dispatch(cmd)
        except Exception as exc:  # noqa: BLE001 - recorded as the command's outcome
            log.exception("command_failed", command_id=cmd.command_id, kind=cmd.kind)
            try:
                await self.store.mark_commands([(cmd.command_id, "rejected", f"internal error: {exc!r}")])
            except (StorageError, StoreClosedError):  # storage fault: the next poll retries the command
                self._delivered.discard(cmd.command_id)

    async def _dispatch(self, cmd: Command) -> None:
        bound = log.bind(command_id=cmd.command_id, kind=cmd.kind, execution_id=cmd.execution_id)
        problem = ("payload is not a JSON object" if cmd.payload is None
                   else None if is_execution_id(cmd.execution_id)
                   else f"malformed execution id {cmd.execution_id[:40]!r}")
        if problem is not None:
            bound.warning("command_rejected", reason=problem)
            await self.store.mark_commands([(cmd.command_id, "rejected", problem)])
            return
        p = cmd.payload
        assert p is not None
        if cmd.kind == "submit":
            try:
                duration = p["duration_seconds"]
                if not isinstance(duration, int) or isinstance(duration, bool):
                    raise RequestError("duration", f"{duration!r} is not a whole number of seconds")
                req = validate_submit(symbol=p["symbol"], side=p["side"], qty=p["qty"], algo=p["algo"],
                                      duration=duration, slices=p.get("slice_count"),
                                      limit_price=p.get("limit_price"), request_id=p.get("request_id"),
                                      instruments=self.supervisor.instruments, config=self.config,
                                      urgency=p.get("urgency"),
                                      options={o.name: p.get(o.name) for o in submit_options()})
                self._delivered.add(cmd.command_id)
                await self.supervisor.submit(req, cmd.execution_id, cmd.command_id)
            except (RequestError, SubmissionRejected, PermanentVenueError, KeyError, TypeError, ValueError) as exc:
                bound.warning("submission_rejected", reason=str(exc))
                await self.store.mark_commands([(cmd.command_id, "rejected", str(exc))])
            except VenueError as exc:  # transient (nothing was recorded): the next poll tries again
                bound.warning("submission_deferred", reason=f"{type(exc).__name__}: {exc}")
                self._delivered.discard(cmd.command_id)
            return
        if cmd.kind == "urgency":
            self._delivered.add(cmd.command_id)
            level = str(p.get("urgency", ""))
            if not self.supervisor.set_urgency(cmd.execution_id, level, "command urgency", cmd.command_id):
                await self.store.mark_commands([(cmd.command_id, "ignored", "execution is not live")])
            return
        desire = {"pause": Desire.PAUSE, "resume": Desire.RUN, "cancel": Desire.CANCEL}.get(cmd.kind)
        if desire is None:
            await self.store.mark_commands([(cmd.command_id, "rejected", f"unknown command {cmd.kind!r}")])
            return
        self._delivered.add(cmd.command_id)
        if not self.supervisor.control(cmd.execution_id, desire, f"command {cmd.kind}", cmd.command_id):
            await self.store.mark_commands([(cmd.command_id, "ignored", "execution is not live")])
        bound.info("command_delivered")

    # -- lifecycle -------------------------------------------------------------------------

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
        await self.supervisor.shutdown(self.config.engine.drain_timeout_seconds)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.observability.stop()  # after the drain: the alerts it raised are sent
        await self.store.stop()
        await self.leases.release()  # after the last commit: a standby takes over at once
        self.leases.close()
        await self.bus.close()
        await self.venue.close()
        await self.engine.dispose()
        log.info("daemon_stopped")


def run_daemon(options: DaemonOptions, config: RuntimeConfig) -> int:
    # worker threads (the readers' aiosqlite connections, candle estimates) share the GIL with the
    # event loop: hand it over every 1 ms (default 5 ms) so none can hold the loop for long
    sys.setswitchinterval(0.001)
    forbid_core_dumps()  # before any credential is loaded
    return asyncio.run(Daemon(options, config).run())
