"""Events of an execution's lifecycle: submitted, started, paused and resumed, its pace
changed (urgency, emergency, early completion), and how it ended. Re-exported by
``genesis.domain.events``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from genesis.domain.event_base import Event
from genesis.domain.slice_events import PlannedSlice


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
class ExecutionPaused(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class ExecutionResumed(Event):
    reason: str


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
