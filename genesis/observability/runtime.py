"""The daemon's observability, wired in one place: metrics, alerts, readiness.

The daemon calls ``watch_venue`` on the venue it built (errors are counted and a venue that
stops answering is noticed), ``start`` once the store, bus and venue exist, and ``stop`` when
it drains. The HTTP side mounts ``metrics_route(obs.metrics)``, ``healthz_route()`` and
``readyz_route(obs.readiness_checks)`` (genesis.observability.http).
"""

from __future__ import annotations

import asyncio
from typing import Callable, Mapping

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.bus import EventBus
from genesis.config import RuntimeConfig
from genesis.domain import events as ev
from genesis.domain.instrument import Instrument
from genesis.observability.alert_rules import CRITICAL, WARNING, Alert, DenialBurst, event_alerts, participation_alert
from genesis.observability.alerts import Alerter, AppriseNotifier, Notifier
from genesis.observability.health import CheckResult, ReadinessCheck, StoreHealth
from genesis.observability.metrics import MetricsCollector
from genesis.observability.usage import SLICE_EVENTS, VenueUsageRecorder, counts_weight
from genesis.observability.venue_watch import VenueTracker, WatchedVenue, read_venue_usage
from genesis.store.eventstore import EventStore
from genesis.venue.base import Venue

log = structlog.get_logger("genesis.observability")

SLICE_EVENTS = (ev.TwapSliceExecuted, ev.VwapSliceExecuted)
COMPLETION_EVENTS = (ev.TwapCompleted, ev.VwapCompleted)
METRIC_EVENTS = (*SLICE_EVENTS, *COMPLETION_EVENTS, ev.FillRecorded, ev.OrderClosed, ev.RiskDenied,
                 ev.ExecutionCancelled, ev.ExecutionFailed)
ALERT_EVENTS = (*SLICE_EVENTS, *COMPLETION_EVENTS, ev.RiskDenied, ev.ExecutionFailed,
                ev.EmergencyLiquidationStarted, ev.UrgencyChanged, ev.SliceParticipationMeasured, ev.SlicingHeld)


