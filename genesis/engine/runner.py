"""One execution's life: start, slices, pause/resume, completion. An asyncio task per execution.

Every decision is appended as an event before it is acted on; the runner is the only
appender for its execution once it exists. Slice sizes come from what the venue reported
filled, never from what was hoped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.instrument import Instrument
from genesis.domain.risk import RiskEngine
from genesis.domain.schedule import respread, respread_by_volume
from genesis.domain.state import ExecutionState
from genesis.domain.twap import TwapParams, check_early_completion, early_completion_end
from genesis.domain.units import BPS
from genesis.engine.algos import AlgoPolicy, VwapSettings, policy_for
from genesis.engine.control import Control, Desire
from genesis.engine.hooks import NO_HOOKS, EngineHooks
from genesis.engine.log_throttle import LogThrottle
from genesis.engine.market_data import MarketData
from genesis.engine.measurement import measure, measure_after_end
from genesis.engine.positions import PositionBook
from genesis.engine.recovery import reconcile
from genesis.engine.slice_algorithm import PolicySliceAlgorithm
from genesis.engine.slice_executor import RoutingSettings, SliceExecutor
from genesis.engine.venue_calls import RetryPolicy, VenueCaller, VenueUnavailable
from genesis.engine.window_benchmark import WindowBenchmark
from genesis.store.eventstore import EventStore, StorageError
from genesis.tuning import LoopPacer
from genesis.venue.base import Venue

STORAGE_FAULT_LOG_SECONDS = 10.0  # a storage fault is logged at most once per this (wall time)


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    pause_policy: str = "extend"  # "extend": the window end moves by the paused time; "compress": it does not
    retry: RetryPolicy = RetryPolicy()
    storage_retry_seconds: float = 1.0
    routing: RoutingSettings = RoutingSettings()
    twap: TwapParams = field(default_factory=TwapParams)
    vwap: VwapSettings = field(default_factory=VwapSettings)


class ExecutionRunner:
    def __init__(self, execution_id: str, *, store: EventStore, venue: Venue, clock: Clock,
                 instrument: Instrument, risk: RiskEngine, positions: PositionBook,
                 control: Control, settings: RunnerSettings = RunnerSettings(),
                 market: MarketData | None = None, pacer: LoopPacer | None = None,
                 hooks: EngineHooks = NO_HOOKS):
        self.execution_id = execution_id
        self.store, self.venue, self.clock = store, venue, clock
        self.instrument, self.risk, self.positions = instrument, risk, positions
        self.control, self.settings, self.hooks = control, settings, hooks
        self.market = market or MarketData(venue)
        self.pacer = pacer or LoopPacer(0)  # shared with the other runners: see genesis.tuning
        self.log = structlog.get_logger("genesis.runner").bind(execution_id=execution_id)
        self.calls = VenueCaller(venue, clock, settings.retry, self._stopping, self.log, self.pacer.turn)
        self.slices: SliceExecutor | None = None  # built once the algorithm is known (run)
        self.policy: AlgoPolicy | None = None
        self.benchmark = WindowBenchmark(self.calls.candles, clock)  # market VWAP of the window so far
        self.recovered = asyncio.Event()  # set once the aggregate is loaded and reconciled
        self._measured: list[ev.Event] = []  # realised participations, appended with the next events

    def _stopping(self) -> bool:
        return self.control.desire in (Desire.STOP, Desire.CANCEL)

    async def append(self, events: list[ev.Event], commands: list[int] | None = None) -> Execution:
        """Append durably; on a storage fault wait and retry (fail closed: nothing proceeds).
        The fault is logged when it starts, then at most once per ``STORAGE_FAULT_LOG_SECONDS``
        with the count of retries not logged; ``storage_fault_cleared`` when a retry succeeds."""
        done = [(cid, "accepted", None) for cid in (commands or [])]
        measured, self._measured = self._measured, []
        events = [*measured, *events]
        faults = LogThrottle(STORAGE_FAULT_LOG_SECONDS)  # this call retries until the fault is over
        while True:
            try:
                await self.store.append(events, done_commands=done)
                if faults.active:
                    self.log.warning("storage_fault_cleared", repeats_not_logged=faults.reset())
                await self.pacer.turn()  # one commit wakes many runners: not all in one iteration
                return await self.store.load(self.execution_id)
            except StorageError as exc:
                not_logged = faults.due()
                if not_logged is not None:
                    self.log.error("storage_fault_trading_halted", error=str(exc), repeats_not_logged=not_logged)
                await self.clock.sleep_until(
                    self.clock.now() + timedelta(seconds=self.settings.storage_retry_seconds))

    def _slice_executor(self, policy: AlgoPolicy) -> SliceExecutor:
        """The slice executor on this runner's ports (never the runner itself)."""
        return SliceExecutor(
            self.execution_id, algorithm=PolicySliceAlgorithm(policy), venue=self.calls, append=self.append,
            namespace=self.store.namespace, clock=self.clock, instrument=self.instrument, risk=self.risk,
            positions=self.positions, benchmark=self.benchmark, log=self.log, routing=self.settings.routing,
            hooks=self.hooks.kill_points, decision_timer=self.hooks.decision_seconds, pace=self.pacer.turn)

    async def _load(self) -> Execution:
        return await self.store.load(self.execution_id)

    async def run(self) -> None:
        async with self.clock.actor():
            await self.pacer.turn()
            agg = await self.store.load(self.execution_id)
            self.policy = policy_for(agg, self.market, self.instrument, self.settings.twap, self.settings.vwap)
            self.slices = self._slice_executor(self.policy)
            self.log.info("runner_started", state=agg.state.value, filled=str(agg.filled_qty))
            try:
                await reconcile(agg, venue=self.calls, slices=self.slices, load=self._load, append=self.append,
                                replan=self.replan, clock=self.clock, log=self.log)
                self.recovered.set()
                while not await self._step():
                    pass
            except VenueUnavailable:
                # asked to stop or cancel while the venue was unreachable: never a failure
                if self.control.desire is Desire.CANCEL:
                    agg = await self.store.load(self.execution_id)
                    if not agg.state.is_terminal:
                        await self.append([ev.ExecutionCancelled(self.execution_id, self.clock.now(),
                                                                 self.control.reason)], self.control.take_commands())
                else:
                    self.log.warning("runner_stopped_while_venue_unavailable")
            agg = await self.store.load(self.execution_id)
            self.log.info("runner_finished", state=agg.state.value, filled=str(agg.filled_qty))

    async def _step(self) -> bool:
        """One decision. Returns True when the runner should exit."""
        await self.pacer.turn()  # many slices fall due at the same instant
        agg = await self.store.load(self.execution_id)
        if agg.state.is_terminal:
            if self.control.command_ids:
                await self.store.mark_commands([(c, "ignored", f"execution is {agg.state.value}")
                                                for c in self.control.take_commands()])
            return await measure_after_end(agg, candles=self.calls.candles, control=self.control,
                                           clock=self.clock, append=self.append)
        self.control.wake.clear()
        desire, now = self.control.desire, self.clock.now()
        if desire is Desire.STOP:
            return True
        if agg.state is ExecutionState.RUNNING and (agg.remaining_qty <= 0 or agg.window_over(now)):
            await self._complete(agg, now)  # filled: at once, whatever is still planned
            return False
        if desire is Desire.CANCEL:
            await self.append([ev.ExecutionCancelled(self.execution_id, now, self.control.reason)],
                              self.control.take_commands())
            return False
        if desire is Desire.PAUSE:
            if agg.state is ExecutionState.PAUSED:
                await self._ack_noop("already paused")
                await self.clock.wait_event(self.control.wake)
            else:
                await self.append([ev.ExecutionPaused(self.execution_id, now, self.control.reason)],
                                  self.control.take_commands())
            return False
        if agg.state is ExecutionState.PAUSED:
            await self._resume(agg, now)
            return False
        if agg.state is ExecutionState.PENDING:
            await self._start(agg, now)
            return False
        if self.control.urgency is not None:
            await self._apply_urgency(agg, now)
            return False
        await self._ack_noop("already running")
        nxt = agg.next_open()
        if nxt is None:
            await self._complete(agg, now)
            return False
        if nxt.scheduled_at > now:
            wake_at = min(nxt.scheduled_at, agg.end_at) if agg.windowed and agg.end_at else nxt.scheduled_at
            await self.clock.wait_event(self.control.wake, until=wake_at)
            return False
        if await self._maybe_finish_early(agg, now):
            return False
        if not self._measured:
            self._measured = await measure(self.calls.candles, agg, now)
        if agg.orders_closed(now):  # the window's last second: no new order, wait for its end
            await self.clock.wait_event(self.control.wake, until=agg.end_at)
            return False
        if self._late(agg, nxt.scheduled_at, now):
            # the loop stalled (machine load, a long venue outage): re-spread what is left over
            # the time left instead of firing overdue slices back to back
            await self.append([await self.replan(agg, now, agg.end_at or now, "late: remaining re-spread")])
            return False
        after = agg.next_open(1)
        following = after.scheduled_at if after is not None else agg.end_at
        gap = ((following or now) - now).total_seconds()
        interval = max(1.0, gap) if after is not None else max(60.0, gap)
        assert self.slices is not None
        await self.slices.execute(agg, nxt, agg.open_count, interval)
        return False

    def _late(self, agg: Execution, scheduled_at: datetime, now: datetime) -> bool:
        """Overdue by more than half a nominal slice interval (and at least 5 s), and the rest
        fits in what is left of the window at one slice per maker timeout. A plan denser than
        its slices can run is always overdue: re-spreading it would not help, only repeat
        after every slice (or every re-spread, each as big as the plan)."""
        if agg.end_at is None or agg.started_at is None or agg.open_count < 2:
            return False
        nominal = (agg.end_at - agg.started_at).total_seconds() / max(len(agg.slices), 1)
        routing = self.settings.routing
        slice_seconds = max(1.0, routing.maker_timeout_seconds if routing.maker_first else 0.0)
        fits = (agg.end_at - now).total_seconds() / agg.open_count >= slice_seconds
        return fits and (now - scheduled_at).total_seconds() > max(5.0, nominal / 2)

    async def _ack_noop(self, detail: str) -> None:
        if self.control.command_ids:
            await self.store.mark_commands([(c, "noop", detail) for c in self.control.take_commands()])

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self, agg: Execution, now: datetime) -> None:
        top = await self.calls.call("book_top", lambda: self.venue.book_top(agg.symbol))
        arrival = top.mid
        policy = self.policy
        assert policy is not None

        async def planned() -> tuple[datetime, tuple, datetime]:
            at = self.clock.now()  # a retried plan starts from when it succeeds
            return (at, *await policy.plan(agg, at, arrival))

        # market data (candles for the volume profile) is a venue read: retried like any other
        now, plan, end_at = await self.calls.call("plan", planned)
        self.log.info("execution_started", arrival_price=str(arrival), slices=len(plan), end_at=end_at.isoformat())
        await self.append([ev.ExecutionStarted(self.execution_id, now, arrival, end_at, plan)],
                          self.control.take_commands())

    async def _resume(self, agg: Execution, now: datetime) -> None:
        paused_for = (now - agg.paused_at) if agg.paused_at else timedelta(0)
        events: list[ev.Event] = [ev.ExecutionResumed(self.execution_id, now, self.control.reason)]
        end_at = agg.end_at
        if end_at is not None and self.settings.pause_policy == "extend":
            end_at += paused_for
        if end_at is not None and not (agg.windowed and end_at <= now):  # else: over, it expires next
            events.append(await self.replan(agg, now, end_at, f"resumed after {paused_for.total_seconds():.0f}s paused "
                                                               f"({self.settings.pause_policy})"))
        await self.append(events, self.control.take_commands())

    async def replan(self, agg: Execution, now: datetime, end_at: datetime, reason: str) -> ev.ScheduleReplanned:
        """The open slices re-planned over ``[now, end_at)``: placed by the usual volume of
        those minutes when the algorithm has a profile (adaptive TWAP, VWAP), else evenly."""
        indices = [s.index for s in agg.open_slices()]
        end_at = max(end_at, now)
        policy = self.policy
        assert policy is not None
        profile = None
        if indices and end_at > now:  # a volume profile is a venue read: retried like any other
            profile = await self.calls.call("profile", lambda: policy.replan_profile(agg, now, end_at))
        plan = respread_by_volume(agg.remaining_qty, indices, now, end_at, profile, self.instrument)
        return ev.ScheduleReplanned(self.execution_id, now, end_at, plan, reason)

    async def _maybe_finish_early(self, agg: Execution, now: datetime) -> bool:
        """Story 4.3 AC5: price better than arrival by the threshold: compress what is left."""
        params = self.settings.twap
        if (agg.algo != "twap" or agg.early_completion_at is not None or agg.arrival_price is None
                or "router_interval_seconds" in agg.params or agg.open_count < 2):
            return False
        top = await self.calls.call("book_top", lambda: self.venue.book_top(agg.symbol))
        if not check_early_completion(agg.side, top.mid, agg.arrival_price, params.early_completion_bps):
            return False
        improvement = (-agg.side.sign * (top.mid - agg.arrival_price) / agg.arrival_price * BPS).quantize(Decimal("0.01"))
        # faster, but never faster than the participation cap can absorb at the recent traded
        # rate: otherwise the compressed slices are capped to slivers and the window ends with
        # quantity left (early_completion_end: the figures and the reason go in the event)
        rate = await self.calls.call("volume_rate", lambda: self.market.volume_rate(agg.symbol, now))
        rate = None if rate is None else rate.quantize(Decimal("0.00000001"))
        old_end = agg.end_at or now
        chosen = early_completion_end(now, old_end, agg.remaining_qty, agg.open_count, rate, params)
        self.log.info("early_completion", price=str(top.mid), arrival=str(agg.arrival_price),
                      improvement_bps=str(improvement), accelerated=chosen.accelerated, reason=chosen.reason)
        events: list[ev.Event] = [ev.EarlyCompletionTriggered(
            self.execution_id, now, top.mid, agg.arrival_price, improvement, previous_end_at=old_end,
            end_at=chosen.end_at, accelerated=chosen.accelerated, volume_rate_per_second=rate,
            participation_cap=params.participation_cap, cap_span_seconds=chosen.cap_span_seconds,
            nominal_span_seconds=chosen.nominal_span_seconds, reason=chosen.reason)]
        if chosen.accelerated:
            events.append(await self.replan(agg, now, chosen.end_at,
                                            f"early completion: price better than arrival; {chosen.reason}"))
        await self.append(events)
        return True

    async def _apply_urgency(self, agg: Execution, now: datetime) -> None:
        level, reason, command_id = self.control.urgency  # type: ignore[misc]
        self.control.urgency = None
        commands = [command_id] if command_id is not None else []
        if agg.algo != "vwap":
            if commands:
                await self.store.mark_commands([(command_id, "rejected", f"urgency applies to vwap, not {agg.algo}")])
            return
        if level == "emergency":
            self.log.critical("EMERGENCY_LIQUIDATION", reason=reason, remaining=str(agg.remaining_qty),
                              note="participation cap and schedule overridden; hard risk limits still apply")
            events: list[ev.Event] = [ev.EmergencyLiquidationStarted(self.execution_id, now, reason, agg.remaining_qty)]
            indices = [s.index for s in agg.open_slices()]
            if indices:  # every open slice is due now: the first takes everything, the rest skip
                events.append(ev.ScheduleReplanned(self.execution_id, now, agg.end_at or now,
                                                   respread(agg.remaining_qty, indices, now, now, self.instrument),
                                                   "emergency liquidation"))
            await self.append(events, commands)
            return
        self.log.info("urgency_changed", urgency=level, reason=reason)
        await self.append([ev.UrgencyChanged(self.execution_id, now, level, reason)], commands)

    async def _complete(self, agg: Execution, now: datetime) -> None:
        reason = "filled" if agg.remaining_qty == 0 else "window_ended"
        if reason != "filled":
            self.log.warning("window_ended_with_quantity_left", remaining=str(agg.remaining_qty))
        vwap, vs_vwap = await self.benchmark(agg)
        cls = ev.VwapCompleted if agg.algo == "vwap" else ev.TwapCompleted
        await self.append([cls(
            self.execution_id, now, agg.filled_qty, agg.remaining_qty, agg.avg_price, agg.arrival_price,
            agg.implementation_shortfall_bps, agg.fees, reason, vwap, vs_vwap)])
        self.log.info("execution_completed", reason=reason, filled=str(agg.filled_qty),
                      avg_price=str(agg.avg_price), is_bps=str(agg.implementation_shortfall_bps))
