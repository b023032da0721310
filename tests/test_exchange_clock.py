"""The order budget's windows are on the exchange's clock: live, the host's wall clock less
ccxt's measured ``timeDifference`` (measured at every ``load_markets`` for a venue the daemon
builds on the wall clock). A host clock off by more than the budget's guard no longer puts
orders in the wrong window. Fake offsets; no wall-clock timing."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from genesis.clock import VirtualClock, WallClock
from genesis.config import RuntimeConfig
from genesis.domain.orders import SendPriority
from genesis.engine.venues import build_ccxt_venue
from genesis.paper.faults import Faults
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.exchange_clock import ExchangeClock, exchange_time
from genesis.venue.order_budget import OrderBudget
from tests.test_paper_exchange import start
from tests.test_venue_contract import minute

WINDOW_END = datetime(2026, 1, 5, 12, 0, 10, tzinfo=timezone.utc)  # a 10 s window's end


class FakeExchange:
    """Just the ccxt exchange's ``options``, with a measured time difference."""

    def __init__(self, difference_ms: int | None):
        self.options = {} if difference_ms is None else {"timeDifference": difference_ms}

    async def close(self) -> None:
        pass


async def test_an_order_in_the_exchanges_next_window_is_counted_there_not_in_the_hosts() -> None:
    # the host's clock 0.5 s behind the exchange's (ccxt: timeDifference = host - exchange)
    host = VirtualClock(WINDOW_END - timedelta(seconds=0.4))
    budget = OrderBudget(limit=1, clock=ExchangeClock(host, lambda: -500))
    first = await budget.take(SendPriority.LEADING)  # host 9.6 s: the exchange's 10.1 s, next window
    assert first is not None
    first.done()
    host.advance_to(WINDOW_END + timedelta(seconds=0.3))  # host 10.3 s: the exchange's 10.8 s
    # the exchange's window holds the first order: no room until it ends (host 19.75 s)
    assert await budget.take(SendPriority.LEADING, within=5.0) is None
    on_host = OrderBudget(limit=1, clock=VirtualClock(WINDOW_END - timedelta(seconds=0.4)))
    (await on_host.take()).done()  # the host's own clock would have let a second one out
    on_host.clock.advance_to(WINDOW_END + timedelta(seconds=0.3))  # type: ignore[attr-defined]
    assert await on_host.take(within=5.0) is not None, "the mistake the exchange's clock avoids"


async def test_the_live_venues_budget_reads_the_exchanges_time_and_follows_a_resync() -> None:
    exchange = FakeExchange(-2_000)  # the host 2 s behind the exchange
    venue = CcxtVenue("binance", credentials=Credentials("exchange-clock-key-1", "s"), clock=WallClock(),
                      exchange=exchange)  # type: ignore[arg-type]
    assert abs(venue.budget.now() - (time.time() + 2.0)) < 0.5
    exchange.options["timeDifference"] = 3_000  # resynced (after a -1021): now 3 s ahead
    assert abs(venue.budget.now() - (time.time() - 3.0)) < 0.5
    await venue.close()


def test_a_paper_exchanges_clock_is_the_exchanges_time_already() -> None:
    clock = VirtualClock(WINDOW_END)
    assert exchange_time(clock, FakeExchange(5_000)) is clock
    assert ExchangeClock(clock, lambda: None).now() == WINDOW_END  # not measured yet: no shift


async def test_the_daemons_venue_measures_the_difference_and_takes_the_configured_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = await start(tmp_path, VirtualClock(minute(0.5)))
    server.set_faults(Faults(clock_skew_ms=4_000))  # the exchange's clock 4 s ahead of the host's
    monkeypatch.setenv("GENESIS_API_KEY", "exchange-clock-key-2")
    monkeypatch.setenv("GENESIS_API_SECRET", "exchange-clock-secret")
    config = RuntimeConfig.model_validate({"ccxt": {"order_budget": {
        "limit": 47, "window_seconds": 10, "following_share": 0.3, "guard_seconds": 0.5,
        "daily_limit": 150_000, "daily_margin": 500}}})
    venue = build_ccxt_venue("binance", server.url, WallClock(), config=config)
    try:
        await venue.instruments()  # load_markets: measures the time difference
        assert abs(venue.ex.options["timeDifference"] + 4_000) < 1_000
        budget = venue.budget
        assert abs(budget.now() - (time.time() + 4.0)) < 1.0
        assert (budget.limit, budget.following_share, budget.guard_seconds) == (47, 0.3, 0.5)
        assert (budget.daily.limit, budget.daily.margin) == (150_000, 500)
        assert venue.weight.order_limit_1d == 150_000  # genesis status shows the configured limit
    finally:
        await venue.close()
        await server.stop()
