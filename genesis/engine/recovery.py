"""A runner's restart recovery: settle what the store does not know before anything new is sent."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from genesis.domain.execution import Execution
from genesis.domain.orders import OrderRequest, OrderStatus, OrderType, TimeInForce
from genesis.domain.state import ExecutionState
from genesis.engine.venue_calls import ForeignOrderError

if TYPE_CHECKING:
    from genesis.engine.runner import ExecutionRunner


async def reconcile(runner: "ExecutionRunner", agg: Execution) -> None:
    """Resolve every child order whose outcome the store does not know, by the client order id
    its intent stored (never a recomputed one), before anything new is sent; one the venue
    never saw is sent again with the same id (unless the window has ended meanwhile). Its slice
    then closes with what was filled (the rest carries forward). An order found under that id
    that is not the one intended fails the execution (``SliceWorker.refuse_foreign``). Finally
    the schedule is re-spread over the rest of the window if slices were missed while the
    daemon was down (a window that has ended is not: it expires)."""
    touched: set[int] = set()
    window_over = agg.window_over(runner.clock.now())
    for order in agg.unresolved_orders():
        request = OrderRequest(order.client_order_id, agg.symbol, agg.side, OrderType(order.order_type),
                               order.qty, order.limit_price, TimeInForce(order.time_in_force))
        assert order.intended_at is not None
        try:
            report = await runner.calls.lookup_intended(request, order.intended_at)
            runner.log.info("order_reconciled", client_order_id=order.client_order_id,
                            status=report.status.value, filled=str(report.filled_qty))
            if report.status is OrderStatus.NOT_FOUND and not window_over:  # never sent: send it now, same id
                report = await runner.calls.place(request, order.intended_at)
        except ForeignOrderError as exc:
            await runner.worker.refuse_foreign(agg, agg.slices[order.slice_index], exc)
            return
        agg = await runner.worker.record(agg, agg.slices[order.slice_index], request, report)
        touched.add(order.slice_index)
    for index in sorted(touched):
        agg = await runner.store.load(runner.execution_id)
        if not agg.slices[index].closed:
            await runner.worker.close(agg, agg.slices[index], None, None)
    agg = await runner.store.load(runner.execution_id)
    now = runner.clock.now()
    if agg.state is ExecutionState.RUNNING and agg.end_at is not None and not agg.window_over(now):
        nxt = agg.next_open()
        if nxt is not None and nxt.scheduled_at < now - timedelta(seconds=1):
            await runner.append([await runner.replan(agg, now, agg.end_at, "restart: remaining re-spread over remaining time")])
