"""An order the venue said it holds (its report incomplete after acceptance, or a duplicate
client order id) is only looked up: never sent again, never recorded as not sent past its
deadline. On a venue where an order of unknown outcome may never be sent again, the alarm
counts from the first lookup, not from the window's end."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
import structlog

from genesis.clock import VirtualClock
from genesis.domain.orders import OrderReport, OrderStatus, Side
from genesis.engine.venue_calls import RetryPolicy, VenueCaller, VenueUnavailable
from genesis.venue.base import AcceptedUnreportedError, DuplicateOrderError, UnknownOutcomeError
from tests.test_slice_executor_ports import NOW
from tests.test_venue_contract import order

CID = "g0123456789-00000000e1e1-0-0"
FENCE_SECONDS = 6  # the fake's recvWindow and margin


class FencingVenue:
    """Fences its re-sends (stamped requests). ``place_order`` raises ``answers`` in turn; the
    order taken by the ``accepted_on``-th send is shown by lookups only ``lag`` after it."""

    name = "fencing"

    def __init__(self, clock: VirtualClock, answers: list[Exception], accepted_on: int | None = None,
                 lag: timedelta = timedelta(0)) -> None:
        self.clock, self.answers, self.accepted_on, self.lag = clock, list(answers), accepted_on, lag
        self.sent, self.accepted_at, self.stamps = 0, None, []

    def request_clock_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def settle_sends(self, client_order_id: str, sent_by_ms: int | None = None) -> None:
        if self.stamps:
            await self.clock.sleep_until(max(self.stamps) + timedelta(seconds=FENCE_SECONDS))

    async def place_order(self, request: object) -> OrderReport:
        self.sent += 1
        self.stamps.append(self.clock.now())
        if self.sent == self.accepted_on:
            self.accepted_at = self.clock.now()
        raise self.answers.pop(0)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        if self.accepted_at is not None and self.clock.now() >= self.accepted_at + self.lag:
            return OrderReport(client_order_id, "1", OrderStatus.FILLED, D("0.5"))
        return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, D(0))


async def _place(venue: object, clock: VirtualClock, deadline_seconds: float) -> OrderReport:
    caller = VenueCaller(venue, clock, RetryPolicy(), lambda: False, structlog.get_logger())  # type: ignore[arg-type]
    async with clock.actor():
        return await caller.place(order(CID, Side.BUY, "0.5"), NOW, NOW + timedelta(seconds=deadline_seconds))


async def test_an_order_accepted_without_its_report_is_looked_up_past_the_deadline_not_given_up() -> None:
    clock = VirtualClock(NOW)
    venue = FencingVenue(clock, [AcceptedUnreportedError(f"{CID} accepted, report incomplete: 429")],
                         accepted_on=1, lag=timedelta(seconds=FENCE_SECONDS + 2))
    report = await _place(venue, clock, deadline_seconds=1)
    assert (report.status, report.filled_qty, venue.sent) == (OrderStatus.FILLED, D("0.5"), 1)


async def test_a_duplicate_answer_is_never_sent_again_even_after_a_later_5xx() -> None:
    clock = VirtualClock(NOW)
    venue = FencingVenue(clock, [DuplicateOrderError("-2010 Duplicate order sent."), UnknownOutcomeError("503")],
                         accepted_on=1, lag=timedelta(seconds=30))
    report = await _place(venue, clock, deadline_seconds=12)
    assert (report.status, venue.sent) == (OrderStatus.FILLED, 1)


class NeverShown:
    """Neither refuses seen ids nor fences re-sends (another ccxt exchange): 503, never shown."""

    name = "okx-like"

    def __init__(self) -> None:
        self.sent = 0

    async def place_order(self, request: object) -> OrderReport:
        self.sent += 1
        raise UnknownOutcomeError("503")

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, D(0))


class Alarm:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock, self.raised_after = clock, []

    async def raise_alarm(self, request: object, past: float, lookups: int, every: float) -> None:
        self.raised_after.append(self.clock.now() - NOW)

    async def clear(self, request: object) -> None:
        pass


async def test_where_an_order_may_never_be_sent_again_the_alarm_counts_from_the_first_lookup() -> None:
    clock = VirtualClock(NOW)
    venue, alarm = NeverShown(), Alarm(clock)
    deadline = NOW + timedelta(hours=4)
    policy = RetryPolicy()
    caller = VenueCaller(venue, clock, policy, lambda: len(alarm.raised_after) > 0,  # type: ignore[arg-type]
                         structlog.get_logger(), alarm=alarm)  # type: ignore[arg-type]
    async with clock.actor():
        with pytest.raises(VenueUnavailable):
            await caller.place(order(CID, Side.BUY, "0.5"), NOW, deadline)
    assert venue.sent == 1
    (after,) = alarm.raised_after
    assert after < timedelta(seconds=2 * policy.outcome_alarm_seconds)  # not four hours later
