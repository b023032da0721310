"""Order vocabulary shared by the engine and every venue: sides, types, requests, reports; a child
order as the execution aggregate knows it (``ChildOrder``) and its state machine as data."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from genesis.domain.fills import FillTotals


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: signed slippage is ``sign * (price - benchmark)``."""
        return 1 if self is Side.BUY else -1


class OrderType(str, enum.Enum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(str, enum.Enum):
    GTC = "gtc"  # rests on the book until filled or cancelled
    IOC = "ioc"  # fills what it can now, the rest is cancelled
    POST_ONLY = "post_only"  # rests as maker; rejected if it would take


class SendPriority(str, enum.Enum):
    """Which orders the account's order budget lets out first when they queue for it.

    ``LEADING``: a slice's first child order (the slice's lateness is this order's);
    ``FOLLOWING``: a slice's later order (the taker remainder after the maker leg) or an order
    sent again after a restart, which may wait a bounded while longer (``OrderBudget``)."""

    LEADING = "leading"
    FOLLOWING = "following"


class OrderStatus(str, enum.Enum):
    """A child order's status: the one vocabulary of the aggregate, the events, the query
    rows and every venue (a venue reports all but ``INTENDED``). Moves between them follow
    ``ORDER_TRANSITIONS``."""

    INTENDED = "intended"  # its intent is durable; the venue may not have seen it yet
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"  # the venue never saw it (or no longer knows it): nothing more will fill

    @property
    def is_final(self) -> bool:
        """The order's outcome is known: nothing more fills, it moves no more."""
        return self in FINAL_ORDER_STATUSES

    @classmethod
    def parse(cls, value: str) -> "OrderStatus":
        """The status named ``value`` (as events and rows store it); ``ValueError`` if none is."""
        try:
            return _BY_VALUE[value]
        except KeyError:
            raise ValueError(f"{value!r} is not a child order status") from None


_LIVE = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
_FINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.NOT_FOUND)
# the statuses an order may move to from each: a live order may be reported again (its
# acknowledgement, a cancel the venue has not finished) or end; a final one never moves
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.INTENDED: frozenset((*_LIVE, *_FINAL)),
    OrderStatus.OPEN: frozenset((*_LIVE, *_FINAL)),
    OrderStatus.PARTIALLY_FILLED: frozenset((*_LIVE, *_FINAL)),
    **{final: frozenset() for final in _FINAL},
}
FINAL_ORDER_STATUSES = frozenset(s for s, targets in ORDER_TRANSITIONS.items() if not targets)
_BY_VALUE = {s.value: s for s in OrderStatus}


class IllegalOrderTransition(ValueError):
    """A child order cannot move from ``current`` to ``target`` (e.g. a filled order reopened)."""

    def __init__(self, client_order_id: str, current: OrderStatus, target: OrderStatus):
        super().__init__(f"child order {client_order_id} cannot move from {current.value} to {target.value}")
        self.client_order_id, self.current, self.target = client_order_id, current, target


def order_transition(client_order_id: str, current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """``target``, when ``ORDER_TRANSITIONS`` allows the move; else ``IllegalOrderTransition``."""
    if target not in ORDER_TRANSITIONS[current]:
        raise IllegalOrderTransition(client_order_id, current, target)
    return target


class Liquidity(str, enum.Enum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A child order as the engine asks a venue to place it."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    priority: SendPriority = SendPriority.LEADING  # its place in the order budget's queue
    send_by: datetime | None = None  # not sent at or after this (its window's order deadline)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution reported by a venue. ``trade_id`` is the venue's id: fills are idempotent on it."""

    trade_id: str
    client_order_id: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What a venue says an order is: its terms as placed, and when it was created (on the
    engine's clock, as best the venue can convert its own; ``None`` when it does not say)."""

    symbol: str
    side: str  # Side values: "buy", "sell"
    order_type: str  # OrderType values: "market", "limit"
    qty: Decimal
    limit_price: Decimal | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What a venue knows about one order, found by its client order id. ``terms``: what the
    order is, for venues that can hold orders genesis did not send from this database (an
    exchange account); ``None`` from the in-process simulator."""

    client_order_id: str
    venue_order_id: str | None
    status: OrderStatus
    filled_qty: Decimal
    fills: tuple[Fill, ...] = ()
    reason: str | None = None
    terms: OrderTerms | None = None

    @property
    def avg_price(self) -> Decimal | None:
        return FillTotals().plus_all(self.fills).avg_price


def foreign_order_reason(request: OrderRequest, terms: OrderTerms, intended_at: datetime,
                         clock_tolerance: timedelta) -> str | None:
    """Why the order a venue holds under ``request.client_order_id`` is not the order intended
    at ``intended_at`` (``None`` when it is): another symbol, side, type, quantity or limit
    price, or created before the intent (by more than ``clock_tolerance``, the allowance for
    the venue's clock against ours). Such an order is someone else's: never adopt its fills."""
    wrong = [f"{name} {theirs} (intended {ours})" for name, theirs, ours in (
        ("symbol", terms.symbol, request.symbol), ("side", terms.side, request.side.value),
        ("type", terms.order_type, request.order_type.value), ("qty", terms.qty, request.qty),
    ) if theirs != ours]
    if request.order_type is OrderType.LIMIT and terms.limit_price != request.limit_price:
        wrong.append(f"limit price {terms.limit_price} (intended {request.limit_price})")
    if terms.created_at is not None and terms.created_at < intended_at - clock_tolerance:
        wrong.append(f"created {terms.created_at.isoformat()}, before the intent at {intended_at.isoformat()}")
    return "; ".join(wrong) or None


@dataclass(slots=True)
class ChildOrder:
    """A child order as the aggregate knows it: its intent, and where its status has moved
    (``OrderStatus``, by ``orders.ORDER_TRANSITIONS``) from its acknowledgement and close."""

    client_order_id: str
    slice_index: int
    attempt: int
    qty: Decimal
    order_type: str
    time_in_force: str
    limit_price: Decimal | None
    reference_price: Decimal
    status: OrderStatus = OrderStatus.INTENDED
    filled_qty: Decimal = Decimal(0)
    reason: str | None = None
    intended_at: datetime | None = None  # when its OrderIntended occurred: it cannot be older at the venue

    @property
    def outcome_known(self) -> bool:
        return self.status.is_final

    def request(self, symbol: str, side: Side) -> OrderRequest:
        """The order as it was intended, to look up or send again under the same client id (a
        re-send: ``SendPriority.FOLLOWING``)."""
        return OrderRequest(self.client_order_id, symbol, side, OrderType(self.order_type), self.qty,
                            self.limit_price, TimeInForce(self.time_in_force), SendPriority.FOLLOWING)

    def move_to(self, status: OrderStatus) -> None:
        """Set the status; ``IllegalOrderTransition`` when the table does not allow the move."""
        self.status = order_transition(self.client_order_id, self.status, status)


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid and ask at a moment."""

    bid: Decimal
    ask: Decimal
    timestamp: datetime

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    def touch(self, side: Side) -> Decimal:
        """Passive price at the touch: best bid for a buy, best ask for a sell."""
        return self.bid if side is Side.BUY else self.ask

    def far(self, side: Side) -> Decimal:
        """Price that takes liquidity: ask for a buy, bid for a sell."""
        return self.ask if side is Side.BUY else self.bid
