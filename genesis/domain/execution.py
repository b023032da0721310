"""The execution aggregate: its state is a fold over its events.

``Execution.apply`` is the only way state changes; it holds no I/O. The engine asks it what
to do next (which slice, how much is left, which child orders have an unknown outcome) and
appends events; the store's projector writes the same facts into query tables.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from genesis.domain import events as ev
from genesis.domain.fills import FilledFigures, FillTotals
from genesis.domain.orders import ChildOrder, OrderStatus, Side
from genesis.domain.state import ExecutionState, Trigger, transition
from genesis.domain.units import BPS
# no child order is sent in a window's last second: sent then, it could fill after the end
ORDER_CUTOFF = timedelta(seconds=1)


@dataclass(slots=True)
class SliceState(FilledFigures):
    index: int
    scheduled_at: datetime
    planned_qty: Decimal
    closed: bool = False
    status: str = "planned"
    fills: FillTotals = FillTotals()
    interval_start: datetime | None = None  # the interval it was sized for, [start, end) (closed slices)
    interval_end: datetime | None = None


@dataclass(slots=True)
class Execution(FilledFigures):
    execution_id: str
    version: int = 0
    state: ExecutionState = ExecutionState.PENDING
    request_id: str = ""
    symbol: str = ""
    side: Side = Side.BUY
    qty: Decimal = Decimal(0)
    algo: str = "twap"
    duration_seconds: int = 0
    slice_count: int | None = None
    limit_price: Decimal | None = None
    execution_style: str = "twap"
    params: dict[str, str] = field(default_factory=dict)
    # trades inside a window that ends at ``end_at`` (TWAP, VWAP...); else (a single order, the
    # router's short TWAP) a nominal end only: the child orders take what they take
    windowed: bool = True
    submitted_at: datetime | None = None
    account: str = ""  # the venue account it trades on ("" : not recorded, see ExecutionSubmitted)
    started_at: datetime | None = None
    end_at: datetime | None = None
    ended_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    # a hold (SlicingHeld) that is not a user pause: state stays running, no new slice starts
    held_since: datetime | None = None
    hold_reason: str | None = None
    held_seconds: float = 0.0  # holds that ended, in total
    arrival_price: Decimal | None = None
    slices: dict[int, SliceState] = field(default_factory=dict)
    orders: dict[str, ChildOrder] = field(default_factory=dict)
    trade_ids: set[str] = field(default_factory=set)
    fills: FillTotals = FillTotals()
    completion_reason: str | None = None
    early_completion_at: datetime | None = None
    urgency: str = "low"
    emergency_at: datetime | None = None
    market_vwap: Decimal | None = None
    slippage_vs_vwap_bps: Decimal | None = None
    # running indexes, so that queries stay O(1) on executions with thousands of slices
    slices_executed: int = 0
    slices_denied: int = 0
    _open: list[int] = field(default_factory=list)  # indices of open slices, ascending
    _orders_by_slice: dict[int, list[ChildOrder]] = field(default_factory=dict)
    _unresolved: dict[str, ChildOrder] = field(default_factory=dict)
    _unmeasured: list[int] = field(default_factory=list)  # closed slices awaiting their realised participation

    @classmethod
    def replay(cls, execution_id: str, history: Iterable[ev.Event]) -> "Execution":
        agg = cls(execution_id)
        for e in history:
            agg.apply(e)
        return agg

    # -- queries ---------------------------------------------------------------------------

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def implementation_shortfall_bps(self) -> Decimal | None:
        """Signed, positive = worse than the arrival price for us."""
        return slippage_bps(self.side, self.avg_price, self.arrival_price)

    def window_over(self, now: datetime) -> bool:
        """The window has ended: nothing more is sent, what is left expires. Neither a stall
        nor a re-spread moves the end; only a pause under the ``extend`` policy does."""
        return self.windowed and self.end_at is not None and now >= self.end_at

    def orders_closed(self, now: datetime) -> bool:
        """No more child orders: the window ends within ``ORDER_CUTOFF``."""
        return self.window_over(now + ORDER_CUTOFF)

    def order_deadline(self) -> datetime | None:
        """When sending child orders stops (``orders_closed`` from then on); None: no window."""
        if not self.windowed or self.end_at is None:
            return None
        return self.end_at - ORDER_CUTOFF

    def unmeasured_slices(self) -> list[SliceState]:
        """Closed slices whose realised participation is not recorded yet, in closing order."""
        return [self.slices[i] for i in self._unmeasured]

    def open_slices(self) -> list[SliceState]:
        """Slices not yet executed, by index."""
        return [self.slices[i] for i in self._open]

    @property
    def open_count(self) -> int:
        return len(self._open)

    def next_open(self, k: int = 0) -> SliceState | None:
        """The ``k``-th open slice (0: the next one), or None."""
        return self.slices[self._open[k]] if k < len(self._open) else None

    def orders_of(self, slice_index: int) -> list[ChildOrder]:
        return list(self._orders_by_slice.get(slice_index, ()))

    def unresolved_orders(self) -> list[ChildOrder]:
        """Child orders whose outcome the store does not know: reconcile before acting."""
        return list(self._unresolved.values())

    def attempts_for(self, slice_index: int) -> int:
        return len(self._orders_by_slice.get(slice_index, ()))

    # -- the fold --------------------------------------------------------------------------

    def apply(self, e: ev.Event) -> None:
        handler = _HANDLERS.get(type(e))
        if handler is None:
            raise TypeError(f"Execution cannot apply {type(e).__name__}")
        handler(self, e)
        self.version += 1

    def _submitted(self, e: ev.ExecutionSubmitted) -> None:
        self.request_id, self.symbol, self.side = e.request_id, e.symbol, Side(e.side)
        self.qty, self.algo, self.duration_seconds = e.qty, e.algo, e.duration_seconds
        self.slice_count, self.limit_price = e.slice_count, e.limit_price
        self.execution_style, self.params = e.execution_style, dict(e.params)
        self.windowed = e.trades_in_window
        self.submitted_at, self.account = e.occurred_at, e.account
        self.urgency = self.params.get("urgency", "low")

    def _started(self, e: ev.ExecutionStarted) -> None:
        self.state = transition(self.state, Trigger.START)
        self.started_at, self.arrival_price, self.end_at = e.occurred_at, e.arrival_price, e.end_at
        self.slices = {p.index: SliceState(p.index, p.scheduled_at, p.qty) for p in e.slices}
        self._open = sorted(self.slices)

    def _replanned(self, e: ev.ScheduleReplanned) -> None:
        self.end_at = e.end_at
        for p in e.slices:
            old = self.slices.get(p.index)
            if old is not None and old.closed:
                raise ValueError(f"replan touches closed slice {p.index}")
            if old is not None:
                old.scheduled_at, old.planned_qty = p.scheduled_at, p.qty
            else:
                self.slices[p.index] = SliceState(p.index, p.scheduled_at, p.qty)
                bisect.insort(self._open, p.index)

    def _paused(self, e: ev.ExecutionPaused) -> None:
        self.state = transition(self.state, Trigger.PAUSE)
        self.paused_at = e.occurred_at

    def _resumed(self, e: ev.ExecutionResumed) -> None:
        self.state = transition(self.state, Trigger.RESUME)
        if self.paused_at is not None:
            self.paused_seconds += (e.occurred_at - self.paused_at).total_seconds()
        self.paused_at = None

    def _held(self, e: ev.SlicingHeld) -> None:
        if self.held_since is None:
            self.held_since, self.hold_reason = e.occurred_at, e.reason

    def _hold_over(self, e: ev.SlicingResumed) -> None:
        self._close_hold(e.occurred_at)

    def _risk_denied(self, e: ev.RiskDenied) -> None:
        pass  # the slice closes with its TwapSliceExecuted(status="denied")

    def _intended(self, e: ev.OrderIntended) -> None:
        if e.client_order_id in self.orders:
            raise ValueError(f"client order id {e.client_order_id} intended twice")
        order = ChildOrder(e.client_order_id, e.slice_index, e.attempt, e.qty, e.order_type, e.time_in_force,
                           e.limit_price, e.reference_price, intended_at=e.occurred_at)
        self.orders[e.client_order_id] = order
        self._orders_by_slice.setdefault(e.slice_index, []).append(order)
        self._unresolved[e.client_order_id] = order

    def _acknowledged(self, e: ev.OrderAcknowledged) -> None:
        self.orders[e.client_order_id].move_to(OrderStatus.OPEN)

    def _fill(self, e: ev.FillRecorded) -> None:
        if e.trade_id in self.trade_ids:
            raise ValueError(f"fill {e.trade_id} recorded twice")
        self.trade_ids.add(e.trade_id)
        self.orders[e.client_order_id].filled_qty += e.qty
        self.fills = self.fills.plus(e)
        s = self.slices.get(e.slice_index)
        if s is not None:
            s.fills = s.fills.plus(e)

    def _order_closed(self, e: ev.OrderClosed) -> None:
        order = self.orders[e.client_order_id]
        order.move_to(OrderStatus.parse(e.status))
        order.reason = e.reason
        if order.outcome_known:
            self._unresolved.pop(e.client_order_id, None)

    def _slice_executed(self, e: ev.TwapSliceExecuted) -> None:
        s = self.slices[e.slice_index]
        if s.closed:
            raise ValueError(f"slice {e.slice_index} closed twice")
        s.closed, s.status, s.interval_start, s.interval_end = True, e.status, e.interval_start, e.interval_end
        self._open.remove(e.slice_index)
        if e.interval_end is not None:
            self._unmeasured.append(e.slice_index)
        self.slices_executed += s.filled_qty > 0
        self.slices_denied += e.status == "denied"
        if e.market_vwap is not None:
            self.market_vwap, self.slippage_vs_vwap_bps = e.market_vwap, e.slippage_vs_vwap_bps

    def _measured(self, e: ev.SliceParticipationMeasured) -> None:
        self._unmeasured.remove(e.slice_index)

    def _urgency(self, e: ev.UrgencyChanged) -> None:
        self.urgency = e.urgency

    def _emergency(self, e: ev.EmergencyLiquidationStarted) -> None:
        self.urgency, self.emergency_at = "emergency", e.occurred_at

    def _early(self, e: ev.EarlyCompletionTriggered) -> None:
        self.early_completion_at = e.occurred_at

    def _completed(self, e: ev.TwapCompleted) -> None:
        self.state = transition(self.state, Trigger.COMPLETE if e.reason == "filled" else Trigger.EXPIRE)
        if e.market_vwap is not None:
            self.market_vwap, self.slippage_vs_vwap_bps = e.market_vwap, e.slippage_vs_vwap_bps
        self.ended_at, self.completion_reason = e.occurred_at, e.reason
        status = ev.SLICE_NOT_NEEDED if e.reason == "filled" else ev.SLICE_EXPIRED
        self._close_hold(e.occurred_at)
        for i in self._open:  # never traded: closed all at once with the execution
            self.slices[i].closed, self.slices[i].status = True, status
        self._open.clear()

    def _cancelled(self, e: ev.ExecutionCancelled) -> None:
        self.state = transition(self.state, Trigger.CANCEL)
        self.ended_at, self.completion_reason = e.occurred_at, f"cancelled: {e.reason}"
        self._close_pause(e.occurred_at)
        self._close_hold(e.occurred_at)

    def _failed(self, e: ev.ExecutionFailed) -> None:
        self.state = transition(self.state, Trigger.FAIL)
        self.ended_at, self.completion_reason = e.occurred_at, f"failed: {e.reason}"
        self._close_pause(e.occurred_at)
        self._close_hold(e.occurred_at)

    def _close_pause(self, at: datetime) -> None:
        if self.paused_at is not None:
            self.paused_seconds += (at - self.paused_at).total_seconds()
            self.paused_at = None

    def _close_hold(self, at: datetime) -> None:
        if self.held_since is not None:
            self.held_seconds += (at - self.held_since).total_seconds()
            self.held_since, self.hold_reason = None, None


_HANDLERS = {
    ev.ExecutionSubmitted: Execution._submitted,
    ev.ExecutionStarted: Execution._started,
    ev.ScheduleReplanned: Execution._replanned,
    ev.ExecutionPaused: Execution._paused,
    ev.ExecutionResumed: Execution._resumed,
    ev.SlicingHeld: Execution._held,
    ev.SlicingResumed: Execution._hold_over,
    ev.RiskDenied: Execution._risk_denied,
    ev.OrderIntended: Execution._intended,
    ev.OrderAcknowledged: Execution._acknowledged,
    ev.FillRecorded: Execution._fill,
    ev.OrderClosed: Execution._order_closed,
    ev.TwapSliceExecuted: Execution._slice_executed,
    ev.TwapCompleted: Execution._completed,
    ev.EarlyCompletionTriggered: Execution._early,
    ev.VwapSliceExecuted: Execution._slice_executed,
    ev.VwapCompleted: Execution._completed,
    ev.UrgencyChanged: Execution._urgency,
    ev.EmergencyLiquidationStarted: Execution._emergency,
    ev.SliceParticipationMeasured: Execution._measured,
    ev.ExecutionCancelled: Execution._cancelled,
    ev.ExecutionFailed: Execution._failed,
}


def slippage_bps(side: Side, price: Decimal | None, benchmark: Decimal | None) -> Decimal | None:
    """Signed slippage of ``price`` against ``benchmark`` in basis points; positive = worse for us."""
    if price is None or benchmark is None or benchmark == 0:
        return None
    return (side.sign * (price - benchmark) / benchmark * BPS).quantize(Decimal("0.0001"))
