"""Which committed events deserve a human's attention: pure rules, no I/O.

Each rule turns facts into ``Alert``s whose ``key`` is what deduplication groups on (the same
key within the window: one notification, then a count). ``Alerter`` (genesis.observability.
alerts) sends them.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from genesis.domain import events as ev
from genesis.observability.metrics import risk_reason_class

CRITICAL, WARNING, INFO = "critical", "warning", "info"


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # deduplication key: the same key within the window is one notification
    title: str
    body: str
    severity: str = WARNING


def event_alerts(event: ev.Event) -> list[Alert]:
    """The alerts one event raises on its own (bursts and participation need more context)."""
    eid = event.execution_id
    if isinstance(event, ev.ExecutionFailed):
        return [Alert(f"execution_failed:{eid}", f"genesis: execution {eid} failed",
                      f"execution {eid} failed: {event.reason}", CRITICAL)]
    if isinstance(event, ev.TwapCompleted) and event.reason == "window_ended" and event.remaining_qty > 0:
        return [Alert(f"expired_short:{eid}", f"genesis: execution {eid} expired short",
                      f"execution {eid} expired with {event.remaining_qty} left unfilled "
                      f"(filled {event.filled_qty}, average price {event.avg_price})", WARNING)]
    if isinstance(event, ev.RiskDenied) and risk_reason_class(event.reason) == "kill_switch":
        return [Alert("kill_switch", "genesis: kill switch is on",
                      f"slices are denied: {event.reason} (last: execution {eid}, slice {event.slice_index})",
                      CRITICAL)]
    if isinstance(event, ev.EmergencyLiquidationStarted):
        return [Alert(f"emergency:{eid}", f"genesis: execution {eid} in emergency urgency",
                      f"execution {eid} liquidates {event.remaining_qty} now, over the participation cap: "
                      f"{event.reason}", CRITICAL)]
    if isinstance(event, ev.SlicingHeld) and event.reason == ev.HOLD_ORDER_OUTCOME_UNKNOWN:
        return [Alert(f"order_outcome_unknown:{eid}", f"genesis: execution {eid} has an order of unknown outcome",
                      f"execution {eid}: {event.detail}", CRITICAL)]
    if isinstance(event, ev.UrgencyChanged) and event.urgency == "emergency":
        return [Alert(f"emergency:{eid}", f"genesis: execution {eid} in emergency urgency",
                      f"execution {eid} urgency set to emergency: {event.reason}", CRITICAL)]
    return []


def participation_excess(event: ev.SliceParticipationMeasured, cap: Decimal, step: Decimal,
                         cap_overridden: bool = False) -> Decimal | None:
    """The base quantity by which a slice's realised participation exceeded ``cap`` (a fraction
    of the market volume traded in its interval), when that is more than one lot ``step``; else
    None. Emergency slices (``cap_overridden`` on their slice event) override the cap by design
    and never count. Keyed off the measurement's ``participation`` and ``market_volume``: the
    one place to change if their meaning does."""
    if cap_overridden or event.participation is None or not event.market_volume:
        return None
    excess = (event.participation - cap) * event.market_volume
    return excess if excess > step else None


def participation_alert(event: ev.SliceParticipationMeasured, cap: Decimal, step: Decimal,
                        cap_overridden: bool = False) -> Alert | None:
    excess = participation_excess(event, cap, step, cap_overridden)
    if excess is None:
        return None
    eid = event.execution_id
    return Alert(f"participation:{eid}", f"genesis: participation cap breached by {eid}",
                 f"execution {eid} slice {event.slice_index}: participation {event.participation} of a market "
                 f"volume of {event.market_volume} is over the cap {cap} by {excess} (lot step {step})", WARNING)


class DenialBurst:
    """Risk denials: an alert when ``count`` happen within ``seconds`` (on the events' clock),
    then none until the window has emptied."""

    def __init__(self, count: int, seconds: float):
        self.count, self.window = count, timedelta(seconds=seconds)
        self._times: collections.deque[datetime] = collections.deque()
        self._raised = False

    def add(self, event: ev.RiskDenied) -> Alert | None:
        now = event.occurred_at
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        if not self._times:
            self._raised = False
        self._times.append(now)
        if self._raised or len(self._times) < self.count:
            return None
        self._raised = True
        return Alert("risk_denial_burst", "genesis: burst of risk denials",
                     f"{len(self._times)} slices denied within {self.window.total_seconds():g} s; last: execution "
                     f"{event.execution_id} slice {event.slice_index}: {event.reason}", WARNING)