class Observability:
    """``config`` is a getter (the daemon's config changes on SIGHUP; the alert rules read the
    participation cap through it). ``notifier`` replaces Apprise (tests); without one, alerts
    are on when ``alerts.urls`` is not empty."""

    def __init__(self, config: Callable[[], RuntimeConfig], notifier: Notifier | None = None,
                 lag_interval_seconds: float = 0.5):
        self._config = config
        self.metrics = MetricsCollector()
        settings = config().alerts
        if notifier is None and settings.urls:
            notifier = AppriseNotifier(settings.urls)
        self.alerter = None if notifier is None else Alerter(
            notifier, settings.dedupe_window_seconds, settings.max_per_minute, settings.queue_size,
            settings.send_timeout_seconds)
        self._burst = DenialBurst(settings.risk_denial_burst_count, settings.risk_denial_burst_seconds)
        self._cap_overridden: set[tuple[str, int]] = set()  # emergency slices awaiting their measurement
        self._lag_interval = lag_interval_seconds
        self.readiness_checks: dict[str, ReadinessCheck] = {}
        self._store: EventStore | None = None
        self._instruments: Mapping[str, Instrument] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.usage: VenueUsageRecorder | None = None  # once started on a venue that counts request weight

    def watch_venue(self, venue: Venue) -> Venue:
        """``venue`` with its calls reported to the metrics and the venue tracker (same results)."""
        tracker = VenueTracker(venue.name, self._config().alerts.venue_down_after_errors, self._venue_changed)
        self.readiness_checks["venue"] = lambda: _venue_check(tracker)
        return WatchedVenue(venue, [self.metrics, tracker])  # type: ignore[return-value]

    async def start(self, bus: EventBus, store: EventStore, engine: AsyncEngine, venue: object | None = None,
                    instruments: Mapping[str, Instrument] | None = None, account: str | None = None) -> None:
        """Subscribe to the bus, hook the store's commits, start the samplers and the alerter;
        with the venue's ``account``, its use of the exchange's limits is written to
        ``venue_usage`` for ``genesis status`` (venues that count request weight only)."""
        self._store, self._instruments = store, instruments or {}
        health = StoreHealth(store.writer_running)
        self.readiness_checks["store"] = health.check
        self.metrics.watch(engine, store.queue_depths, bus.stats,
                           None if venue is None else (lambda: read_venue_usage(venue)))

        def on_commit(seconds: float, committed: bool) -> None:
            self.metrics.on_commit(seconds, committed)
            health.on_commit(seconds, committed)
            if not committed:
                self.raise_alert(Alert("store_commit_failed", "genesis: store commit failed",
                                  "the database refused a transaction; runners retry (see the daemon's log)",
                                  CRITICAL))

        store.observe_commits(on_commit)
        bus.subscribe("metrics", self.metrics.on_event, METRIC_EVENTS)
        self._tasks.append(asyncio.create_task(self.metrics.sample_loop_lag(self._lag_interval), name="loop-lag"))
        if account is not None and counts_weight(venue):
            self.usage = usage = VenueUsageRecorder(engine, venue, account)
            bus.subscribe("venue-usage", usage.on_event, SLICE_EVENTS)
            self._tasks.append(asyncio.create_task(usage.run(), name="venue-usage"))
        if self.alerter is not None:
            self.alerter.start()
            bus.subscribe("alerts", self._alert_on, ALERT_EVENTS)
            self._tasks.append(asyncio.create_task(self._watch_store(store), name="alerts-store-watch"))

    async def stop(self) -> None:
        """Stop the samplers; send the alerts still queued (bounded wait)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.alerter is not None:
            await self.alerter.stop()

    # -- alerts ----------------------------------------------------------------------------

    def raise_alert(self, alert: Alert) -> None:
        """Send ``alert`` (deduplicated, rate-limited, never blocking) when alerts are on. For
        components with their own failure to report (a market-data stream that went down...)."""
        if self.alerter is not None:
            self.alerter.raise_alert(alert)

    async def _alert_on(self, event: ev.Event) -> None:
        """Bus subscriber: the alert rules, with the context they need."""
        for alert in event_alerts(event):
            self.raise_alert(alert)
        if isinstance(event, ev.RiskDenied):
            burst = self._burst.add(event)
            if burst is not None:
                self.raise_alert(burst)
        elif isinstance(event, ev.TwapSliceExecuted) and event.cap_overridden:
            self._cap_overridden.add((event.execution_id, event.slice_index))
        elif isinstance(event, ev.SliceParticipationMeasured) and event.participation is not None:
            overridden = (event.execution_id, event.slice_index) in self._cap_overridden
            self._cap_overridden.discard((event.execution_id, event.slice_index))
            cap = self._config().twap.participation_cap
            if event.participation > cap and not overridden and self._store is not None:
                instrument = self._instruments.get((await self._store.load(event.execution_id)).symbol)
                alert = None if instrument is None else participation_alert(event, cap, instrument.step_size)
                if alert is not None:
                    self.raise_alert(alert)

    def _venue_changed(self, down: bool, venue: str, detail: str) -> None:
        if down:
            self.raise_alert(Alert(f"venue_down:{venue}", f"genesis: venue {venue} is not answering", detail, CRITICAL))
        else:
            self.raise_alert(Alert(f"venue_up:{venue}", f"genesis: venue {venue} answers again", detail, WARNING))

    async def _watch_store(self, store: EventStore) -> None:
        error = await store.writer_failed()
        self.raise_alert(Alert("store_stopped", "genesis: event store stopped",
                          f"the event store writer stopped ({error!r}); the daemon exits and systemd restarts it",
                          CRITICAL))


def _venue_check(tracker: VenueTracker) -> CheckResult:
    if tracker.down:
        return False, f"{tracker.consecutive_errors} consecutive calls failed; last {tracker.last_error}"
    return True, "answering"

