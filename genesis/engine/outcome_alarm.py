"""An order whose outcome is still unknown past its deadline, recorded on the execution.

A child order whose send timed out (no answer, no acknowledgement) may no longer be sent once
its window's orders have closed; the ``VenueCaller`` only looks it up by its client order id.
When the venue has not shown it ``RetryPolicy.outcome_alarm_seconds`` after the deadline, the
wait stops being silent: ``OutcomeAlarm`` appends ``SlicingHeld`` (reason
``order_outcome_unknown``) whose ``detail`` names the order and what to check, and logs an
error. The lookups go on (at the longest back-off): an order the venue shows later is recorded
with its fills as usual, after ``SlicingResumed``. It is never given up as not found (a late
fill would be lost) and never sent again. ``genesis cancel`` ends the wait.
"""

from __future__ import annotations

from typing import Awaitable, Callable

import structlog

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.orders import OrderRequest


def unknown_outcome_detail(request: OrderRequest, past_deadline_seconds: float, lookups: int,
                           lookup_every_seconds: float) -> str:
    """What the operator reads: the order, how long it has been looked for, what to check."""
    return (f"client order id {request.client_order_id} ({request.side.value} {request.qty} {request.symbol}, "
            f"{request.order_type.value}): the send got no answer and the venue has not shown the order "
            f"after {lookups} lookups, {past_deadline_seconds:g}s past its deadline (where it may never be sent "
            f"again: since its first lookup); check the venue's orders "
            f"and trades for that client order id. genesis looks it up every {lookup_every_seconds:g}s and records "
            f"it (fills included) once the venue shows it; it is never sent again. `genesis cancel` ends "
            f"the wait, leaving the order unrecorded")


class OutcomeAlarm:
    """One execution's alarm for orders of unknown outcome (the ``UnknownOutcomeAlarm`` a
    ``VenueCaller`` reports to)."""

    def __init__(self, execution_id: str, venue_name: Callable[[], str], *,
                 load: Callable[[], Awaitable[Execution]],
                 append: Callable[[list[ev.Event]], Awaitable[Execution]], clock: Clock,
                 log: structlog.typing.FilteringBoundLogger):
        self.execution_id, self._venue_name = execution_id, venue_name  # named in the alarm's event
        self._load, self._append, self.clock, self.log = load, append, clock, log

    async def raise_alarm(self, request: OrderRequest, past_deadline_seconds: float, lookups: int,
                          lookup_every_seconds: float) -> None:
        """Record the hold naming the order (unless a hold is already open: it is logged)."""
        detail = unknown_outcome_detail(request, past_deadline_seconds, lookups, lookup_every_seconds)
        self.log.error("order_outcome_unknown_past_deadline", client_order_id=request.client_order_id,
                       detail=detail)
        agg = await self._load()
        if agg.held_since is not None or agg.state.is_terminal:
            return
        await self._append([ev.SlicingHeld(self.execution_id, self.clock.now(), ev.HOLD_ORDER_OUTCOME_UNKNOWN,
                                           self._venue_name(), request.symbol, detail)])

    async def clear(self, request: OrderRequest) -> None:
        """The venue showed the order: end this alarm's hold, before its outcome is recorded."""
        agg = await self._load()
        if agg.held_since is None or agg.hold_reason != ev.HOLD_ORDER_OUTCOME_UNKNOWN or agg.state.is_terminal:
            return
        now = self.clock.now()
        held_seconds = round((now - agg.held_since).total_seconds(), 3)
        self.log.info("order_outcome_found", client_order_id=request.client_order_id, held_seconds=held_seconds)
        await self._append([ev.SlicingResumed(self.execution_id, now, ev.HOLD_ORDER_OUTCOME_UNKNOWN, held_seconds)])
