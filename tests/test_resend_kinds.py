"""What a client order id sent again after an unknown outcome may rely on, per kind of venue
(``genesis.engine.venue_calls``): the simulated venue refuses every id it has seen
(``RefusesSeenClientIds``); ccxt on a Binance-family exchange stamps its requests, which the
exchange refuses once old (``FencesResends``); ccxt on any other exchange does neither, so an
order of unknown outcome is only looked up there: never sent again, and ``NOT_FOUND`` never
taken as "never accepted". Before, every ``CcxtVenue`` claimed ``FencesResends`` though only
Binance is sent the stamp: on another exchange a late request could execute beside a re-send,
and an order past its deadline was recorded ``rejected`` while it could still fill."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import ccxt.async_support as ccxt
import pytest
import structlog

from genesis.clock import VirtualClock
from genesis.domain.orders import OrderReport, OrderRequest, OrderStatus, Side
from genesis.engine.venue_calls import RetryPolicy, VenueCaller, VenueUnavailable
from genesis.observability.venue_watch import WatchedVenue
from genesis.venue.base import FencesResends, RefusesSeenClientIds, UnknownOutcomeError, capable
from genesis.venue import ccxt_venue as ccxt_venue_module
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.order_budget import OrderBudget
from genesis.venue.send_fence import SendWindow
from tests.market import flat, series, venue as sim_venue
from tests.test_slice_executor_ports import NOW
from tests.test_venue_contract import order

CID = "g0123456789-00000000e1e1-0-0"
SHORT_WINDOW = SendWindow(recv_window_ms=1, clock_margin_ms=0)  # an old fence's wait, made short


def ccxt_on(exchange_id: str, clock: VirtualClock) -> CcxtVenue:
    """A ``CcxtVenue`` on ccxt's own client for ``exchange_id``, offline (nothing is loaded)."""
    exchange = getattr(ccxt, exchange_id)({"enableRateLimit": False})
    return CcxtVenue(exchange_id, exchange=exchange, clock=clock, budget=OrderBudget(clock=clock),
                     send_window=SHORT_WINDOW)


@pytest.mark.parametrize("exchange_id, fences", [("binance", True), ("binanceus", True),
                                                 ("okx", False), ("kraken", False)])
async def test_only_a_ccxt_venue_on_a_binance_family_exchange_fences_its_resends(exchange_id: str,
                                                                                 fences: bool) -> None:
    venue = ccxt_on(exchange_id, VirtualClock(NOW))
    try:
        watched = WatchedVenue(venue, [])  # type: ignore[arg-type]  # as the daemon wraps it
        assert (capable(venue, FencesResends) is venue) is fences
        assert (capable(watched, FencesResends) is watched) is fences
        assert capable(venue, RefusesSeenClientIds) is None and capable(watched, RefusesSeenClientIds) is None
    finally:
        await venue.close()


def test_the_simulated_venue_says_it_refuses_every_id_it_has_seen() -> None:
    clock = VirtualClock(NOW)
    sim = sim_venue(clock, series(1, flat("100000"), flat("1")))
    assert capable(sim, RefusesSeenClientIds) is sim and capable(sim, FencesResends) is None
    watched = WatchedVenue(sim, [])
    assert capable(watched, RefusesSeenClientIds) is watched


class Recorder:
    """A logger recording its warnings (the module's logger may be cached by an earlier test)."""

    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []
        self.bound: dict[str, Any] = {}

    def bind(self, **context: Any) -> "Recorder":
        self.bound = context
        return self

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append((event, {**self.bound, **fields}))


