"""The account's daily order limit against the paper exchange (Binance's orders per UTC day,
enforced on its clock), through the unmodified ccxt client: the day's count is learnt from the
answers' ``X-MBX-ORDER-COUNT-1D`` (orders another client sent included); at the daily limit less
the margin a new order is refused unsent, with a reason naming the limit, the count and when
the day rolls, and recorded as rejected; the exchange never answers -1015; the next UTC day
lets orders out again. On a virtual clock."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
import structlog

from genesis.clock import VirtualClock
from genesis.domain.orders import OrderStatus
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.observability.venue_watch import read_venue_usage
from genesis.paper.limits import Limits
from genesis.paper.server import PaperServer
from genesis.venue.base import PermanentVenueError, RetryableVenueError
from genesis.venue.budget_settings import BudgetSettings
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.daily_orders import DailyOrderLimitReached, DailyOrders
from genesis.venue.order_budget import OrderBudget
from genesis.venue.candles import CandleSeries
from genesis.venue.base import Candle
from tests.test_order_budget_exchange import order_posts, place_all, placed, resting_buy
from tests.test_paper_exchange import start
from tests.test_venue_contract import BTC, FAST, FLAT, KEY, SECRET

DAY_LIMIT = 12  # the paper exchange's new orders per day in these tests
MARGIN = 2  # the budget lets out 10 a day
NEXT_DAY = datetime(2025, 1, 1, tzinfo=timezone.utc)
START = NEXT_DAY - timedelta(minutes=4, seconds=28)  # the last minutes of 2024-12-31


def day_boundary_series() -> dict[str, CandleSeries]:
    """Ten quiet minutes across the UTC day's end."""
    first = NEXT_DAY - timedelta(minutes=5)
    return {BTC: CandleSeries.from_candles(
        [Candle(first + timedelta(minutes=i), *(D(x) for x in FLAT)) for i in range(10)], symbol=BTC)}


def venue_on(server: PaperServer, clock: VirtualClock, settings: BudgetSettings) -> CcxtVenue:
    """A venue with the account's budget on ``clock`` (the registry keys budgets by clock)."""
    return CcxtVenue("binance", credentials=Credentials(KEY, SECRET), exchange_url=server.url,
                     clock=clock, config=FAST, budget_settings=settings)


