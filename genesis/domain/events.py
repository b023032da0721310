"""Domain events: frozen dataclasses, one per state change, with a lossless JSON codec.

Every event names its aggregate (``execution_id``) and when it happened (``occurred_at``,
on the engine's clock). The store adds the envelope: event id, global sequence number,
per-aggregate version and the wall-clock commit time.

Codec rules: ``Decimal`` as a string (exact), datetimes as ISO-8601 UTC, enums by value,
tuples of nested dataclasses as lists of objects.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, ClassVar

from genesis.clock import utc


class EventPriority(enum.IntEnum):
    HIGH = 0  # execution lifecycle and slice outcomes
    NORMAL = 1  # progress: intents, acknowledgements, fills


@dataclass(frozen=True, slots=True)
class Event:
    execution_id: str
    occurred_at: datetime

    priority: ClassVar[EventPriority] = EventPriority.HIGH

    @property
    def event_type(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class PlannedSlice:
    index: int
    scheduled_at: datetime
    qty: Decimal


@dataclass(frozen=True, slots=True)
class ExecutionSubmitted(Event):
    request_id: str
    symbol: str
    side: str
    qty: Decimal
    algo: str
    duration_seconds: int
    slice_count: int | None = None
    limit_price: Decimal | None = None
    execution_style: str = "twap"
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExecutionStarted(Event):
    arrival_price: Decimal
    end_at: datetime
    slices: tuple[PlannedSlice, ...]


@dataclass(frozen=True, slots=True)
class ScheduleReplanned(Event):
    """Remaining slices re-spread (after a resume or a restart). Replaces the plan from
    ``slices[0].index`` on."""

    end_at: datetime
    slices: tuple[PlannedSlice, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ExecutionPaused(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class ExecutionResumed(Event):
    reason: str


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


@dataclass(frozen=True, slots=True)
class TwapSliceExecuted(Event):
    """A slice is over. ``status``: filled, partial, unfilled, denied, skipped or failed."""

    slice_index: int
    slice_count: int
    status: str
    planned_qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None
    reference_price: Decimal | None
    slippage_bps: Decimal | None
    fee: Decimal
    market_volume: Decimal | None = None
    participation: Decimal | None = None
    execution_style: str = "twap"
    reason: str | None = None
    maker_qty: Decimal = Decimal(0)
    taker_qty: Decimal = Decimal(0)
    scheduled_at: datetime | None = None
    cap_bound: bool = False
    volume_anomaly: bool = False
    market_vwap: Decimal | None = None  # market VWAP over the window so far (typical price)
    slippage_vs_vwap_bps: Decimal | None = None  # our average so far vs market_vwap, + = worse


@dataclass(frozen=True, slots=True)
class VwapSliceExecuted(TwapSliceExecuted):
    """A VWAP slice is over (same facts as a TWAP slice, plus the urgency it ran at)."""

    urgency: str = "low"


@dataclass(frozen=True, slots=True)
class UrgencyChanged(Event):
    urgency: str
    reason: str


@dataclass(frozen=True, slots=True)
class EmergencyLiquidationStarted(Event):
    """Emergency mode: everything left goes now, overriding the participation cap and the
    schedule (never the hard risk limits)."""

    reason: str
    remaining_qty: Decimal


@dataclass(frozen=True, slots=True)
class EarlyCompletionTriggered(Event):
    """The market is better than arrival by the threshold: the remainder is finished faster
    (still inside the participation cap)."""

    price: Decimal
    arrival_price: Decimal
    improvement_bps: Decimal


@dataclass(frozen=True, slots=True)
class TwapCompleted(Event):
    """Execution finished its schedule. ``reason``: ``filled`` (state completed) or
    ``window_ended`` (state expired: quantity was left, see ``remaining_qty``)."""

    filled_qty: Decimal
    remaining_qty: Decimal
    avg_price: Decimal | None
    arrival_price: Decimal | None
    implementation_shortfall_bps: Decimal | None
    fees: Decimal
    reason: str
    market_vwap: Decimal | None = None
    slippage_vs_vwap_bps: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VwapCompleted(TwapCompleted):
    """A VWAP execution finished its window (same facts as ``TwapCompleted``)."""


@dataclass(frozen=True, slots=True)
class ExecutionCancelled(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class ExecutionFailed(Event):
    reason: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        ExecutionSubmitted, ExecutionStarted, ScheduleReplanned, ExecutionPaused,
        ExecutionResumed, RiskDenied, OrderIntended, OrderAcknowledged, FillRecorded,
        OrderClosed, TwapSliceExecuted, TwapCompleted, ExecutionCancelled, ExecutionFailed,
        EarlyCompletionTriggered, VwapSliceExecuted, UrgencyChanged, EmergencyLiquidationStarted,
        VwapCompleted,
    )
}


class CodecError(ValueError):
    """Stored event data cannot be decoded."""


def encode(event: Event) -> str:
    """Event body as a JSON string (the envelope is the store's business)."""
    return json.dumps(_to_plain(event), separators=(",", ":"), sort_keys=True)


def decode(event_type: str, data: str | dict[str, Any]) -> Event:
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise CodecError(f"unknown event type {event_type!r}")
    try:
        raw = json.loads(data) if isinstance(data, str) else data
    except ValueError as exc:
        raise CodecError(f"{event_type}: not JSON: {exc}") from None
    return _from_plain(cls, raw)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_plain(cls: type, raw: dict[str, Any]) -> Any:
    if not isinstance(raw, dict):
        raise CodecError(f"{cls.__name__}: expected an object, got {raw!r}")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            kwargs[f.name] = _convert(hints[f.name], raw[f.name], f"{cls.__name__}.{f.name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise CodecError(f"{cls.__name__}: {exc}") from exc


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0], value, where)
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise CodecError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(item_tp, v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise CodecError(f"{where}: expected an object, got {value!r}")
        key_tp, value_tp = typing.get_args(tp)
        return {_convert(key_tp, k, where): _convert(value_tp, v, where) for k, v in value.items()}
    if tp is Decimal:
        # only the exact text encode() writes: a JSON number would be a binary float
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected a decimal string, got {value!r}")
        try:
            return Decimal(value)
        except InvalidOperation:
            raise CodecError(f"{where}: {value!r} is not a decimal") from None
    if tp is datetime:
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected an ISO-8601 string, got {value!r}")
        try:
            return utc(datetime.fromisoformat(value))
        except ValueError:
            raise CodecError(f"{where}: {value!r} is not an ISO-8601 time") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _from_plain(tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise CodecError(f"{where}: {value!r} is not a {tp.__name__}") from None
    if tp in (int, str, bool, float):
        if not isinstance(value, tp) or (isinstance(value, bool) and tp is not bool):
            raise CodecError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise CodecError(f"{where}: unsupported type {tp!r}")