def test_a_ccxt_venue_on_another_exchange_logs_that_unknown_outcomes_are_only_looked_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``genesis run --venue ccxt:okx`` says at start."""
    recorder = Recorder()
    monkeypatch.setattr(ccxt_venue_module, "log", recorder)
    clock = VirtualClock(NOW)
    for exchange_id in ("okx", "binance"):
        CcxtVenue(exchange_id, exchange=object(), clock=clock, budget=OrderBudget(clock=clock))  # type: ignore[arg-type]
    assert [fields["venue"] for event, fields in recorder.warnings
            if event == "unknown_outcomes_resolved_by_lookup_only"] == ["ccxt:okx"]


class TakesLate:
    """A venue of neither kind (most exchanges: an id is refused among open orders only, no
    stamp): its first order request is answered 503 but reaches the matching engine late, shown
    from the ``shows_at``-th lookup on. A re-send under the id (the first filled) would be a
    second order."""

    name = "takes-late"

    def __init__(self, shows_at: int):
        self.shows_at, self.sent, self.lookups = shows_at, 0, 0

    async def place_order(self, request: OrderRequest) -> OrderReport:
        self.sent += 1
        if self.sent == 1:
            raise UnknownOutcomeError("HTTP 503 Service Unavailable")
        return OrderReport(request.client_order_id, str(self.sent), OrderStatus.FILLED, request.qty)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        self.lookups += 1
        if self.lookups >= self.shows_at:
            return OrderReport(client_order_id, "1", OrderStatus.FILLED, D("0.5"))
        return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, D(0))


def caller_of(venue: Any, clock: VirtualClock, should_stop: Any = lambda: False,
              alarm: Any = None) -> VenueCaller:
    return VenueCaller(venue, clock, RetryPolicy(outcome_alarm_seconds=5.0), should_stop,
                       structlog.get_logger(), alarm=alarm)


async def test_an_unknown_outcome_on_a_venue_of_neither_kind_is_looked_up_until_shown_never_sent_again() -> None:
    clock = VirtualClock(NOW)
    venue = TakesLate(shows_at=6)
    async with clock.actor():
        report = await caller_of(venue, clock).place(order(CID, Side.BUY, "0.5"), NOW)
    assert (report.status, report.venue_order_id, report.filled_qty) == (OrderStatus.FILLED, "1", D("0.5"))
    assert venue.sent == 1 and venue.lookups == 6


async def test_a_settled_lookup_on_a_venue_of_neither_kind_never_answers_not_found() -> None:
    """A restart's recovery sends an intent again when its settled lookup says ``NOT_FOUND``:
    on such a venue that proves nothing, so the lookups go on until the order is shown."""
    clock = VirtualClock(NOW)
    venue = TakesLate(shows_at=4)
    async with clock.actor():
        report = await caller_of(venue, clock).settled_lookup(order(CID, Side.BUY, "0.5"), NOW)
    assert report.status is OrderStatus.FILLED and venue.lookups == 4 and venue.sent == 0


class Alarm:
    def __init__(self) -> None:
        self.raised: list[str] = []

    async def raise_alarm(self, request: OrderRequest, past_deadline_seconds: float, lookups: int,
                          lookup_every_seconds: float) -> None:
        self.raised.append(request.client_order_id)

    async def clear(self, request: OrderRequest) -> None:
        raise AssertionError("never shown")


async def test_a_5xx_on_an_okx_venue_is_never_sent_again_nor_recorded_rejected_past_its_deadline() -> None:
    """ccxt's own okx client: the order request answered 503, every lookup ``NOT_FOUND``.
    Before, the venue claimed to fence its re-sends: past the deadline the order was recorded
    ``rejected`` (never accepted), though okx was sent no stamp and could still fill it."""
    clock = VirtualClock(NOW)
    venue = ccxt_on("okx", clock)
    creates, lookups = [], []

    async def create_order(*args: Any) -> dict[str, Any]:
        creates.append(args[-1])
        raise ccxt.ExchangeNotAvailable("okx 503 Service Unavailable")

    async def fetch_order(*args: Any) -> dict[str, Any]:
        lookups.append(args)
        raise ccxt.OrderNotFound("okx order does not exist")

    venue.ex.create_order, venue.ex.fetch_order = create_order, fetch_order  # type: ignore[method-assign]
    alarm = Alarm()
    caller = caller_of(venue, clock, lambda: len(lookups) >= 12, alarm)
    try:
        async with clock.actor():
            with pytest.raises(VenueUnavailable):  # looked up until the stop; never given up
                await caller.place(order(CID, Side.BUY, "0.5"), NOW, NOW + timedelta(milliseconds=500))
    finally:
        await venue.close()
    assert [params["clientOrderId"] for params in creates] == [CID]  # sent once, no stamp
    assert "timestamp" not in creates[0] and "recvWindow" not in creates[0]
    assert alarm.raised == [CID] and clock.now() > NOW + timedelta(seconds=5)
