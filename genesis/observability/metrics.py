"""Prometheus metrics of one daemon, in a registry of their own (never the global one).

Counters and histograms are fed by the event bus (``MetricsCollector.on_event``, subscribed by
``Observability``): they count what this process saw committed since it started, as
Prometheus counters do (use ``rate()``/``increase()``). Gauges that describe a state are read
when scraped: executions by state from the store (``refresh``), the store writer's queues, the
bus subscribers' queues, the venue's order budget. ``render()`` gives the text exposition.
Metric names and units: docs/operations.md.
"""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
import structlog

from genesis.domain import events as ev
from genesis.domain.state import ExecutionState
from genesis.observability.venue_watch import VenueUsage
from genesis.store import tables as t

# bps; slippage can be negative (better than the benchmark)
SLIPPAGE_BUCKETS_BPS = (-100.0, -50.0, -20.0, -10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
COMMIT_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

log = structlog.get_logger("genesis.metrics")
UNLABELLED_KEPT = 10_000  # completions waiting for their algorithm to be read at the next scrape

_RISK_KEY = re.compile(r"risk\.([a-z_]+)")


def risk_reason_class(reason: str) -> str:
    """A denial's reason as a low-cardinality label: the ``risk.<key>`` the reason names
    (``kill_switch``, ``max_parent_notional_usdt``, ``max_position_base``, ``price_collar_bps``),
    else ``other``. The reason text itself carries figures and stays in the event."""
    match = _RISK_KEY.search(reason)
    return match.group(1) if match else "other"


class MetricsCollector:
    """Every metric of the daemon. Feed it with ``on_event`` (bus), ``on_commit`` (store),
    ``on_venue_error`` (venue watch); point it at what it reads with ``watch``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.slices = Counter("genesis_slices", "Slices closed, by outcome (filled, partial, unfilled, denied, "
                              "skipped, failed) and algorithm", ["outcome", "algo"], registry=r)
        self.child_orders = Counter("genesis_child_orders", "Child orders closed, by final status",
                                    ["outcome"], registry=r)
        self.filled_notional = Counter("genesis_filled_notional_usdt", "Filled notional (sum of fill qty x price), "
                                       "USDT", registry=r)
        self.fills = Counter("genesis_fills", "Fills recorded, by liquidity (maker, taker)", ["liquidity"], registry=r)
        self.completions = Counter("genesis_executions_finished", "Executions that reached a terminal state, by "
                                   "state", ["state"], registry=r)
        self.shortfall = Histogram("genesis_implementation_shortfall_bps", "Implementation shortfall vs arrival at "
                                   "completion, bps (+ = worse)", ["algo"], buckets=SLIPPAGE_BUCKETS_BPS, registry=r)
        self.vwap_slippage = Histogram("genesis_vwap_slippage_bps", "Average price vs the market VWAP of the window "
                                       "at completion, bps (+ = worse)", ["algo"], buckets=SLIPPAGE_BUCKETS_BPS,
                                       registry=r)
        self.risk_denials = Counter("genesis_risk_denials", "Slices denied by the risk check, by the limit that "
                                    "denied them", ["reason"], registry=r)
        self.venue_errors = Counter("genesis_venue_errors", "Errors raised by venue calls, by error class and call",
                                    ["error_class", "call"], registry=r)
        self.commit_seconds = Histogram("genesis_store_commit_seconds", "Store transaction latency: first chunk "
                                        "prepared to durable (or refused), seconds", buckets=COMMIT_BUCKETS_SECONDS,
                                        registry=r)
        self.commit_failures = Counter("genesis_store_commit_failures", "Store transactions the database refused",
                                       registry=r)
        self.loop_lag = Histogram("genesis_event_loop_lag_seconds", "How late the event loop woke a sampler that "
                                  "slept a fixed interval, seconds", buckets=LAG_BUCKETS_SECONDS, registry=r)
        self.loop_lag_last = Gauge("genesis_event_loop_lag_last_seconds", "The last event-loop lag sample, seconds",
                                   registry=r)
        self.store_read_failures = Counter("genesis_metrics_store_read_failures", "Scrapes that could not read "
                                           "executions by state from the store (the last figures were served)",
                                           registry=r)
        self.started = Gauge("genesis_process_start_time_seconds", "Unix time this collector started",
                             registry=r)
        self.started.set(time.time())
        self._state = _StateGauges()
        r.register(self._state)
        # execution id -> algorithm, from its submission; a completion of an execution submitted
        # before this process started waits in ``_unlabelled`` until ``refresh`` reads its algorithm
        self._algos: dict[str, str] = {}
        self._unlabelled: list[ev.TwapCompleted] = []

    # -- sources ---------------------------------------------------------------------------

    def watch(self, engine: AsyncEngine | None = None, queue_depths: Callable[[], tuple[int, int]] | None = None,
              bus_stats: Callable[[], dict[str, dict[str, int]]] | None = None,
              venue_usage: Callable[[], VenueUsage] | None = None) -> None:
        """What the state gauges read when scraped: the database (``engine``, for executions by
        state), the store writer's ``queue_depths``, the bus' ``stats`` and the venue's usage."""
        s = self._state
        s.engine = engine or s.engine
        s.queue_depths = queue_depths or s.queue_depths
        s.bus_stats = bus_stats or s.bus_stats
        s.venue_usage = venue_usage or s.venue_usage

    async def refresh(self) -> None:
        """Read the gauges that live in the database (executions by state); call before ``render``."""
        if self._state.engine is None:
            return
        c = t.executions.c
        try:
            async with self._state.engine.connect() as conn:
                rows = await conn.execute(select(c.state, func.count()).group_by(c.state))
                self._state.executions_by_state = {state: n for state, n in rows}
                if self._unlabelled:
                    waiting = self._unlabelled
                    ids = {e.execution_id for e in waiting}
                    algos = dict((await conn.execute(select(c.execution_id, c.algo)
                                                     .where(c.execution_id.in_(ids)))).all())
                    self._unlabelled = []
                    for event in waiting:
                        self._observe_quality(algos.get(event.execution_id, "unknown"), event)
        except (SQLAlchemyError, OSError) as exc:  # the other metrics matter most when the store fails
            self.store_read_failures.inc()
            log.warning("metrics_store_read_failed", error=str(exc))

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- feeds -----------------------------------------------------------------------------

    def on_event(self, event: ev.Event) -> None:
        """Bus subscriber: count one committed event."""
        if isinstance(event, ev.TwapSliceExecuted):
            self.slices.labels(event.status, event.execution_style).inc()
        elif isinstance(event, ev.FillRecorded):
            self.filled_notional.inc(float(event.qty * event.price))
            self.fills.labels(event.liquidity).inc()
        elif isinstance(event, ev.OrderClosed):
            self.child_orders.labels(event.status).inc()
        elif isinstance(event, ev.RiskDenied):
            self.risk_denials.labels(risk_reason_class(event.reason)).inc()
        elif isinstance(event, ev.ExecutionSubmitted):
            self._algos[event.execution_id] = event.algo
        elif isinstance(event, ev.TwapCompleted):
            self.completions.labels("completed" if event.reason == "filled" else "expired").inc()
            algo = self._algos.pop(event.execution_id, None)
            if algo is not None:
                self._observe_quality(algo, event)
            elif len(self._unlabelled) < UNLABELLED_KEPT:  # never scraped: keep memory bounded
                self._unlabelled.append(event)
        elif isinstance(event, ev.ExecutionCancelled):
            self._algos.pop(event.execution_id, None)
            self.completions.labels("cancelled").inc()
        elif isinstance(event, ev.ExecutionFailed):
            self._algos.pop(event.execution_id, None)
            self.completions.labels("failed").inc()

    def _observe_quality(self, algo: str, event: ev.TwapCompleted) -> None:
        """The completion's shortfall and VWAP slippage, labelled with the execution's algorithm
        (twap, vwap, pov, is, single: every algorithm completes with a ``TwapCompleted``)."""
        _observe(self.shortfall.labels(algo), event.implementation_shortfall_bps)
        _observe(self.vwap_slippage.labels(algo), event.slippage_vs_vwap_bps)

    def on_commit(self, seconds: float, committed: bool) -> None:
        """Store hook (``EventStore.observe_commits``)."""
        self.commit_seconds.observe(max(0.0, seconds))
        if not committed:
            self.commit_failures.inc()

    def on_venue_ok(self, venue: str, call: str) -> None:
        """Venue hook: nothing to count."""

    def on_venue_error(self, call: str, error: BaseException) -> None:
        """Venue hook (``WatchedVenue``)."""
        self.venue_errors.labels(type(error).__name__, call).inc()

    async def sample_loop_lag(self, interval_seconds: float = 0.5) -> None:
        """Run forever: sleep ``interval_seconds`` (wall time) and record how late the loop woke."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(interval_seconds)
            lag = max(0.0, loop.time() - before - interval_seconds)
            self.loop_lag.observe(lag)
            self.loop_lag_last.set(lag)


def _observe(histogram: Histogram, value: Decimal | None) -> None:
    if value is not None:
        histogram.observe(float(value))


class _StateGauges(Collector):
    """Gauges read when scraped (no event keeps them)."""

    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None
        self.executions_by_state: dict[str, int] = {}
        self.queue_depths: Callable[[], tuple[int, int]] | None = None
        self.bus_stats: Callable[[], dict[str, dict[str, int]]] | None = None
        self.venue_usage: Callable[[], VenueUsage] | None = None

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily("genesis_executions", "Executions in the store, by state (read at scrape)",
                                   labels=["state"])
        for state in ExecutionState:
            states.add_metric([state.value], self.executions_by_state.get(state.value, 0))
        yield states
        if self.queue_depths is not None:
            queued, in_flight = self.queue_depths()
            yield GaugeMetricFamily("genesis_store_queued_appends", "Appends waiting for the store writer",
                                    value=queued)
            yield GaugeMetricFamily("genesis_store_transactions_in_flight", "Store transactions handed to the "
                                    "committer, not yet durable", value=in_flight)
        if self.bus_stats is not None:
            stats = self.bus_stats()
            queued = GaugeMetricFamily("genesis_bus_queued_events", "Events queued for a bus subscriber",
                                       labels=["subscriber"])
            dropped = CounterMetricFamily("genesis_bus_dropped_events", "Events dropped for a bus subscriber (its "
                                          "queue was full)", labels=["subscriber"])
            for name, numbers in stats.items():
                queued.add_metric([name], numbers["queued"])
                dropped.add_metric([name], numbers["dropped"])
            yield queued
            yield dropped
        if self.venue_usage is not None:
            yield from self.venue_usage().metrics()
