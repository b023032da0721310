"""Order vocabulary shared by the engine and every venue: sides, types, requests, reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


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


class OrderStatus(str, enum.Enum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED,
                        OrderStatus.NOT_FOUND)


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
class OrderReport:
    """What a venue knows about one order, found by its client order id."""

    client_order_id: str
    venue_order_id: str | None
    status: OrderStatus
    filled_qty: Decimal
    fills: tuple[Fill, ...] = ()
    reason: str | None = None

    @property
    def avg_price(self) -> Decimal | None:
        qty = sum((f.qty for f in self.fills), Decimal(0))
        if qty == 0:
            return None
        return sum((f.qty * f.price for f in self.fills), Decimal(0)) / qty


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
