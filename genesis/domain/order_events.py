"""Events of child orders and fills: a slice's order denied by risk, intended (committed
before the venue is called), acknowledged, filled and closed. Re-exported by
``genesis.domain.events``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from genesis.domain.event_base import Event, EventPriority


@dataclass(frozen=True, slots=True)
class RiskDenied(Event):
    slice_index: int
    qty: Decimal
    reference_price: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class OrderIntended(Event):
    """The intent to send a child order. Committed before the venue is called."""

    slice_index: int
    attempt: int
    client_order_id: str
    order_type: str
    time_in_force: str
    qty: Decimal
    limit_price: Decimal | None
    reference_price: Decimal
    execution_style: str = "twap"
    slice_count: int | None = None
    parent_gross_usd: Decimal | None = None
    twap_config: dict[str, str] = field(default_factory=dict)

    priority: ClassVar[EventPriority] = EventPriority.NORMAL


@dataclass(frozen=True, slots=True)
class OrderAcknowledged(Event):
    client_order_id: str
    venue_order_id: str | None
    status: str

    priority: ClassVar[EventPriority] = EventPriority.NORMAL


@dataclass(frozen=True, slots=True)
class FillRecorded(Event):
    client_order_id: str
    slice_index: int
    trade_id: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: str
    filled_at: datetime

    priority: ClassVar[EventPriority] = EventPriority.NORMAL


@dataclass(frozen=True, slots=True)
class OrderClosed(Event):
    client_order_id: str
    status: str
    filled_qty: Decimal
    reason: str | None = None

    priority: ClassVar[EventPriority] = EventPriority.NORMAL
