"""Domain events: frozen dataclasses, one per state change, with a lossless JSON codec.

Every event names its aggregate (``execution_id``) and when it happened (``occurred_at``,
on the engine's clock). The store adds the envelope: event id, global sequence number,
per-aggregate version and the wall-clock commit time.

The classes live by lifecycle and are all importable from here (``ev.X``):
``genesis.domain.event_base`` (``Event``, ``EventPriority``), ``genesis.domain.execution_events``
(the execution's lifecycle), ``genesis.domain.order_events`` (child orders and fills) and
``genesis.domain.slice_events`` (slices and the schedule). ``EVENT_TYPES`` names every
class the store may hold. The JSON codec (``encode``/``decode``) is in ``genesis.domain.codec``.
"""

from __future__ import annotations

from genesis.domain.event_base import Event, EventPriority
from genesis.domain.execution_events import (ACCOUNT_NOT_RECORDED, EarlyCompletionTriggered,
                                             EmergencyLiquidationStarted, ExecutionCancelled, ExecutionFailed,
                                             ExecutionPaused, ExecutionResumed, ExecutionStarted,
                                             ExecutionSubmitted, TwapCompleted, UrgencyChanged, VwapCompleted)
from genesis.domain.order_events import (FillRecorded, OrderAcknowledged, OrderClosed, OrderIntended,
                                         RiskDenied)
from genesis.domain.slice_events import (HOLD_MARKET_DATA_UNAVAILABLE, HOLD_ORDER_OUTCOME_UNKNOWN,
                                         SLICE_EXPIRED, SLICE_NOT_NEEDED, PlannedSlice, ScheduleReplanned,
                                         SliceParticipationMeasured, SlicingHeld, SlicingResumed,
                                         TwapSliceExecuted, VwapSliceExecuted)

__all__ = [
    "ACCOUNT_NOT_RECORDED", "EVENT_TYPES", "HOLD_MARKET_DATA_UNAVAILABLE", "HOLD_ORDER_OUTCOME_UNKNOWN",
    "SLICE_EXPIRED", "SLICE_NOT_NEEDED", "EarlyCompletionTriggered", "EmergencyLiquidationStarted", "Event",
    "EventPriority", "ExecutionCancelled", "ExecutionFailed", "ExecutionPaused", "ExecutionResumed",
    "ExecutionStarted", "ExecutionSubmitted", "FillRecorded", "OrderAcknowledged", "OrderClosed",
    "OrderIntended", "PlannedSlice", "RiskDenied", "ScheduleReplanned", "SliceParticipationMeasured",
    "SlicingHeld", "SlicingResumed", "TwapCompleted", "TwapSliceExecuted", "UrgencyChanged", "VwapCompleted",
    "VwapSliceExecuted",
]

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
