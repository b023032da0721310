"""The account's order budget against the paper exchange (Binance's orders-per-10-s limit
enforced on its clock), through the unmodified ccxt client: a burst never meets -1015 and no
exchange window counts more than the limit; orders another client sent on the account are
learnt from the answers' ``X-MBX-ORDER-COUNT-10S``; an order refused with -1015 (not placed)
goes once, in a later window, or is refused unsent at its deadline. On a virtual clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from genesis.clock import VirtualClock
from genesis.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from genesis.paper.limits import Limits
from genesis.paper.server import PaperServer
from genesis.venue.base import PermanentVenueError
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.order_budget import SEND_DEADLINE_REASON, OrderBudget
from tests.test_paper_exchange import start
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, minute

LIMIT = 20  # the paper exchange's new orders per 10 s in these tests
BUDGET = 18  # the budget's, two under it
START = minute(0.5) + timedelta(seconds=2)  # 2 s into a window


def resting_buy(cid: str, send_by_seconds: float | None = None) -> OrderRequest:
    send_by = None if send_by_seconds is None else START + timedelta(seconds=send_by_seconds)
    return OrderRequest(cid, BTC, Side.BUY, OrderType.LIMIT, D("0.5"), D("95"), send_by=send_by)


async def exchange_and_venue(tmp_path: Path) -> tuple[PaperServer, CcxtVenue, VirtualClock]:
    clock = VirtualClock(START)
    server = await start(tmp_path, clock, limits=Limits(orders_per_10s=LIMIT))
    return server, await venue_on(server, clock), clock


async def venue_on(server: PaperServer, clock: VirtualClock) -> CcxtVenue:
    """A venue with its own budget: another process on the same account has its own."""
    venue = CcxtVenue("binance", credentials=Credentials(KEY, SECRET), exchange_url=server.url,
                      clock=clock, budget=OrderBudget(limit=BUDGET, clock=clock), config=FAST)
    await venue.instruments()
    return venue


async def place_all(clock: VirtualClock, venue: CcxtVenue, requests: list[OrderRequest]) -> list[object]:
    """Every request placed at once, each by a runner (an actor on the clock)."""
    async def one(request: OrderRequest) -> object:
        async with clock.actor():
            try:
                return await venue.place_order(request)
            except PermanentVenueError as exc:
                return exc
    return list(await asyncio.gather(*(one(r) for r in requests)))


def order_posts(server: PaperServer) -> list[tuple[int, str, int]]:
    """(exchange ms, client order id, HTTP status) of every ``POST /api/v3/order``."""
    return list(server.exchange.store.db.execute(
        "SELECT sim_ms, client_order_id, http_status FROM requests "
        "WHERE method = 'POST' AND path = '/api/v3/order' ORDER BY id"))


def placed(server: PaperServer) -> Counter[str]:
    return Counter(o.client_order_id for o in server.exchange.store.all_orders())


@pytest.fixture
async def paper(tmp_path: Path):  # type: ignore[no-untyped-def]
    server, venue, clock = await exchange_and_venue(tmp_path)
    others: list[CcxtVenue] = []
    try:
        yield server, venue, clock, others
    finally:
        for v in (venue, *others):
            await v.close()
        await server.stop()


async def test_a_burst_never_meets_1015_and_no_window_counts_more_than_the_limit(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock, _ = paper
    reports = await place_all(clock, venue, [resting_buy(f"gburst{i:03d}-0-0") for i in range(50)])
    assert all(getattr(r, "status", None) is OrderStatus.OPEN for r in reports)
    posts = order_posts(server)
    assert [status for _, _, status in posts] == [200] * 50, "no 429"
    assert placed(server) == Counter({f"gburst{i:03d}-0-0": 1 for i in range(50)})
    per_window = Counter(ms // 10_000 for ms, _, _ in posts)
    assert max(per_window.values()) <= BUDGET and len(per_window) == 3


async def test_orders_another_client_sent_are_learnt_from_the_exchanges_count(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock, others = paper
    others.append(other := await venue_on(server, clock))  # another process, its own budget
    await place_all(clock, other, [resting_buy(f"gother{i:03d}-0-0") for i in range(12)])
    await place_all(clock, venue, [resting_buy("gfirst000-0-0")])  # its answer: 13 in the window
    assert venue.budget.available() == BUDGET - 13
    reports = await place_all(clock, venue, [resting_buy(f"gmine{i:03d}-0-0") for i in range(10)])
    assert all(getattr(r, "status", None) is OrderStatus.OPEN for r in reports)
    posts = order_posts(server)
    assert {status for _, _, status in posts} == {200}, "no 429"
    per_window = Counter(ms // 10_000 for ms, _, _ in posts)
    assert max(per_window.values()) <= BUDGET


async def test_an_order_refused_for_the_windows_count_goes_once_in_a_later_window(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock, others = paper
    others.append(other := await venue_on(server, clock))
    other.budget = OrderBudget(limit=LIMIT, clock=clock)  # a client that fills the window
    await place_all(clock, other, [resting_buy(f"gother{i:03d}-0-0") for i in range(LIMIT)])
    window = START.timestamp() // 10
    mine = [resting_buy(f"gmine{i:03d}-0-0") for i in range(3)]
    late = resting_buy("glate000-0-0", send_by_seconds=5.0)  # its window ends before the next
    reports = await place_all(clock, venue, [*mine, late])
    assert all(getattr(r, "status", None) is OrderStatus.OPEN for r in reports[:3])
    assert isinstance(reports[3], PermanentVenueError) and str(reports[3]) == SEND_DEADLINE_REASON
    posts = [(ms, cid, status) for ms, cid, status in order_posts(server) if not cid.startswith("gother")]
    for request in mine:  # refused (not placed), then placed once, in a later window
        tries = [(ms // 10_000, status) for ms, cid, status in posts if cid == request.client_order_id]
        assert [status for _, status in tries] == [429, 200]
        assert tries[1][0] > tries[0][0] == window
    assert placed(server) == Counter({**{f"gother{i:03d}-0-0": 1 for i in range(LIMIT)},
                                      **{r.client_order_id: 1 for r in mine}}), "the late one never"


async def test_an_orders_count_comes_from_its_own_answer_not_the_last_one_the_client_read(tmp_path: Path) -> None:
    """Orders in flight together share one ccxt client: its ``last_response_headers`` may be
    another answer's, from another window, by the time an order's answer is read. Such a count
    (here 19 of 20, as if another window's) must not fill this order's window."""
    server, venue, clock = await exchange_and_venue(tmp_path)
    real_create = venue.ex.create_order

    async def create_then_another_answer(*args, **kwargs):  # type: ignore[no-untyped-def]
        order = await real_create(*args, **kwargs)
        venue.ex.last_response_headers = {"X-MBX-ORDER-COUNT-10S": "19"}  # another answer, read last
        return order

    venue.ex.create_order = create_then_another_answer
    try:
        [report] = await place_all(clock, venue, [resting_buy("own-answer-1")])
        assert getattr(report, "status", None) is OrderStatus.OPEN
        assert venue.budget.available() == BUDGET - 1  # the order's own answer: 1 in its window
    finally:
        await venue.close()
        await server.stop()
