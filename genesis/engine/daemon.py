"""The daemon: migrations, store, venue, supervisor, command inbox, signals, systemd.

``Daemon.run()`` is what ``genesis run`` calls. Signals: SIGUSR1 pauses every running
execution, SIGUSR2 resumes every paused one, SIGTERM/SIGINT drain and exit 0, SIGHUP reloads
the config (an invalid file is refused and the old config stays).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from genesis.bus import EventBus
from genesis.clock import Clock, ScaledClock, utc
from genesis.config import ConfigError, RuntimeConfig, load_config
from genesis.engine.control import Desire
from genesis.engine.supervisor import SubmissionRejected, apply_config, build_supervisor
from genesis.engine.systemd import SystemdNotifier
from genesis.requests import RequestError, validate_submit
from genesis.store import migrate
from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from genesis.store.inbox import Command, pending_commands
from genesis.venue.base import Venue

log = structlog.get_logger("genesis.daemon")


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


def default_sim_start() -> datetime:
    from genesis.venue.candles import shipped_candles, shipped_symbols

    first = max(shipped_candles(s).first_open_time for s in shipped_symbols())
    return first + timedelta(days=20)


def build_sim_venue(clock: Clock, config: RuntimeConfig) -> Venue:
    from genesis.venue.candles import shipped_candles, shipped_symbols
    from genesis.venue.instruments import SIM_INSTRUMENTS
    from genesis.venue.sim import FillModel, SimulatedVenue

    sim = config.sim
    model = FillModel(half_spread_bps=sim.half_spread_bps, impact_coefficient_bps=sim.impact_coefficient_bps,
                      limit_fill_share=sim.limit_fill_share)
    series = {s: shipped_candles(s) for s in shipped_symbols()}
    return SimulatedVenue(clock, series, SIM_INSTRUMENTS, fill_model=model, balances=dict(sim.balances),
                          seed=sim.seed)


class Daemon:
    def __init__(self, options: DaemonOptions, config: RuntimeConfig):
        self.options, self.config = options, config
        self.stop_event = asyncio.Event()
        self.notifier = SystemdNotifier()
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivered: set[int] = set()
        self._lock_fd: int | None = None

    @property
    def pid_path(self) -> Path:
        return self.options.db_path.with_suffix(".pid")

    async def run(self) -> int:
        self._take_lock()
        try:
            await asyncio.to_thread(migrate.upgrade, self.options.db_path)
            self.engine = async_engine(self.options.db_path)
            self.bus = EventBus()
            self.store = EventStore(self.engine, self.bus)
            await self.store.start()
            self.clock = await self._make_clock()
            self.venue = self._make_venue()
            instruments = await self.venue.instruments()
            self.supervisor = build_supervisor(self.store, self.venue, self.clock, instruments, self.config)
            recovered = await self.supervisor.recover()
            self._install_signals()
            self._spawn(self._poll_commands(), "command-poller")
            if self.notifier.watchdog_seconds:
                self._spawn(self._watchdog(), "systemd-watchdog")
            self.notifier.notify("READY=1")
            log.info("daemon_ready", db=str(self.options.db_path), venue=self.venue.name,
                     clock=self.clock.now().isoformat(), recovered=len(recovered), pid=os.getpid())
            await self.stop_event.wait()
            await self._shutdown()
            return 0
        finally:
            self._release_lock()

    async def _make_clock(self) -> Clock:
        if self.options.venue != "sim":
            raise DaemonError(f"--venue {self.options.venue!r} is not available yet; use --venue sim")
        from genesis.venue.candles import shipped_candles, shipped_symbols

        for symbol in shipped_symbols():  # load the market before its clock starts ticking
            shipped_candles(symbol)
        start = utc(self.options.sim_start) if self.options.sim_start else default_sim_start()
        # the simulated market never runs backwards across restarts: continue after the last event
        async with self.engine.connect() as conn:
            last = await conn.scalar(select(func.max(t.events.c.occurred_at)))
        if last is not None and last > start:
            start = last
        return ScaledClock(start, self.options.speed)

    def _make_venue(self) -> Venue:
        return build_sim_venue(self.clock, self.config)

    def _spawn(self, coro, name: str) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("daemon_task_failed", task=task.get_name(), error=repr(task.exception()))
            self.stop_event.set()

    # -- signals ---------------------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self._signal_pause)
        loop.add_signal_handler(signal.SIGUSR2, self._signal_resume)
        loop.add_signal_handler(signal.SIGTERM, self._signal_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._signal_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._reload_config(), "config-reload"))

    def _signal_pause(self) -> None:
        n = self.supervisor.pause_all("signal SIGUSR1")
        log.info("signal_pause_all", signal="SIGUSR1", executions=n)

    def _signal_resume(self) -> None:
        n = self.supervisor.resume_all("signal SIGUSR2")
        log.info("signal_resume_all", signal="SIGUSR2", executions=n)

    def _signal_stop(self, name: str) -> None:
        log.info("signal_stop", signal=name)
        self.stop_event.set()

    async def _reload_config(self) -> None:
        path = self.options.config_path
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config_reload_rejected", error=str(exc), note="the previous config stays in force")
            return
        self.config = new
        apply_config(self.supervisor, new)
        log.info("config_reloaded", path=str(path), kill_switch=new.risk.kill_switch)

    # -- commands --------------------------------------------------------------------------

    async def _poll_commands(self) -> None:
        interval = self.config.engine.command_poll_seconds
        while not self.stop_event.is_set():
            try:
                async with self.engine.connect() as conn:
                    commands = await pending_commands(conn)
            except SQLAlchemyError as exc:
                log.error("command_poll_failed", error=str(exc))
                commands = []
            for cmd in commands:
                if cmd.command_id not in self._delivered:
                    await self._dispatch(cmd)
            await asyncio.sleep(interval)

    async def _dispatch(self, cmd: Command) -> None:
        bound = log.bind(command_id=cmd.command_id, kind=cmd.kind, execution_id=cmd.execution_id)
        if cmd.kind == "submit":
            p = cmd.payload
            try:
                req = validate_submit(symbol=p["symbol"], side=p["side"], qty=p["qty"], algo=p["algo"],
                                      duration=int(p["duration_seconds"]), slices=p.get("slice_count"),
                                      limit_price=p.get("limit_price"), request_id=p.get("request_id"),
                                      instruments=self.supervisor.instruments, config=self.config)
                self._delivered.add(cmd.command_id)
                await self.supervisor.submit(req, cmd.execution_id, cmd.command_id)
            except (RequestError, SubmissionRejected, KeyError, TypeError, ValueError) as exc:
                bound.warning("submission_rejected", reason=str(exc))
                await self.store.mark_commands([(cmd.command_id, "rejected", str(exc))])
            return
        if cmd.kind == "urgency":
            self._delivered.add(cmd.command_id)
            level = str(cmd.payload.get("urgency", ""))
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
        self.notifier.notify("STOPPING=1")
        log.info("daemon_draining", executions=len(self.supervisor.active_ids))
        await self.supervisor.shutdown(self.config.engine.drain_timeout_seconds)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.stop()
        await self.bus.close()
        await self.venue.close()
        await self.engine.dispose()
        log.info("daemon_stopped")

    def _take_lock(self) -> None:
        """One daemon per database: an exclusive lock on ``<db>.pid`` (written when enabled)."""
        path = self.pid_path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DaemonError(f"another genesis daemon (pid {other}) is running on {self.options.db_path}") from None
        os.ftruncate(fd, 0)
        if self.options.pidfile:
            os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            try:
                self.pid_path.unlink(missing_ok=True)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None


def run_daemon(options: DaemonOptions, config: RuntimeConfig) -> int:
    return asyncio.run(Daemon(options, config).run())
