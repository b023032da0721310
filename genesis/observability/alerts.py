"""Sending alerts without ever slowing the engine.

``Alerter.raise_alert`` never blocks: it puts the alert on a bounded queue (full: the alert is
dropped and counted). One task takes them off, deduplicates (the same key within
``dedupe_window_seconds``: the first is sent, the rest are counted and summarised in one more
notification when the window closes, or at stop), rate-limits (at most ``max_per_minute``
sent; the rest are counted the same way) and sends through a ``Notifier`` with a timeout.
``AppriseNotifier`` sends to Apprise URLs (Telegram, Slack, e-mail, webhooks...) in its own
worker threads, so a receiver that hangs holds a thread, never the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import structlog

from genesis.observability.alert_rules import Alert

log = structlog.get_logger("genesis.alerts")


class AlertsSetupError(ValueError):
    """An alert URL Apprise cannot use. The message names the entry of ``alerts.urls``."""


class Notifier(Protocol):
    async def send(self, title: str, body: str, severity: str) -> bool: ...

    def close(self) -> None: ...


class AppriseNotifier:
    """Apprise with its blocking network calls in ``threads`` worker threads of its own."""

    def __init__(self, urls: Sequence[str], threads: int = 2):
        import apprise  # imported only when alerts are configured

        # memory only: the service's file system is read-only outside its state directory
        self._apprise = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode=apprise.PersistentStoreMode.MEMORY))
        self._types = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING,
                       "info": apprise.NotifyType.INFO}
        for i, url in enumerate(urls):
            if not self._apprise.add(url):  # never echo the URL: it usually holds a token
                raise AlertsSetupError(f"alerts.urls[{i}]: not a URL Apprise can send to (see "
                                       f"https://github.com/caronc/apprise/wiki for the formats)")
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="alerts")

    async def send(self, title: str, body: str, severity: str) -> bool:
        call = functools.partial(self._apprise.notify, body=body, title=title, notify_type=self._types[severity])
        return bool(await asyncio.get_running_loop().run_in_executor(self._executor, call))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(slots=True)
class _Window:
    opened: float
    title: str
    severity: str
    suppressed: int = 0


class Alerter:
    """Queue, deduplicate, rate-limit and send. ``monotonic`` is injectable for tests."""

    def __init__(self, notifier: Notifier, dedupe_window_seconds: float = 300.0, max_per_minute: int = 20,
                 queue_size: int = 1000, send_timeout_seconds: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self._notifier = notifier
        self._window, self._max_per_minute = dedupe_window_seconds, max_per_minute
        self._timeout = send_timeout_seconds
        self._monotonic = monotonic
        self._queue: asyncio.Queue[Alert | None] = asyncio.Queue()  # bounded by raise_alert (stop always fits)
        self._queue_size = queue_size
        self._windows: dict[str, _Window] = {}
        self._sent_at: collections.deque[float] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self.sent = self.failed = self.dropped = self.suppressed = 0

    def raise_alert(self, alert: Alert) -> None:
        """Queue ``alert``. Never blocks, never raises; a full queue drops it (counted, logged)."""
        if self._queue.qsize() < self._queue_size:
            self._queue.put_nowait(alert)
        else:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("alert_queue_full", dropped=self.dropped, key=alert.key)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts")

    async def stop(self, timeout_seconds: float = 5.0) -> None:
        """Send what is queued and the pending summaries, for at most ``timeout_seconds``."""
        if self._task is None:
            return
        try:
            self._queue.put_nowait(None)
            await asyncio.wait_for(asyncio.shield(self._task), timeout_seconds)
        except asyncio.TimeoutError:
            log.warning("alerts_not_flushed", queued=self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        self._notifier.close()

    async def _run(self) -> None:
        while True:
            try:
                alert = await asyncio.wait_for(self._queue.get(), self._seconds_to_next_summary())
            except asyncio.TimeoutError:
                await self._send_summaries(self._monotonic() - self._window)
                continue
            if alert is None:  # stop: summarise every open window
                await self._send_summaries(float("inf"))
                return
            await self._handle(alert)

    def _seconds_to_next_summary(self) -> float | None:
        due = [w.opened + self._window for w in self._windows.values()]
        return max(0.0, min(due) - self._monotonic()) if due else None

    async def _handle(self, alert: Alert) -> None:
        now = self._monotonic()
        await self._send_summaries(now - self._window)
        window = self._windows.get(alert.key)
        if window is not None:
            window.suppressed += 1
            self.suppressed += 1
            return
        self._windows[alert.key] = window = _Window(now, alert.title, alert.severity)
        if not self._rate_allows(now):
            window.suppressed += 1
            self.suppressed += 1
            log.warning("alert_rate_limited", key=alert.key, max_per_minute=self._max_per_minute)
            return
        await self._send(alert.title, alert.body, alert.severity, alert.key)

    async def _send_summaries(self, opened_before: float) -> None:
        """Close the windows opened before ``opened_before``: one summary each that suppressed any."""
        for key, window in list(self._windows.items()):
            if window.opened > opened_before:
                continue
            del self._windows[key]
            if window.suppressed:
                await self._send(f"{window.title} (x{window.suppressed} more)",
                                 f"{window.suppressed} more alert(s) '{key}' within {self._window:g} s were not "
                                 f"sent one by one (deduplicated or rate-limited).", window.severity, key)

    def _rate_allows(self, now: float) -> bool:
        while self._sent_at and now - self._sent_at[0] >= 60.0:
            self._sent_at.popleft()
        return len(self._sent_at) < self._max_per_minute

    async def _send(self, title: str, body: str, severity: str, key: str) -> None:
        self._sent_at.append(self._monotonic())
        try:
            ok = await asyncio.wait_for(self._notifier.send(title, body, severity), self._timeout)
        except asyncio.TimeoutError:
            ok = False
            log.warning("alert_send_timeout", key=key, timeout_seconds=self._timeout)
        except Exception as exc:  # noqa: BLE001 - task boundary: a notifier bug must not stop alerting
            ok = False
            log.warning("alert_send_failed", key=key, error=repr(exc))
        if ok:
            self.sent += 1
            log.info("alert_sent", key=key, severity=severity)
        else:
            self.failed += 1
            log.warning("alert_not_delivered", key=key, severity=severity)
