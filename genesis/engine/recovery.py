"""A runner's restart recovery: settle what the store does not know before anything new is sent."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Awaitable, Callable

import structlog

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.orders import OrderStatus
from genesis.domain.state import ExecutionState
from genesis.engine.ports import Append, VenuePort
from genesis.engine.slice_executor import SliceExecutor
from genesis.engine.venue_calls import ForeignOrderError

Replan = Callable[[Execution, datetime, datetime, str], Awaitable[ev.ScheduleReplanned]]


async def reconcile(agg: Execution, *, venue: VenuePort, slices: SliceExecutor, load: Callable[[], Awaitable[Execution]],
                    append: Append, replan: Replan, clock: Clock, log: structlog.typing.FilteringBoundLogger,
                    settled: Callable[[], None] = lambda: None) -> None:
    """Resolve every child order whose outcome the store does not know, by the client order id
    its intent stored (never a recomputed one), before anything new is sent; one the venue
    never saw is sent again with the same id (unless orders have closed: the window ends
    within ``ORDER_CUTOFF``), but only after a second lookup made once a request the previous
    owner may still have had in flight can no longer be accepted (``settled_lookup``; made
    too when orders have closed, so such a request's order is found, not left untracked): that
    owner stamped its requests while it held the account lease, which expired before this
    daemon claimed it, so before this pass began (``genesis.venue.send_fence``). Its slice then closes with what was filled (the rest carries forward). An order found under that id
    that is not the one intended fails the execution (``SliceExecutor.refuse_foreign``). Finally
    the schedule is re-spread over the rest of the window if slices were missed while the
    daemon was down (a window that has ended is not: it expires).

    Ports: ``venue`` (retried venue calls), ``slices`` (records outcomes and closes slices),
    ``load`` (the execution as stored), ``append``, ``replan`` (the open slices re-planned
    over ``[now, end)`` with a reason), the clock and the logger; ``settled`` is called once
    every child order's outcome is recorded, before the re-spread (which reads market data)."""
    touched: set[int] = set()
    orders_closed = agg.orders_closed(clock.now())
    sent_by_ms = venue.sent_by_ms()  # no earlier owner's request under any id is stamped later
    for order in agg.unresolved_orders():
        request = order.request(agg.symbol, agg.side)
        assert order.intended_at is not None
        try:
            report = await venue.lookup_intended(request, order.intended_at)
            log.info("order_reconciled", client_order_id=order.client_order_id,
                     status=report.status.value, filled=str(report.filled_qty))
            if report.status is OrderStatus.NOT_FOUND:  # look again once nothing in flight can land
                report = await venue.settled_lookup(request, order.intended_at, sent_by_ms)
                if report.status is OrderStatus.NOT_FOUND and not orders_closed:  # never will be: send it, same id
                    report = await venue.place(request, order.intended_at, agg.order_deadline())
        except ForeignOrderError as exc:
            await slices.refuse_foreign(agg, agg.slices[order.slice_index], exc)
            return
        agg = await slices.record(agg, agg.slices[order.slice_index], request, report)
        touched.add(order.slice_index)
    for index in sorted(touched):
        agg = await load()
        if not agg.slices[index].closed:
            await slices.close(agg, agg.slices[index], None, None)
    settled()
    agg = await load()
    now = clock.now()
    if agg.state is ExecutionState.RUNNING and agg.end_at is not None and not agg.window_over(now):
        nxt = agg.next_open()
        if nxt is not None and nxt.scheduled_at < now - timedelta(seconds=1):
            await append([await replan(agg, now, agg.end_at, "restart: remaining re-spread over remaining time")])
