"""The child order requests and the events of one execution's slices, built from what happened.

``SliceRecords`` does no I/O and decides nothing: ``SliceExecutor`` decides when an order is
sent and a slice closes, appends, and asks this for the request or the events to record (its
intent, its outcome, the slice's close with the event its algorithm names).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, Callable, Sequence

import structlog

from genesis.algorithms.base import SliceSizing
from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution, SliceState, slippage_bps
from genesis.domain.ids import client_order_id, parse_client_order_id
from genesis.domain.orders import OrderReport, OrderRequest, OrderStatus, OrderType, SendPriority, TimeInForce
from genesis.engine.slice_interval import Interval

SliceEvent = Callable[[Execution, dict[str, Any]], ev.TwapSliceExecuted]


class SliceRecords:
    """Requests and events of execution ``execution_id``, stamped by ``clock``; ``slice_event``
    builds the event that closes a slice from its fields (``SliceAlgorithm.slice_event``)."""

    def __init__(self, execution_id: str, clock: Clock, slice_event: SliceEvent,
                 log: structlog.typing.FilteringBoundLogger):
        self.execution_id, self.clock, self.slice_event, self.log = execution_id, clock, slice_event, log

    def request(self, namespace: str, agg: Execution, s: SliceState, order_type: OrderType, qty: Decimal,
                price: Decimal | None, tif: TimeInForce) -> OrderRequest:
        """The slice's next child order, under its deterministic client id (``ids``)."""
        attempt = agg.attempts_for(s.index)
        coid = client_order_id(namespace, self.execution_id, s.index, attempt)
        # the slice's first order goes ahead of remainders in the account's order budget
        priority = SendPriority.LEADING if attempt == 0 else SendPriority.FOLLOWING
        return OrderRequest(coid, agg.symbol, agg.side, order_type, qty, price, tif, priority)

    def intended(self, agg: Execution, s: SliceState, request: OrderRequest, ref: Decimal) -> ev.OrderIntended:
        """The intent of ``request`` (``ref``: the reference price it was sized on)."""
        _, _, attempt = parse_client_order_id(request.client_order_id)
        return ev.OrderIntended(
            self.execution_id, self.clock.now(), s.index, attempt, request.client_order_id,
            request.order_type.value, request.time_in_force.value, request.qty, request.limit_price, ref,
            execution_style=agg.execution_style, slice_count=len(agg.slices),
            parent_gross_usd=(agg.qty * agg.arrival_price) if agg.arrival_price else None,
            twap_config=dict(agg.params))

    def outcome(self, agg: Execution, s: SliceState, request: OrderRequest, report: OrderReport) -> list[ev.Event]:
        """The events that record a final order: its new fills (a trade id counts once: a fill
        whose trade id is recorded already, or came earlier in ``report``, is dropped),
        acknowledgement and end."""
        coid, now = request.client_order_id, self.clock.now()
        events: list[ev.Event] = []
        seen: set[str] = set()  # this report's (the execution's own set is not copied)
        for f in report.fills:
            if f.trade_id in agg.trade_ids or f.trade_id in seen:
                continue
            seen.add(f.trade_id)
            events.append(ev.FillRecorded(self.execution_id, now, f.client_order_id, s.index, f.trade_id, f.qty,
                                          f.price, f.fee, f.fee_asset, f.liquidity.value, f.timestamp))
        events.append(ev.OrderAcknowledged(self.execution_id, now, coid, report.venue_order_id, report.status.value))
        events.append(ev.OrderClosed(self.execution_id, now, coid, report.status.value, report.filled_qty,
                                     report.reason))
        self.log.info("child_order_done", slice_index=s.index, client_order_id=coid, type=request.order_type.value,
                      tif=request.time_in_force.value, qty=str(request.qty), filled=str(report.filled_qty),
                      avg_price=str(report.avg_price), status=report.status.value)
        return events

    @staticmethod
    def closing(agg: Execution, s: SliceState, sizing: SliceSizing | None, before: Sequence[ev.Event],
                reason: str | None) -> tuple[SliceState, str, str | None]:
        """How slice ``s`` closes once ``before`` (its last order's outcome) is recorded: the
        slice with those fills counted, its status and its reason (the rejections' reasons,
        else ``reason``)."""
        fills = [e for e in before if isinstance(e, ev.FillRecorded)]
        st = agg.slices[s.index]
        counted = dataclasses.replace(st, fills=st.fills.plus_all(fills))  # ahead of the append
        closing = {e.client_order_id: e for e in before if isinstance(e, ev.OrderClosed)}
        ended = [(o.status, o.reason) for o in agg.orders_of(s.index) if o.client_order_id not in closing]
        ended += [(OrderStatus(e.status), e.reason) for e in closing.values()]
        wanted = sizing.qty if sizing else counted.planned_qty
        filled = counted.filled_qty
        status = ("filled" if filled >= wanted and filled > 0 else "partial" if filled > 0
                  else "failed" if any(st_ is OrderStatus.REJECTED for st_, _ in ended) else "unfilled")
        reasons = "; ".join(r for st_, r in ended if r and st_ is OrderStatus.REJECTED) or reason
        return counted, status, reasons

    def closed(self, agg: Execution, s: SliceState, status: str, ref: Decimal | None, sizing: SliceSizing | None,
               reason: str | None, bench: tuple[Decimal | None, Decimal | None] = (None, None),
               interval: Interval | None = None) -> ev.TwapSliceExecuted:
        """The event that closes slice ``s`` with its figures (``bench``: market VWAP and the
        slippage against it; ``interval``: the one its participation is measured over)."""
        avg = s.avg_price
        volume = sizing.market_volume if sizing else None  # the forecast the cap was computed on
        fields: dict[str, Any] = dict(
            execution_id=self.execution_id, occurred_at=self.clock.now(), slice_index=s.index,
            slice_count=len(agg.slices), status=status, planned_qty=s.planned_qty, filled_qty=s.filled_qty,
            avg_price=avg, reference_price=ref, slippage_bps=slippage_bps(agg.side, avg, ref), fee=s.fees,
            forecast_volume=volume,
            forecast_participation=(s.filled_qty / volume).quantize(Decimal("0.000001")) if volume else None,
            execution_style=agg.execution_style, reason=reason, maker_qty=s.maker_qty,
            taker_qty=s.filled_qty - s.maker_qty, scheduled_at=s.scheduled_at,
            cap_bound=bool(sizing and sizing.cap_bound), volume_anomaly=bool(sizing and sizing.volume_anomaly),
            market_vwap=bench[0], slippage_vs_vwap_bps=bench[1],
            interval_start=interval[0] if interval else None, interval_end=interval[1] if interval else None,
            # an emergency overrides the cap by design: kept out of participation statistics
            cap_overridden=agg.urgency == "emergency")
        return self.slice_event(agg, fields)
