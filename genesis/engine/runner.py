"""One execution's life: start, slices, pause/resume, completion. An asyncio task per execution.

Every decision is appended as an event before it is acted on; the runner is the only
appender for its execution once it exists. Slice sizes come from what the venue reported
filled, never from what was hoped. The runner's loop decides what is due; it composes the
collaborators that act, each on its ports: ``SliceExecutor`` (one slice), ``AlgorithmDecisions``
(plan, re-plan, urgency, completion: ``engine.algorithm_decisions``), ``reconcile`` (at start).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.instrument import Instrument
from genesis.domain.risk import RiskEngine
from genesis.algorithms.base import Algorithm, AlgorithmSettings, Context, VwapSettings
from genesis.algorithms.registry import algorithm_for
from genesis.domain.state import ExecutionState
from genesis.domain.twap import TwapParams
from genesis.engine.account_cap import NO_ACCOUNT_CAP, AccountCaps
from genesis.engine.algorithm_decisions import AlgorithmDecisions
from genesis.engine.control import Control, Desire
from genesis.engine.durable_append import DurableAppend
from genesis.engine.hooks import NO_HOOKS, EngineHooks
from genesis.engine.market_hold import MarketHold
from genesis.engine.market_data import MarketData
from genesis.engine.measurement import measure, measure_after_end
from genesis.engine.positions import PositionBook
from genesis.engine.outcome_alarm import OutcomeAlarm
from genesis.engine.recovery import reconcile
from genesis.engine.recovery_gate import RECOVERY_WAIT_SECONDS, RecoveryGate
from genesis.engine.slice_algorithm import PolicySliceAlgorithm
from genesis.engine.slice_executor import RoutingSettings, SliceExecutor
from genesis.engine.venue_calls import HoldInterrupted, RetryPolicy, VenueCaller, VenueUnavailable
from genesis.engine.window_benchmark import WindowBenchmark
from genesis.store.eventstore import EventStore
from genesis.tuning import LoopPacer
from genesis.venue.base import Venue

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
                 hooks: EngineHooks = NO_HOOKS, account_caps: AccountCaps | None = None,
                 gate: RecoveryGate | None = None):
        """``account_caps``: the engine's account-wide participation caps (None: off).
        ``gate``: the restart recovery pass this runner belongs to (once reconciled it waits
        there for the others: ``RecoveryGate``), or the pass open when it was submitted; None: none."""
        self.execution_id = execution_id
        self.store, self.venue, self.clock = store, venue, clock
        self.instrument, self.risk, self.positions = instrument, risk, positions
        self.control, self.settings, self.hooks, self.account_caps = control, settings, hooks, account_caps
        self.market = market or MarketData(venue)
        self.pacer = pacer or LoopPacer(0)  # shared with the other runners: see genesis.tuning
        self.log = structlog.get_logger("genesis.runner").bind(execution_id=execution_id)
        self.append = DurableAppend(execution_id, store, clock, self.pacer.turn, self.log,
                                    settings.storage_retry_seconds)
        self.hold = MarketHold(execution_id, venue, load=self._load, append=self.append, clock=clock,
                               control=control, log=self.log)  # market data unavailable: slicing held
        alarm = OutcomeAlarm(execution_id, lambda: venue.name, load=self._load, append=self.append,
                             clock=clock, log=self.log)  # an order's outcome unknown past its deadline: recorded
        self.calls = VenueCaller(venue, clock, settings.retry, self._stopping, self.log, self.pacer.turn, self.hold,
                                 alarm)
        self.slices: SliceExecutor | None = None  # built once the algorithm is known (run)
        self.decisions: AlgorithmDecisions | None = None  # the algorithm's decisions, once it is known (run)
        self.benchmark = WindowBenchmark(self.calls.candles, clock)  # market VWAP of the window so far
        self.recovered = asyncio.Event()  # set once the aggregate is loaded and reconciled
        self.gate = gate

    def _settled(self) -> None:
        """Its child orders' outcomes are recorded (``RecoveryGate``)."""
        if self.gate is not None:
            self.gate.settled(self.execution_id)

    async def _pass_reconciled(self, gate: RecoveryGate) -> None:
        """Wait until every execution of the recovery pass has settled its child orders, then
        (at most ``RECOVERY_WAIT_SECONDS``) until every one has reconciled; a cancel or a stop
        of this execution ends the wait (it decides no slice: nothing reads the positions)."""
        gate.recovered(self.execution_id)
        await self._gate_or_stop(gate, gate.all_settled, None)
        await self._gate_or_stop(gate, gate.all_recovered,
                                 self.clock.now() + timedelta(seconds=RECOVERY_WAIT_SECONDS))

    async def _gate_or_stop(self, gate: RecoveryGate, opened: asyncio.Event, until: datetime | None) -> None:
        """Wait for ``opened`` (a step of ``gate``) until ``until`` (None: no end), or for a
        cancel or a stop of this execution (its control's wake; the desire is read again here
        and by ``_decide``): both set the one event waited on (``RecoveryGate.wakes``,
        ``Control.wakes``)."""
        while not opened.is_set() and not self._stopping():
            self.control.wake.clear()
            either = asyncio.Event()
            with gate.wakes(opened, either), self.control.wakes(either):
                if not await self.clock.wait_event(either, until=until):
                    return  # ``until`` came first

    def _stopping(self) -> bool:
        return self.control.desire in (Desire.STOP, Desire.CANCEL)

    def _slice_executor(self, policy: Algorithm, agg: Execution) -> SliceExecutor:
        """The slice executor on this runner's ports (never the runner itself)."""
        account = (self.account_caps.room(agg.account, agg.symbol, self.instrument) if self.account_caps
                   else NO_ACCOUNT_CAP)
        return SliceExecutor(
            self.execution_id, algorithm=PolicySliceAlgorithm(policy), venue=self.calls, append=self.append,
            namespace=self.store.namespace, clock=self.clock, instrument=self.instrument, risk=self.risk,
            positions=self.positions, benchmark=self.benchmark, log=self.log, routing=self.settings.routing,
            hooks=self.hooks.kill_points, decision_timer=self.hooks.decision_seconds, pace=self.pacer.turn,
            account=account)

    def _algorithm_decisions(self, policy: Algorithm) -> AlgorithmDecisions:
        """The algorithm's decisions on this runner's ports (never the runner itself)."""
        return AlgorithmDecisions(
            self.execution_id, policy=policy, venue=self.calls, append=self.append, control=self.control,
            mark_commands=self.store.mark_commands, clock=self.clock, instrument=self.instrument,
            pause_policy=self.settings.pause_policy, benchmark=self.benchmark, log=self.log)

    async def _load(self) -> Execution:
        return await self.store.load(self.execution_id)

    async def run(self) -> None:
        async with self.clock.actor():
            await self.pacer.turn()
            agg = await self.store.load(self.execution_id)
            self.hold.sync(agg)
            policy = algorithm_for(agg, Context(self.market, self.instrument,
                                                AlgorithmSettings(self.settings.twap, self.settings.vwap)))
            self.slices = self._slice_executor(policy, agg)
            self.decisions = decisions = self._algorithm_decisions(policy)
            self.log.info("runner_started", state=agg.state.value, filled=str(agg.filled_qty))
            try:
                await reconcile(agg, venue=self.calls, slices=self.slices, load=self._load, append=self.append,
                                replan=decisions.replan, clock=self.clock, log=self.log, settled=self._settled)
                self.recovered.set()
                if self.gate is not None:
                    await self._pass_reconciled(self.gate)
                while not await self._decide():
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

    async def _decide(self) -> bool:
        """``_step``; a wait for market data that a pause or the window's end interrupted
        (nothing sent yet) is decided again."""
        self.hold.armed = True
        try:
            return await self._step()
        except HoldInterrupted:
            return False
        finally:
            self.hold.armed = False

    async def _step(self) -> bool:
        """One decision. Returns True when the runner should exit."""
        decisions = self.decisions
        assert decisions is not None
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
            await decisions.complete(agg, now)  # filled: at once, whatever is still planned
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
            await decisions.resume(agg, now)
            return False
        if agg.state is ExecutionState.PENDING:
            await decisions.start(agg)
            return False
        if self.control.urgency is not None:
            await decisions.apply_urgency(agg, now)
            return False
        await self._ack_noop("already running")
        nxt = agg.next_open()
        if nxt is None:
            await decisions.after_plan(agg, now)
            return False
        if nxt.scheduled_at > now:
            wake_at = min(nxt.scheduled_at, agg.end_at) if agg.windowed and agg.end_at else nxt.scheduled_at
            await self.clock.wait_event(self.control.wake, until=wake_at)
            return False
        if await decisions.finish_early(agg, now):
            return False
        if not self.append.measured:
            self.append.measured = await measure(self.calls.candles, agg, now)
        if agg.orders_closed(now):  # the window's last second: no new order, wait for its end
            await self.clock.wait_event(self.control.wake, until=agg.end_at)
            return False
        if self._late(agg, nxt.scheduled_at, now):
            # the loop stalled (machine load, a long venue outage): re-spread what is left over
            # the time left instead of firing overdue slices back to back
            await self.append([await decisions.replan(agg, now, agg.end_at or now, "late: remaining re-spread")])
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

