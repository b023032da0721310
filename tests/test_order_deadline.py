"""An order waiting for the account's order budget waits no longer than its deadline (its
window's end less the order cutoff): when its slot would come later, it is not sent, and the
venue's answer is a rejection with the reason, which the order's lifecycle records as its end
(never an unknown outcome, never a send after the window). On a virtual clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import structlog

from genesis.clock import VirtualClock
from genesis.domain import events as ev
from genesis.domain.orders import OrderRequest, OrderStatus, OrderType, SendPriority, Side
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.venue.base import PermanentVenueError
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.order_budget import SEND_DEADLINE_REASON, OrderBudget
from tests.test_slice_executor_ports import EventLog, ports, started

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
REFUSED = "funds: refused by the fake exchange (proves the order was sent)"


class SendingRecorder:
    """Just enough of a ccxt exchange: records when each order is sent, then refuses it
    (a permanent refusal: no report to build)."""

    def __init__(self, clock: VirtualClock):
        self.clock, self.sent = clock, []  # type: ignore[var-annotated]

    async def create_order(self, symbol: str, type_: str, side: str, qty: str, price: Any, params: dict) -> Any:
        self.sent.append((params["newClientOrderId"], self.clock.now()))
        raise ccxt.InsufficientFunds(REFUSED)


def market(cid: str) -> OrderRequest:
    return OrderRequest(cid, "BTC/USDT", Side.BUY, OrderType.MARKET, Decimal("0.01"), priority=SendPriority.LEADING)


async def test_an_order_whose_budget_slot_comes_after_its_deadline_is_not_sent() -> None:
    clock = VirtualClock(NOW)
    # one order a second: the second order's slot comes in the next second
    budget = OrderBudget(limit=1, window_seconds=1, guard_seconds=0, clock=clock)
    exchange = SendingRecorder(clock)
    venue = CcxtVenue("binance", exchange=exchange, clock=clock, budget=budget)  # type: ignore[arg-type]
    calls = VenueCaller(venue, clock, RetryPolicy(), lambda: False, structlog.get_logger())
    deadline = NOW + timedelta(milliseconds=500)
    async with clock.actor():
        first = await calls.place(market("gfirst-0-0"), NOW, deadline)
        late = await calls.place(market("glate-0-0"), NOW, deadline)
        unbounded = await calls.place(market("gfree-0-0"), NOW, None)
    assert first.status is OrderStatus.REJECTED and REFUSED in (first.reason or "")
    assert late.status is OrderStatus.REJECTED and late.reason == SEND_DEADLINE_REASON
    assert late.venue_order_id is None and late.filled_qty == 0
    assert [cid for cid, _ in exchange.sent] == ["gfirst-0-0", "gfree-0-0"], "the late order was never sent"
    assert all(at < deadline for cid, at in exchange.sent if cid != "gfree-0-0")
    assert clock.now() < deadline + timedelta(seconds=1), "it gave up at its deadline, not after"


async def test_an_order_refused_unsent_at_its_deadline_is_recorded_rejected_with_the_reason() -> None:
    log = EventLog(started())
    executor, clock, positions, calls = ports(log)

    async def no_slot(request: OrderRequest) -> Any:  # the venue's budget: no slot before the deadline
        raise PermanentVenueError(SEND_DEADLINE_REASON)

    calls.venue.place_order = no_slot  # type: ignore[method-assign]
    agg = await log.load()
    async with clock.actor():
        await executor.execute(agg, agg.slices[0], 1, 60.0)
    intents, closes = log.of(ev.OrderIntended), log.of(ev.OrderClosed)
    assert intents and {c.client_order_id for c in closes} == {i.client_order_id for i in intents}
    assert all(c.status == "rejected" and c.reason == SEND_DEADLINE_REASON for c in closes)
    final = await log.load()
    assert final.unresolved_orders() == [], "recovery finds nothing to look up or send again"
    assert final.slices[0].closed and final.filled_qty == 0 and positions.get("BTC/USDT") == 0
