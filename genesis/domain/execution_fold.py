"""How the execution aggregate's state changes: one function per event type, folding that
event into an ``Execution`` (``genesis.domain.execution``: its state and its queries).

``Execution.apply`` is their only caller: it looks the event's type up in ``HANDLERS``. They
hold no I/O and raise (``ValueError``, or the state machine's refusal) on an event the state
cannot take: a fill recorded twice, a slice closed twice, an illegal transition.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any, Callable

from genesis.domain import events as ev
from genesis.domain.orders import ChildOrder, OrderStatus, Side
from genesis.domain.slice_state import SliceState
from genesis.domain.state import Trigger, transition

# the ``genesis.domain.execution.Execution`` being folded: that module imports this one, so
# this one does not import it back, not even for type checking (no import cycle)
Aggregate = Any


def _submitted(agg: Aggregate, e: ev.ExecutionSubmitted) -> None:
    agg.request_id, agg.symbol, agg.side = e.request_id, e.symbol, Side(e.side)
    agg.qty, agg.algo, agg.duration_seconds = e.qty, e.algo, e.duration_seconds
    agg.slice_count, agg.limit_price = e.slice_count, e.limit_price
    agg.execution_style, agg.params = e.execution_style, dict(e.params)
    agg.windowed = e.trades_in_window
    agg.submitted_at, agg.account = e.occurred_at, e.account
    agg.urgency = agg.params.get("urgency", "low")


def _started(agg: Aggregate, e: ev.ExecutionStarted) -> None:
    agg.state = transition(agg.state, Trigger.START)
    agg.started_at, agg.arrival_price, agg.end_at = e.occurred_at, e.arrival_price, e.end_at
    agg.slices = {p.index: SliceState(p.index, p.scheduled_at, p.qty) for p in e.slices}
    agg._open = sorted(agg.slices)


def _replanned(agg: Aggregate, e: ev.ScheduleReplanned) -> None:
    agg.end_at = e.end_at
    for p in e.slices:
        old = agg.slices.get(p.index)
        if old is not None and old.closed:
            raise ValueError(f"replan touches closed slice {p.index}")
        if old is not None:
            old.scheduled_at, old.planned_qty = p.scheduled_at, p.qty
        else:
            agg.slices[p.index] = SliceState(p.index, p.scheduled_at, p.qty)
            bisect.insort(agg._open, p.index)


def _paused(agg: Aggregate, e: ev.ExecutionPaused) -> None:
    agg.state = transition(agg.state, Trigger.PAUSE)
    agg.paused_at = e.occurred_at


def _resumed(agg: Aggregate, e: ev.ExecutionResumed) -> None:
    agg.state = transition(agg.state, Trigger.RESUME)
    if agg.paused_at is not None:
        agg.paused_seconds += (e.occurred_at - agg.paused_at).total_seconds()
    agg.paused_at = None


def _held(agg: Aggregate, e: ev.SlicingHeld) -> None:
    if agg.held_since is None:
        agg.held_since, agg.hold_reason = e.occurred_at, e.reason


def _hold_over(agg: Aggregate, e: ev.SlicingResumed) -> None:
    _close_hold(agg, e.occurred_at)


def _risk_denied(agg: Aggregate, e: ev.RiskDenied) -> None:
    pass  # the slice closes with its TwapSliceExecuted(status="denied")


def _intended(agg: Aggregate, e: ev.OrderIntended) -> None:
    if e.client_order_id in agg.orders:
        raise ValueError(f"client order id {e.client_order_id} intended twice")
    order = ChildOrder(e.client_order_id, e.slice_index, e.attempt, e.qty, e.order_type, e.time_in_force,
                       e.limit_price, e.reference_price, intended_at=e.occurred_at)
    agg.orders[e.client_order_id] = order
    agg._orders_by_slice.setdefault(e.slice_index, []).append(order)
    agg._unresolved[e.client_order_id] = order


def _acknowledged(agg: Aggregate, e: ev.OrderAcknowledged) -> None:
    agg.orders[e.client_order_id].move_to(OrderStatus.OPEN)


def _fill(agg: Aggregate, e: ev.FillRecorded) -> None:
    if e.trade_id in agg.trade_ids:
        raise ValueError(f"fill {e.trade_id} recorded twice")
    agg.trade_ids.add(e.trade_id)
    agg.orders[e.client_order_id].filled_qty += e.qty
    agg.fills = agg.fills.plus(e)
    s = agg.slices.get(e.slice_index)
    if s is not None:
        s.fills = s.fills.plus(e)


def _order_closed(agg: Aggregate, e: ev.OrderClosed) -> None:
    order = agg.orders[e.client_order_id]
    order.move_to(OrderStatus.parse(e.status))
    order.reason = e.reason
    if order.outcome_known:
        agg._unresolved.pop(e.client_order_id, None)


def _slice_executed(agg: Aggregate, e: ev.TwapSliceExecuted) -> None:
    s = agg.slices[e.slice_index]
    if s.closed:
        raise ValueError(f"slice {e.slice_index} closed twice")
    s.closed, s.status, s.interval_start, s.interval_end = True, e.status, e.interval_start, e.interval_end
    agg._open.remove(e.slice_index)
    if e.interval_end is not None:
        agg._unmeasured.append(e.slice_index)
    agg.slices_executed += s.filled_qty > 0
    agg.slices_denied += e.status == "denied"
    if e.market_vwap is not None:
        agg.market_vwap, agg.slippage_vs_vwap_bps = e.market_vwap, e.slippage_vs_vwap_bps


def _measured(agg: Aggregate, e: ev.SliceParticipationMeasured) -> None:
    agg._unmeasured.remove(e.slice_index)


def _urgency(agg: Aggregate, e: ev.UrgencyChanged) -> None:
    agg.urgency = e.urgency


def _emergency(agg: Aggregate, e: ev.EmergencyLiquidationStarted) -> None:
    agg.urgency, agg.emergency_at = "emergency", e.occurred_at


def _early(agg: Aggregate, e: ev.EarlyCompletionTriggered) -> None:
    agg.early_completion_at = e.occurred_at


def _completed(agg: Aggregate, e: ev.TwapCompleted) -> None:
    agg.state = transition(agg.state, Trigger.COMPLETE if e.reason == "filled" else Trigger.EXPIRE)
    if e.market_vwap is not None:
        agg.market_vwap, agg.slippage_vs_vwap_bps = e.market_vwap, e.slippage_vs_vwap_bps
    agg.ended_at, agg.completion_reason = e.occurred_at, e.reason
    status = ev.SLICE_NOT_NEEDED if e.reason == "filled" else ev.SLICE_EXPIRED
    _close_hold(agg, e.occurred_at)
    for i in agg._open:  # never traded: closed all at once with the execution
        agg.slices[i].closed, agg.slices[i].status = True, status
    agg._open.clear()


def _cancelled(agg: Aggregate, e: ev.ExecutionCancelled) -> None:
    agg.state = transition(agg.state, Trigger.CANCEL)
    agg.ended_at, agg.completion_reason = e.occurred_at, f"cancelled: {e.reason}"
    _close_pause(agg, e.occurred_at)
    _close_hold(agg, e.occurred_at)


def _failed(agg: Aggregate, e: ev.ExecutionFailed) -> None:
    agg.state = transition(agg.state, Trigger.FAIL)
    agg.ended_at, agg.completion_reason = e.occurred_at, f"failed: {e.reason}"
    _close_pause(agg, e.occurred_at)
    _close_hold(agg, e.occurred_at)


def _close_pause(agg: Aggregate, at: datetime) -> None:
    if agg.paused_at is not None:
        agg.paused_seconds += (at - agg.paused_at).total_seconds()
        agg.paused_at = None


def _close_hold(agg: Aggregate, at: datetime) -> None:
    if agg.held_since is not None:
        agg.held_seconds += (at - agg.held_since).total_seconds()
        agg.held_since, agg.hold_reason = None, None


HANDLERS: dict[type[ev.Event], Callable[[Aggregate, Any], None]] = {  # Execution.apply's dispatch
    ev.ExecutionSubmitted: _submitted,
    ev.ExecutionStarted: _started,
    ev.ScheduleReplanned: _replanned,
    ev.ExecutionPaused: _paused,
    ev.ExecutionResumed: _resumed,
    ev.SlicingHeld: _held,
    ev.SlicingResumed: _hold_over,
    ev.RiskDenied: _risk_denied,
    ev.OrderIntended: _intended,
    ev.OrderAcknowledged: _acknowledged,
    ev.FillRecorded: _fill,
    ev.OrderClosed: _order_closed,
    ev.TwapSliceExecuted: _slice_executed,
    ev.TwapCompleted: _completed,
    ev.EarlyCompletionTriggered: _early,
    ev.VwapSliceExecuted: _slice_executed,
    ev.VwapCompleted: _completed,
    ev.UrgencyChanged: _urgency,
    ev.EmergencyLiquidationStarted: _emergency,
    ev.SliceParticipationMeasured: _measured,
    ev.ExecutionCancelled: _cancelled,
    ev.ExecutionFailed: _failed,
}
