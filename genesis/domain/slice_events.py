"""Events of slices and the schedule: the plan and its re-plans, holds on slicing, each
slice's outcome and its realised participation. Re-exported by ``genesis.domain.events``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from genesis.domain.event_base import Event, EventPriority


@dataclass(frozen=True, slots=True)
class PlannedSlice:
    index: int
    scheduled_at: datetime
    qty: Decimal


@dataclass(frozen=True, slots=True)
class ScheduleReplanned(Event):
    """Remaining slices re-spread (after a resume or a restart). Replaces the plan from
    ``slices[0].index`` on."""

    end_at: datetime
    slices: tuple[PlannedSlice, ...]
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


# why slicing is held (SlicingHeld.reason): the venue's market data has been down past its limit
HOLD_MARKET_DATA_UNAVAILABLE = "market_data_unavailable"
# ... or a child order's outcome is still unknown past its deadline (``detail`` names the order)
HOLD_ORDER_OUTCOME_UNKNOWN = "order_outcome_unknown"

# the status of a slice still open when its execution ended: filled without it, or window over
SLICE_NOT_NEEDED = "not_needed"
SLICE_EXPIRED = "expired"