@pytest.fixture
async def paper(tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = VirtualClock(START)
    server = await start(tmp_path, clock, limits=Limits(orders_per_10s=100, orders_per_day=DAY_LIMIT),
                         series=day_boundary_series())
    venue = venue_on(server, clock, BudgetSettings(limit=50, daily_limit=DAY_LIMIT, daily_margin=MARGIN))
    # another process on the account: its own budget
    other = CcxtVenue("binance", credentials=Credentials(KEY, SECRET), exchange_url=server.url,
                      clock=clock, config=FAST, budget=OrderBudget(limit=50, clock=clock))
    await venue.instruments()
    await other.instruments()
    try:
        yield server, venue, other, clock
    finally:
        await venue.close()
        await other.close()
        await server.stop()


async def test_at_the_daily_limit_less_the_margin_orders_are_refused_unsent_until_the_day_rolls(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, other, clock = paper
    await place_all(clock, other, [resting_buy(f"gother{i:03d}-0-0") for i in range(6)])
    await place_all(clock, venue, [resting_buy("gfirst000-0-0")])  # its answer: 7 today
    assert venue.budget.daily.count == 7
    reports = await place_all(clock, venue, [resting_buy(f"gmine{i:03d}-0-0") for i in range(5)])
    opened = [r for r in reports if getattr(r, "status", None) is OrderStatus.OPEN]
    refused = [r for r in reports if isinstance(r, PermanentVenueError)]
    assert len(opened) == 3 and len(refused) == 2, "10 of the day's 12 (margin 2) let out"
    for exc in refused:
        text = str(exc)
        assert "daily order limit" in text and "10 new orders today" in text
        assert f"limit {DAY_LIMIT}" in text and "2025-01-01T00:00:00Z" in text
    assert {status for _, _, status in order_posts(server)} == {200}, "the exchange never answered -1015"
    assert sum(placed(server).values()) == 10 and max(placed(server).values()) == 1
    assert venue.budget.daily.refused == 2
    usage = read_venue_usage(venue)
    assert usage.orders_refused_daily_limit == 2 and usage.order_count_1d == 10  # metrics, genesis status
    assert any(m.name == "genesis_orders_refused_daily_limit" and m.samples[0].value == 2 for m in usage.metrics())

    clock.advance_to(NEXT_DAY + timedelta(seconds=5))  # the UTC day rolls: the count starts again
    [report] = await place_all(clock, venue, [resting_buy("gnextday00-0-0")])
    assert getattr(report, "status", None) is OrderStatus.OPEN
    assert venue.budget.daily.count == 1


async def test_an_order_refused_for_the_daily_limit_is_a_rejection_with_the_reason(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, other, clock = paper
    await place_all(clock, other, [resting_buy(f"gother{i:03d}-0-0") for i in range(10)])
    calls = VenueCaller(venue, clock, RetryPolicy(), lambda: False, structlog.get_logger())
    async with clock.actor():
        report = await calls.place(resting_buy("grefused00-0-0"), clock.now(), None)
    # the answers to the other process's orders were not seen here: the exchange's count comes
    # with this venue's first answer; the first order goes, its answer teaches the count
    assert report.status is OrderStatus.OPEN and venue.budget.daily.count == 11
    async with clock.actor():
        report = await calls.place(resting_buy("grefused01-0-0"), clock.now(), None)
    assert report.status is OrderStatus.REJECTED and report.venue_order_id is None
    assert "daily order limit" in (report.reason or "") and "11 new orders today" in (report.reason or "")
    assert "grefused01-0-0" not in placed(server), "never sent"
    assert {status for _, _, status in order_posts(server)} == {200}


async def test_after_the_exchanges_1015_for_the_day_the_next_orders_are_refused_unsent(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, other, clock = paper
    venue.budget.daily = DailyOrders(venue.budget.now, limit=1_000, margin=0)  # set above the account's
    await place_all(clock, other, [resting_buy(f"gother{i:03d}-0-0") for i in range(DAY_LIMIT)])
    with pytest.raises(RetryableVenueError, match="1 DAY"):  # the exchange's -1015: not placed
        await venue.place_order(resting_buy("gfirst000-0-0"))
    [second] = await place_all(clock, venue, [resting_buy("gsecond00-0-0")])
    assert isinstance(second, PermanentVenueError) and "daily order limit is reached" in str(second)
    mine = [(cid, status) for _, cid, status in order_posts(server) if not cid.startswith("gother")]
    assert mine == [("gfirst000-0-0", 429)], "the second never went"


def test_the_daily_count_keeps_the_highest_heard_and_starts_again_each_utc_day() -> None:
    now = [START.timestamp()]
    daily = DailyOrders(lambda: now[0], limit=5, margin=1)
    daily.claim()
    daily.observe(3)  # the exchange counted 3 (two by another client)
    daily.observe(2)  # an older answer never lowers it
    assert daily.count == 3
    daily.claim()
    with pytest.raises(DailyOrderLimitReached, match="4 new orders today"):
        daily.claim()
    daily.observe(7, at_seconds=START.timestamp() - 86_400)  # yesterday's answer: not today's
    assert daily.count == 4
    now[0] = NEXT_DAY.timestamp()
    daily.claim()
    assert daily.count == 1


def test_daily_settings_must_leave_room() -> None:
    with pytest.raises(ValueError, match="margin < limit"):
        DailyOrders(lambda: 0.0, limit=10, margin=10)


async def test_an_order_refused_unsent_at_its_deadline_is_not_one_of_the_days_orders() -> None:
    from genesis.clock import VirtualClock
    from genesis.domain.orders import OrderRequest, OrderType, Side
    from genesis.venue.base import PermanentVenueError
    from genesis.venue.ccxt_order_send import send_within_budget
    from genesis.venue.order_budget import SEND_DEADLINE_REASON, OrderBudget

    clock = VirtualClock(START)
    budget = OrderBudget(limit=1, clock=clock)
    budget.daily = DailyOrders(budget.now, limit=10, margin=0)
    held = await budget.take()  # the window's one slot: the next order's deadline comes first
    late = OrderRequest("late-1", "BTC/USDT", Side.BUY, OrderType.LIMIT, D("0.1"), D("95"),
                        send_by=START + timedelta(seconds=1))

    async def never_called():  # type: ignore[no-untyped-def]
        raise AssertionError("not sent")

    with pytest.raises(PermanentVenueError, match="deadline"):
        async with clock.actor():
            await send_within_budget(late, never_called, budget=budget, clock=clock, headers=lambda: None,
                                     mapped=lambda exc, _: exc, log=structlog.get_logger())
    assert budget.daily.count == 0 and SEND_DEADLINE_REASON
    assert held is not None
