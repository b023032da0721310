"""The daemon's signals (``genesis.engine.daemon``): SIGUSR1 pauses every running execution,
SIGUSR2 resumes every paused one, SIGTERM/SIGINT stop, SIGHUP reloads the config (an invalid
file is refused and the old config stays). A burst coalesces (``engine.signals``): any number
of SIGHUPs is one reload (one more if they arrive during it), and of SIGUSR1/SIGUSR2 the last
one decides. A pause or resume before the executions are recovered is applied after.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any, Callable, Coroutine

import structlog

from genesis.config import ConfigError, RuntimeConfig, load_config
from genesis.engine.daemon_options import DaemonOptions
from genesis.engine.signals import SignalBridge
from genesis.engine.supervisor import Supervisor, apply_config
from genesis.log import configure_logging

log = structlog.get_logger("genesis.daemon")
RELOAD_SETTLE_SECONDS = 0.1  # a SIGHUP reloads once no other has come for this long


class DaemonSignals:
    """The signal handling of ``Daemon`` (a part of it: it reads and sets the daemon's state)."""

    options: DaemonOptions
    config: RuntimeConfig
    supervisor: Supervisor | None
    stop_event: asyncio.Event
    _signals: SignalBridge | None
    _early_toggle: str | None
    _reload_task: asyncio.Task[None] | None
    _reload_again: bool
    _stop_signalled: bool
    _spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]

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
        if self.supervisor is not None:  # else the start-up wires it from self.config when it gets there
            apply_config(self.supervisor, new)
        log.info("config_reloaded", path=str(path), kill_switch=new.risk.kill_switch,
                 logging_level=new.logging.level, command_poll_seconds=new.engine.command_poll_seconds)
        if new.logging.level != old_level:  # after the line above, which the old level decides
            configure_logging(new.logging.level)
