"""Domain events: frozen dataclasses, one per state change, with a lossless JSON codec.

Every event names its aggregate (``execution_id``) and when it happened (``occurred_at``,
on the engine's clock). The store adds the envelope: event id, global sequence number,
per-aggregate version and the wall-clock commit time.

The JSON codec (``encode``/``decode``) is in ``genesis.domain.codec``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar



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
    windowed: bool | None = None  # None: stored before the algorithm recorded it (see ``trades_in_window``)
    # the venue account the execution trades on (the daemon holding its lease works it);
    # ACCOUNT_NOT_RECORDED: submitted before the account was recorded (any daemon works it)
    account: str = ""

    @property
    def trades_in_window(self) -> bool:
        """The execution trades inside a window that ends at ``end_at`` (its algorithm says so).
        Submissions stored before that was recorded: a window was a duration without the
        router's timing (a single order has no duration, the router's TWAP its own timing)."""
        if self.windowed is not None:
            return self.windowed
        return self.duration_seconds > 0 and "router_interval_seconds" not in self.params


ACCOUNT_NOT_RECORDED = ""  # ``ExecutionSubmitted.account`` of events stored before it was recorded


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
class SlicingHeld(Event):
    """New slices are held, not by a user: ``reason`` says why (``market_data_unavailable``:
    the venue's market data stream for ``symbol`` has been down past its limit; ``detail`` is
    the venue's message; ``stream_down_seconds`` how long, in wall seconds, the stream had been
    down when the hold began. ``order_outcome_unknown``: a child order whose send got no answer
    is still not shown by the venue well past its deadline; ``detail`` names it and what to
    check). The execution stays running; the hold does not move the window's end. Ends with
    ``SlicingResumed`` (or with the execution)."""

    reason: str
    venue: str
    symbol: str
    detail: str = ""
    stream_down_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SlicingResumed(Event):
    """A hold is over (the market data is back): slicing goes on, after ``held_seconds``."""

    reason: str
    held_seconds: float


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
    forecast_volume: Decimal | None = None  # market volume expected in the interval (what the cap used)
    forecast_participation: Decimal | None = None  # filled / forecast_volume
    execution_style: str = "twap"
    reason: str | None = None
    maker_qty: Decimal = Decimal(0)
    taker_qty: Decimal = Decimal(0)
    scheduled_at: datetime | None = None
    cap_bound: bool = False
    volume_anomaly: bool = False
    market_vwap: Decimal | None = None  # market VWAP over the window so far (typical price)
    slippage_vs_vwap_bps: Decimal | None = None  # our average so far vs market_vwap, + = worse
    # the interval the slice was sized for, [start, end): its realised participation is
    # measured over it once its minutes have closed (SliceParticipationMeasured)
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    cap_overridden: bool = False  # emergency: sized beyond the participation cap by design

    # stored before the forecast got its own name: their market_volume/participation were it
    legacy_names: ClassVar[dict[str, str]] = {"market_volume": "forecast_volume",
                                              "participation": "forecast_participation"}


@dataclass(frozen=True, slots=True)
class SliceParticipationMeasured(Event):
    """The market volume actually traded in a closed slice's interval and the slice's realised
    participation (filled / that volume), once every minute of the interval has closed.
    ``None``: the venue's candles do not cover the interval (never a guess)."""

    slice_index: int
    market_volume: Decimal | None
    participation: Decimal | None

    priority: ClassVar[EventPriority] = EventPriority.NORMAL


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
    (still inside the participation cap), or, when ``accelerated`` is False, cannot be and
    ``reason`` says why. The other fields are the figures behind the new end; events
    stored before they existed decode with None/"" (unknown)."""

    price: Decimal
    arrival_price: Decimal
    improvement_bps: Decimal
    previous_end_at: datetime | None = None  # the window end before the trigger
    end_at: datetime | None = None  # the window end chosen (== previous_end_at: kept)
    accelerated: bool | None = None
    volume_rate_per_second: Decimal | None = None  # recent market volume (base asset) used
    participation_cap: Decimal | None = None
    cap_span_seconds: Decimal | None = None  # the cap absorbs the remainder at that rate in this long
    nominal_span_seconds: Decimal | None = None  # early_interval_seconds x slices left
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TwapCompleted(Event):
    """Execution finished. ``reason``: ``filled`` (state completed: the quantity is filled,
    whatever slices were still planned) or ``window_ended`` (state expired: the window ended
    with quantity left, see ``remaining_qty``). Slices still open are closed by it, without
    trading (``SLICE_NOT_NEEDED`` / ``SLICE_EXPIRED``)."""

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
        VwapCompleted, SliceParticipationMeasured, SlicingHeld, SlicingResumed,
    )
}

# why slicing is held (SlicingHeld.reason): the venue's market data has been down past its limit
HOLD_MARKET_DATA_UNAVAILABLE = "market_data_unavailable"
# ... or a child order's outcome is still unknown past its deadline (``detail`` names the order)
HOLD_ORDER_OUTCOME_UNKNOWN = "order_outcome_unknown"

# the status of a slice still open when its execution ended: filled without it, or window over
SLICE_NOT_NEEDED = "not_needed"
SLICE_EXPIRED = "expired"

