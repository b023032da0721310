"""One execution's life: start, slices, pause/resume, completion. An asyncio task per execution.

Every decision is appended as an event before it is acted on; the runner is the only
appender for its execution once it exists. Slice sizes come from what the venue reported
filled, never from what was hoped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution, SliceState, slippage_bps
from genesis.domain.ids import client_order_id
from genesis.domain.instrument import Instrument
from genesis.domain.orders import OrderReport, OrderRequest, OrderStatus, OrderType, TimeInForce
from genesis.domain.risk import RiskEngine, SliceRiskInput
from genesis.domain.schedule import next_slice_qty, plan_twap, respread
from genesis.domain.state import ExecutionState
from genesis.engine.control import Control, Desire
from genesis.engine.positions import PositionBook
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.store.eventstore import EventStore, StorageError
from genesis.venue.base import Venue

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    pause_policy: str = "extend"  # "extend": window end moves by the paused time; "compress": it does not
    retry: RetryPolicy = RetryPolicy()
    storage_retry_seconds: float = 1.0


class ExecutionRunner:
    def __init__(self, execution_id: str, *, store: EventStore, venue: Venue, clock: Clock,
                 instrument: Instrument, risk: RiskEngine, positions: PositionBook,
                 control: Control, settings: RunnerSettings = RunnerSettings()):
        self.execution_id = execution_id
        self.store, self.venue, self.clock = store, venue, clock
        self.instrument, self.risk, self.positions = instrument, risk, positions
        self.control, self.settings = control, settings
        self.log = structlog.get_logger("genesis.runner").bind(execution_id=execution_id)
        self.calls = VenueCaller(venue, clock, settings.retry, self._stopping, self.log)
        self.slices_sent = 0

    def _stopping(self) -> bool:
        return self.control.desire in (Desire.STOP, Desire.CANCEL)

    async def _append(self, events: list[ev.Event], commands: list[int] | None = None,
                      outcome: str = "accepted") -> Execution:
        """Append durably; on a storage fault wait and retry (fail closed: nothing proceeds)."""
        done = [(cid, outcome, None) for cid in (commands or [])]
        while True:
            try:
                await self.store.append(events, done_commands=done)
                return await self.store.load(self.execution_id)
            except StorageError as exc:
                self.log.error("storage_fault_trading_halted", error=str(exc))
                await self.clock.sleep_until(
                    self.clock.now() + timedelta(seconds=self.settings.storage_retry_seconds))

    async def run(self) -> None:
        async with self.clock.actor():
            agg = await self.store.load(self.execution_id)
            self.log.info("runner_started", state=agg.state.value, filled=str(agg.filled_qty))
            await self._reconcile(agg)
            while not await self._step():
                pass
            agg = await self.store.load(self.execution_id)
            self.log.info("runner_finished", state=agg.state.value, filled=str(agg.filled_qty))

    async def _step(self) -> bool:
        """One decision. Returns True when the runner should exit."""
        agg = await self.store.load(self.execution_id)
        if agg.state.is_terminal:
            if self.control.command_ids:
                await self.store.mark_commands([(c, "ignored", f"execution is {agg.state.value}")
                                                for c in self.control.take_commands()])
            return True
        self.control.wake.clear()
        desire, now = self.control.desire, self.clock.now()
        if desire is Desire.STOP:
            return True
        if desire is Desire.CANCEL:
            await self._append([ev.ExecutionCancelled(self.execution_id, now, self.control.reason)],
                               self.control.take_commands())
            return False
        if desire is Desire.PAUSE:
            if agg.state is ExecutionState.PAUSED:
                await self._ack_noop("already paused")
                await self.clock.wait_event(self.control.wake)
            else:
                await self._append([ev.ExecutionPaused(self.execution_id, now, self.control.reason)],
                                   self.control.take_commands())
            return False
        if agg.state is ExecutionState.PAUSED:
            await self._resume(agg, now)
            return False
        if agg.state is ExecutionState.PENDING:
            await self._start(agg, now)
            return False
        await self._ack_noop("already running")
        open_slices = agg.open_slices()
        if not open_slices:
            await self._complete(agg, now)
            return False
        nxt = open_slices[0]
        if nxt.scheduled_at > now:
            await self.clock.wait_event(self.control.wake, until=nxt.scheduled_at)
            return False
        await self._execute_slice(agg, nxt, len(open_slices))
        return False

    async def _ack_noop(self, detail: str) -> None:
        if self.control.command_ids:
            await self.store.mark_commands([(c, "noop", detail) for c in self.control.take_commands()])

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self, agg: Execution, now: datetime) -> None:
        top = await self.calls.call("book_top", lambda: self.venue.book_top(agg.symbol))
        arrival = top.mid
        plan = plan_twap(agg.qty, now, agg.duration_seconds, self.instrument, arrival, agg.slice_count)
        end_at = now + timedelta(seconds=agg.duration_seconds)
        self.log.info("execution_started", arrival_price=str(arrival), slices=len(plan))
        await self._append([ev.ExecutionStarted(self.execution_id, now, arrival, end_at, plan)],
                           self.control.take_commands())

    async def _resume(self, agg: Execution, now: datetime) -> None:
        paused_for = (now - agg.paused_at) if agg.paused_at else timedelta(0)
        assert agg.end_at is not None or agg.started_at is None
        events: list[ev.Event] = [ev.ExecutionResumed(self.execution_id, now, self.control.reason)]
        if agg.end_at is not None:
            end_at = agg.end_at + paused_for if self.settings.pause_policy == "extend" else agg.end_at
            events.append(self._replan(agg, now, end_at, f"resumed after {paused_for.total_seconds():.0f}s paused "
                                                         f"({self.settings.pause_policy})"))
        await self._append(events, self.control.take_commands())

    def _replan(self, agg: Execution, now: datetime, end_at: datetime, reason: str) -> ev.ScheduleReplanned:
        indices = [s.index for s in agg.open_slices()]
        plan = respread(agg.remaining_qty, indices, now, max(end_at, now), self.instrument)
        return ev.ScheduleReplanned(self.execution_id, now, max(end_at, now), plan, reason)

    async def _complete(self, agg: Execution, now: datetime) -> None:
        reason = "filled" if agg.remaining_qty == 0 else "window_ended"
        if reason != "filled":
            self.log.warning("window_ended_with_quantity_left", remaining=str(agg.remaining_qty))
        await self._append([ev.TwapCompleted(
            self.execution_id, now, agg.filled_qty, agg.remaining_qty, agg.avg_price, agg.arrival_price,
            agg.implementation_shortfall_bps, agg.fees, reason)])
        self.log.info("execution_completed", reason=reason, filled=str(agg.filled_qty),
                      avg_price=str(agg.avg_price), is_bps=str(agg.implementation_shortfall_bps))

    # -- recovery --------------------------------------------------------------------------

    async def _reconcile(self, agg: Execution) -> None:
        """Resolve every child order whose outcome the store does not know, by client order id,
        before anything new is sent; one the venue never saw is sent again with the same id.
        Then re-spread the schedule if slices were missed while the daemon was down."""
        for order in agg.unresolved_orders():
            request = OrderRequest(order.client_order_id, agg.symbol, agg.side, OrderType(order.order_type),
                                   order.qty, order.limit_price, TimeInForce(order.time_in_force))
            report = await self.calls.lookup(agg.symbol, order.client_order_id)
            self.log.info("order_reconciled", client_order_id=order.client_order_id,
                          status=report.status.value, filled=str(report.filled_qty))
            if report.status is OrderStatus.NOT_FOUND:
                report = await self.calls.place(request)
            agg = await self._record(agg, agg.slices[order.slice_index], request, order.reference_price, report)
        now = self.clock.now()
        if agg.state is ExecutionState.RUNNING and agg.end_at is not None:
            open_slices = agg.open_slices()
            if open_slices and open_slices[0].scheduled_at < now - timedelta(seconds=1):
                await self._append([self._replan(agg, now, agg.end_at, "restart: remaining re-spread over remaining time")])

    def _fill_events(self, agg: Execution, slice_index: int, report: OrderReport) -> list[ev.Event]:
        now = self.clock.now()
        return [ev.FillRecorded(self.execution_id, now, f.client_order_id, slice_index, f.trade_id, f.qty,
                                f.price, f.fee, f.fee_asset, f.liquidity.value, f.timestamp)
                for f in report.fills if f.trade_id not in agg.trade_ids]

    # -- one slice -------------------------------------------------------------------------

    async def _execute_slice(self, agg: Execution, s: SliceState, slices_left: int) -> None:
        top = await self.calls.call("book_top", lambda: self.venue.book_top(agg.symbol))
        ref = top.mid
        qty = next_slice_qty(agg.remaining_qty, slices_left, self.instrument, ref)
        count = len(agg.slices)
        if qty <= 0:
            await self._append([self._slice_done(agg, s, count, "skipped", ref, reason="share below the instrument minimum; carried forward")])
            return
        order_type = OrderType.LIMIT if agg.limit_price is not None else OrderType.MARKET
        order_price = agg.limit_price if agg.limit_price is not None else top.far(agg.side)
        decision = self.risk.check_slice(SliceRiskInput(
            agg.symbol, agg.side, qty, ref, order_price, agg.qty, self.positions.get(agg.symbol)))
        now = self.clock.now()
        if not decision.approved:
            self.log.warning("risk_denied", slice_index=s.index, reason=decision.reason)
            await self._append([ev.RiskDenied(self.execution_id, now, s.index, qty, ref, decision.reason or ""),
                                self._slice_done(agg, s, count, "denied", ref, reason=decision.reason)])
            return
        coid = client_order_id(self.execution_id, s.index, agg.attempts_for(s.index))
        request = OrderRequest(coid, agg.symbol, agg.side, order_type, qty, agg.limit_price,
                               TimeInForce.IOC if order_type is OrderType.LIMIT else TimeInForce.GTC)
        agg = await self._append([ev.OrderIntended(
            self.execution_id, now, s.index, agg.attempts_for(s.index), coid, order_type.value,
            request.time_in_force.value, qty, agg.limit_price, ref)])
        # the intent is durable: only now may the order reach the venue
        report = await self.calls.place(request)
        await self._record(agg, s, request, ref, report)

    async def _record(self, agg: Execution, s: SliceState, request: OrderRequest, ref: Decimal,
                      report: OrderReport) -> Execution:
        """Finish the order (cancel what rests), record its fills and end, and close the slice."""
        report = await self.calls.finish(request, report)
        coid, now = request.client_order_id, self.clock.now()
        events = self._fill_events(agg, s.index, report)
        events.append(ev.OrderAcknowledged(self.execution_id, now, coid, report.venue_order_id,
                                           report.status.value))
        events.append(ev.OrderClosed(self.execution_id, now, coid, report.status.value,
                                     report.filled_qty, report.reason))
        filled = sum((f.qty for f in report.fills), ZERO)
        status = ("filled" if filled >= request.qty else "partial" if filled > 0
                  else "failed" if report.status is OrderStatus.REJECTED else "unfilled")
        events.append(self._slice_done(agg, s, len(agg.slices), status, ref, report=report, reason=report.reason))
        agg = await self._append(events)
        self.positions.add(agg.symbol, agg.side, filled)
        self.slices_sent += 1
        self.log.info("slice_executed", slice_index=s.index, status=status, qty=str(request.qty),
                      filled=str(filled), avg_price=str(report.avg_price), client_order_id=coid)
        return agg

    def _slice_done(self, agg: Execution, s: SliceState, count: int, status: str, ref: Decimal | None,
                    report: OrderReport | None = None, reason: str | None = None) -> ev.TwapSliceExecuted:
        fills = report.fills if report else ()
        filled = sum((f.qty for f in fills), ZERO)
        avg = report.avg_price if report else None
        return ev.TwapSliceExecuted(
            self.execution_id, self.clock.now(), s.index, count, status, s.planned_qty, filled, avg, ref,
            slippage_bps(agg.side, avg, ref), sum((f.fee for f in fills), ZERO),
            execution_style=agg.execution_style, reason=reason)
