"""A new order's ccxt parameters (``order_params``), and its send through the account's
``OrderBudget`` (``genesis.venue.order_budget``).

The order first takes a slot in the budget (waiting, on the venue's clock, no later than the
order's deadline), holds it until the exchange answers and hands the budget the window's count
from its own answer (``X-MBX-ORDER-COUNT-10S``). An order refused for the window's count (-1015, not
placed) asks the budget again and goes in a later window, at most ``WINDOW_FULL_RESENDS`` times.
The budget's ``daily`` counts the account's orders in the exchange's UTC day: at its limit less a
margin the order is refused unsent (``DailyOrderLimitReached``, recorded as rejected), and an
exchange's -1015 for the day makes the rest of the day full.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

import ccxt.async_support as ccxt
import structlog

from genesis.clock import Clock
from genesis.domain.orders import OrderRequest, OrderType, TimeInForce
from genesis.venue.base import PermanentVenueError
from genesis.venue.ccxt_errors import RATE_LIMITED, describe, is_daily_order_limit, is_window_order_limit
from genesis.venue.daily_orders import DailyOrderLimitReached
from genesis.venue.order_budget import SEND_DEADLINE_REASON, OrderBudget, Slot
from genesis.venue.request_weight import order_count_1d, order_count_10s

WINDOW_FULL_RESENDS = 3  # an order refused for its window's count asks the budget again this often
BINANCE_CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def order_params(request: OrderRequest, binance: bool, recv_window_ms: int) -> tuple[str | None, dict[str, Any]]:
    """The limit price and the ccxt ``params`` of ``request``'s ``create_order``: its client order
    id (Binance's ``newClientOrderId``, checked against Binance's rule; ``clientOrderId``
    elsewhere), time in force or post-only, and on Binance the ``recvWindow`` its stamp is
    refused after (the ``timestamp`` is added as it is sent). ``PermanentVenueError`` (not sent)
    for a client order id Binance would refuse or a limit order without a price."""
    cid = request.client_order_id
    if binance and not BINANCE_CLIENT_ID_RE.match(cid):
        raise PermanentVenueError(f"client order id {cid!r} breaks Binance's rule "
                                  f"{BINANCE_CLIENT_ID_RE.pattern}")
    params: dict[str, Any] = {"newClientOrderId" if binance else "clientOrderId": cid}
    price = None
    if request.order_type is OrderType.LIMIT:
        if request.limit_price is None:
            raise PermanentVenueError("limit order without a limit price")
        price = str(request.limit_price)
        if request.time_in_force is TimeInForce.POST_ONLY:
            params["postOnly"] = True
        else:
            params["timeInForce"] = "IOC" if request.time_in_force is TimeInForce.IOC else "GTC"
    if binance:
        params["recvWindow"] = recv_window_ms
    return price, params


async def send_within_budget(request: OrderRequest, create: Callable[[], Awaitable[dict[str, Any]]], *,
                             budget: OrderBudget, clock: Clock, headers: Callable[[], Any],
                             mapped: Callable[[Exception, bool], Exception],
                             log: structlog.typing.FilteringBoundLogger) -> dict[str, Any]:
    """The exchange's answer to ``create`` (one ccxt ``create_order``, its errors raw), sent in a
    slot of ``budget``. ``headers``: the client's last answer's headers (a -1015's count);
    ``mapped``: a ccxt error as the engine's venue error.
    ``PermanentVenueError(SEND_DEADLINE_REASON)`` when no slot comes before the order's deadline
    (not sent); ``ccxt.OrderImmediatelyFillable`` goes through unmapped (counted: the exchange
    refused it, counting it all the same); ``PermanentVenueError`` naming the daily limit when
    the account's orders today have reached it (not sent)."""
    try:
        budget.daily.claim()  # the account's orders today, against the daily limit
    except DailyOrderLimitReached as exc:
        raise PermanentVenueError(str(exc)) from None  # refused unsent: recorded as rejected
    for resend in range(WINDOW_FULL_RESENDS + 1):
        # the budget's wait (on the venue's clock) ends at the order's deadline
        within = None if request.send_by is None else (request.send_by - clock.now()).total_seconds()
        slot = None
        try:
            slot = await budget.take(request.priority, within=within)
        finally:  # no slot (the deadline, or its caller gone) on the first try: never sent, not
            if slot is None and resend == 0:  # one of the day's orders (a refused re-send was)
                budget.daily.unclaim()
        if slot is None:
            raise PermanentVenueError(SEND_DEADLINE_REASON)  # refused unsent: recorded as rejected
        try:
            order = await create()
            _order_count(budget, slot, order)
            return order
        except ccxt.OrderImmediatelyFillable:
            slot.observe(None)  # refused by the exchange: counted there all the same
            raise
        except ccxt.BaseError as exc:
            if not is_window_order_limit(exc) or resend == WINDOW_FULL_RESENDS:
                if isinstance(exc, (ccxt.ExchangeError, *RATE_LIMITED)):  # the exchange answered
                    slot.observe(None)
                if is_daily_order_limit(exc):
                    budget.daily.reached()  # the next ones are refused unsent today
                raise mapped(exc, True) from exc
            # not placed: the window is full; ask the budget again for a later window
            slot.window_full(order_count_10s(headers()))
            log.warning("order_window_full", client_order_id=request.client_order_id, error=describe(exc),
                        resend=resend + 1)
        finally:
            slot.done()
    raise AssertionError("unreachable")


def _order_count(budget: OrderBudget, slot: Slot, order: dict[str, Any]) -> None:
    """Hand the budget the exchange's counts of the order's window and day, from the order's
    OWN answer (``info["responseHeaders"]``, ``build_exchange``), and its time on the exchange
    (its transaction time), when known. Never the exchange object's last headers: with orders
    in flight together they may be another answer's, from another window (which once made the
    budget hold a whole window's orders back: a count of 96 adopted into the next window)."""
    info = order.get("info")
    headers = info.get("responseHeaders") if isinstance(info, dict) else None
    headers = headers if isinstance(headers, dict) else None
    at_ms = order.get("timestamp")
    at_seconds = at_ms / 1000 if isinstance(at_ms, (int, float)) else None
    slot.observe(order_count_10s(headers), at_seconds)
    budget.daily.observe(order_count_1d(headers), at_seconds)
