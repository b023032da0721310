"""An order whose send got an ambiguous answer (a 5xx) near its window's end, on a venue that
fences its re-sends (``FencesResends``), and that the venue never took: once a lookup made after
the request's receive window has passed says ``NOT_FOUND``, it provably never will be an order.
Past the deadline it is recorded ``rejected`` (not sent) and the slice closes; before, the order
was looked up forever and its execution never ended (seen in the chaos runs under load).
Never a re-send past the deadline, and never given up before the fence has settled."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import structlog

from genesis.clock import VirtualClock
from genesis.domain import events as ev
from genesis.domain.orders import OrderReport, OrderRequest, OrderStatus, Side
from genesis.domain.state import ExecutionState
from genesis.engine.venue_calls import WINDOW_ENDED_REASON, RetryPolicy, VenueCaller, VenueUnavailable
from genesis.venue.base import DuplicateOrderError, UnknownOutcomeError
from tests.test_slice_executor_ports import NOW, QTY
from tests.test_venue_contract import order
from tests.test_window_deadline import END, RUN_START, run_five_minutes, run_the_slice

SETTLES_AFTER = timedelta(seconds=6)  # a request's recvWindow + clock margin
MAX_LOOKUPS = 50  # far more than a settled answer needs: more means the order is looked up forever
CID = "g0123456789-00000000e1e1-0-0"


class NeverTaken:
    """A venue stamping its requests (``FencesResends``: a request can no longer be accepted
    ``SETTLES_AFTER`` after it was sent) that answers every order request from ``from_`` on
    (None: the start) with a 503 (or ``-2010 duplicate`` when ``claims_duplicate``) and never
    takes it: its lookups say ``NOT_FOUND``. Earlier orders go to ``inner``. Records every
    refused send, every settle and the lookups of each refused id (bounded)."""

    name = "never-taken"

    def __init__(self, inner, clock: VirtualClock, claims_duplicate: bool = False,  # type: ignore[no-untyped-def]
                 from_: datetime | None = None):
        self.inner, self.clock, self.claims_duplicate, self.from_ = inner, clock, claims_duplicate, from_
        self.sent_at: list[tuple[str, datetime]] = []
        self.settled_at: list[datetime] = []
        self.lookups: dict[str, int] = {}

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def request_clock_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def settle_sends(self, client_order_id: str, sent_by_ms: int | None = None) -> None:
        sends = [at for cid, at in self.sent_at if cid == client_order_id]
        if sends:
            await self.clock.sleep_until(max(sends) + SETTLES_AFTER)
        self.settled_at.append(self.clock.now())

    async def place_order(self, request: OrderRequest) -> OrderReport:
        if self.from_ is not None and self.clock.now() < self.from_:
            return await self.inner.place_order(request)
        self.sent_at.append((request.client_order_id, self.clock.now()))
        if self.claims_duplicate:
            raise DuplicateOrderError("-2010 Duplicate order sent.")
        raise UnknownOutcomeError("HTTP 503 Service Unavailable")

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        if client_order_id not in {cid for cid, _ in self.sent_at}:
            return await self.inner.fetch_order(symbol, client_order_id)
        self.lookups[client_order_id] = looked = self.lookups.get(client_order_id, 0) + 1
        assert looked <= MAX_LOOKUPS, f"{client_order_id}: a settled NOT_FOUND is looked up forever"
        return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, Decimal(0))


async def test_a_5xx_near_the_window_end_never_taken_is_closed_not_sent_and_the_slice_closes() -> None:
    log, venue = await run_the_slice(lambda v, clock: NeverTaken(v, clock))
    deadline = END - timedelta(seconds=1)  # ORDER_CUTOFF
    assert venue.sent_at and all(at < deadline for _, at in venue.sent_at)
    # every send settled (its receive window passed) before its id was sent again or given up
    sends = [at for _, at in venue.sent_at]
    assert len(venue.settled_at) >= len(sends)
    assert all(any(s >= at + SETTLES_AFTER for s in venue.settled_at) for at in sends)
    closed = log.of(ev.OrderClosed)
    assert [(c.status, c.reason) for c in closed] == [("rejected", WINDOW_ENDED_REASON)]
    assert closed[0].client_order_id == venue.sent_at[0][0]
    agg = await log.load()
    assert agg.slices[0].closed and agg.filled_qty == 0 and agg.remaining_qty == QTY
    assert agg.unresolved_orders() == []


async def test_a_send_answered_503_after_its_last_chance_is_given_up_only_once_settled() -> None:
    clock = VirtualClock(NOW)
    venue = NeverTaken(None, clock)
    caller = VenueCaller(venue, clock, RetryPolicy(), lambda: False, structlog.get_logger())  # type: ignore[arg-type]
    deadline = NOW + timedelta(milliseconds=500)
    async with clock.actor():
        report = await caller.place(order(CID, Side.BUY, "0.5"), NOW, deadline)
    assert (report.status, report.reason) == (OrderStatus.REJECTED, WINDOW_ENDED_REASON)
    assert venue.sent_at == [(CID, NOW)]  # once: never again past the deadline
    assert venue.settled_at == [NOW + SETTLES_AFTER] and clock.now() >= NOW + SETTLES_AFTER


async def test_a_venue_claiming_it_holds_the_order_is_looked_up_not_given_up() -> None:
    """``-2010 duplicate``: the venue says it holds the order, so a NOT_FOUND is not believed:
    looked up (never sent again) until a stop ends the waiting."""
    clock = VirtualClock(NOW)
    venue = NeverTaken(None, clock, claims_duplicate=True)
    caller = VenueCaller(venue, clock, RetryPolicy(), lambda: venue.lookups.get(CID, 0) >= 10,  # type: ignore[arg-type]
                         structlog.get_logger())
    async with clock.actor():
        with pytest.raises(VenueUnavailable):
            await caller.place(order(CID, Side.BUY, "0.5"), NOW, NOW + timedelta(milliseconds=500))
    assert venue.sent_at == [(CID, NOW)] and venue.lookups[CID] >= 10


async def test_a_run_whose_last_orders_are_never_taken_expires_with_them_closed_not_sent(db_path) -> None:  # type: ignore[no-untyped-def]
    # from the fourth minute on every order is answered 503 and never taken
    history, agg, never_taken = await run_five_minutes(
        db_path, lambda v, clock: NeverTaken(v, clock, from_=RUN_START + timedelta(minutes=4)))
    refused = {cid for cid, _ in never_taken.sent_at}
    assert refused
    closed = {e.client_order_id: (e.status, e.reason) for e in history if isinstance(e, ev.OrderClosed)}
    assert {closed.get(cid) for cid in refused} == {("rejected", WINDOW_ENDED_REASON)}
    assert agg.state is ExecutionState.EXPIRED and agg.unresolved_orders() == []
    (completed,) = [e for e in history if isinstance(e, ev.TwapCompleted)]
    assert completed.reason != "filled"  # expired, with its reason recorded
