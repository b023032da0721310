"""The daemon's signals (``genesis.engine.daemon``): SIGUSR1 pauses every running execution,
SIGUSR2 resumes every paused one, SIGTERM/SIGINT stop, SIGHUP reloads the config (an invalid
file is refused and the old config stays). A burst coalesces (``engine.signals``): any number
of SIGHUPs is one reload (one more if they arrive during it), and of SIGUSR1/SIGUSR2 the last
one decides. A pause or resume before the executions are recovered is applied after.

Two collaborators the daemon holds: ``SignalHandlers`` (what each signal does) and
``ConfigReloader`` (the SIGHUP reload); each takes only the callables it uses.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any, Callable, Coroutine

import structlog

from genesis.config import ConfigError, RuntimeConfig, load_config
from genesis.engine.signals import SignalBridge
from genesis.engine.supervisor import Supervisor
from genesis.engine.supervisor_config import apply_config
from genesis.log import configure_logging

log = structlog.get_logger("genesis.daemon")
RELOAD_SETTLE_SECONDS = 0.1  # a SIGHUP reloads once no other has come for this long

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
SupervisorRef = Callable[[], "Supervisor | None"]  # None until the executions are recovered


class ConfigReloader:
    """SIGHUP: read the config file once the burst has settled, refuse an invalid one, and
    hand a valid one to ``adopt`` (the daemon's current config) and to the supervisor."""

    def __init__(self, path: Path | None, current: Callable[[], RuntimeConfig],
                 adopt: Callable[[RuntimeConfig], None], supervisor: SupervisorRef, spawn: Spawn):
        self._path, self._current, self._adopt = path, current, adopt
        self._supervisor, self._spawn = supervisor, spawn
        self._task: asyncio.Task[None] | None = None
        self._again = False  # a SIGHUP arrived while a reload was under way

    def request(self) -> None:
        """A SIGHUP burst: reload, or read the file once more when the reload under way ends."""
        if self._task is not None and not self._task.done():
            self._again = True
        else:
            self._task = self._spawn(self._reload(), "config-reload")

    async def _reload(self) -> None:
        """Read the config once the SIGHUPs have settled (one read per burst), and once more
        if another arrived during the read."""
        while True:
            self._again = False
            await asyncio.sleep(RELOAD_SETTLE_SECONDS)  # wall time, not the simulated clock
            if self._again:
                continue  # the burst goes on
            await self._reload_once()
            if not self._again:
                return

    async def _reload_once(self) -> None:
        path = self._path
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config_reload_rejected", error=str(exc), note="the previous config stays in force")
            return
        old_level = self._current().logging.level
        self._adopt(new)  # the poller reads its interval from the daemon's config
        supervisor = self._supervisor()
        if supervisor is not None:  # else the start-up wires it from the daemon's config when it gets there
            apply_config(supervisor, new)
        log.info("config_reloaded", path=str(path), kill_switch=new.risk.kill_switch,
                 logging_level=new.logging.level, command_poll_seconds=new.engine.command_poll_seconds)
        if new.logging.level != old_level:  # after the line above, which the old level decides
            configure_logging(new.logging.level)


class SignalHandlers:
    """What each signal does: ``stop`` for SIGTERM/SIGINT, pause or
    resume every execution for SIGUSR1/SIGUSR2 (the last of a burst; deferred until there is a
    supervisor), the ``reloader`` for SIGHUP."""

    def __init__(self, stop: Callable[[], None], supervisor: SupervisorRef, reloader: ConfigReloader):
        self._stop, self._supervisor, self._reloader = stop, supervisor, reloader
        self._bridge: SignalBridge | None = None
        self._early_toggle: str | None = None  # the last SIGUSR1/2 before the supervisor existed

    def install(self) -> None:
        """Handle the signals from now on (on the running loop)."""
        self._bridge = SignalBridge(asyncio.get_running_loop(), (
            signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT, signal.SIGHUP), self._on_signals)
        self._bridge.install()

    def uninstall(self) -> None:
        """Give the signals back to their previous handlers."""
        assert self._bridge is not None
        self._bridge.uninstall()

    def apply_deferred(self) -> None:
        """The executions are recovered: apply a pause or resume that arrived before."""
        if self._early_toggle == "pause":
            self._pause()
        elif self._early_toggle == "resume":
            self._resume()

    def _on_signals(self, arrived: dict[int, int]) -> None:
        """On the loop, once per burst: ``arrived`` maps each signal to the order of its last arrival."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            if sig in arrived:
                log.info("signal_stop", signal=signal.Signals(sig).name)
                self._stop()
        toggles = [sig for sig in (signal.SIGUSR1, signal.SIGUSR2) if sig in arrived]
        if toggles:
            last = max(toggles, key=arrived.__getitem__)
            if last == signal.SIGUSR1:
                self._pause()
            else:
                self._resume()
        if signal.SIGHUP in arrived:
            self._reloader.request()

    def _pause(self) -> None:
        self._toggle("pause", "SIGUSR1")

    def _resume(self) -> None:
        self._toggle("resume", "SIGUSR2")

    def _toggle(self, action: str, signal_name: str) -> None:
        """Pause or resume every execution, or keep it for ``apply_deferred`` before recovery."""
        supervisor = self._supervisor()
        if supervisor is None:
            self._early_toggle = action
            log.info("signal_deferred", signal=signal_name, note="applied once executions are recovered")
            return
        apply = supervisor.pause_all if action == "pause" else supervisor.resume_all
        n = apply(f"signal {signal_name}")
        log.info(f"signal_{action}_all", signal=signal_name, executions=n)
