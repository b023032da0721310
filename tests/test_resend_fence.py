"""A client order id is sent again only once the earlier request under it can no longer be
accepted (``genesis.venue.send_fence``): Binance takes a filled order's id again, so a second
POST is not refused as a duplicate, and a 5xx leaves the first request's fate open until its
``timestamp + recvWindow`` has passed (the exchange checks it again before matching).

Against the paper exchange through the unmodified ccxt client: the ``p_delay_order`` fault
answers 503 at once and lets the order reach the matching engine later, after the engine's
first lookup said it does not exist. Outcomes are asserted, never timings: whether the late
request executes (and is adopted) or is refused for its recvWindow (and the id re-sent), one
order executes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
import structlog

from genesis.chaos.verdict import Verdict, _orders
from genesis.clock import VirtualClock
from genesis.config import ConfigError, parse_config
from genesis.domain import events as ev
from genesis.domain.orders import OrderReport, OrderRequest, OrderStatus, Side
from genesis.engine.lease_keeper import LeaseKeeper
from genesis.engine.recovery import reconcile
from genesis.engine.slice_executor import RoutingSettings, SliceExecutor
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.domain.risk import RiskEngine, RiskLimits
from genesis.engine.positions import PositionBook
from genesis.observability.venue_watch import WatchedVenue
from genesis.paper.faults import Faults
from genesis.paper.store import OrderRow, PaperStore
from genesis.venue.base import RetryableVenueError, UnknownOutcomeError
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.send_fence import LeaseLapsed, SendStamps, SendWindow
from tests.migrated import migrated_sqlite
from tests.test_fault_matrix import (CID, SEND_WINDOW, ccxt_venue, exchange_orders, heal_after, order_posts, place,
                                     start_paper)
from tests.test_slice_executor_ports import EventLog, FixedSize, no_benchmark
from tests.test_venue_contract import BTC, minute, order

EID = "00000000e1e1"
COID = f"g0123456789-{EID}-0-0"
LATE = {"p_delay_order": 1.0, "orders_only": True}


# ---------------------------------------------------------------------- unknown outcome, one process
@pytest.mark.parametrize("delay_seconds", [0.15, 1.0], ids=["executes-late", "refused-for-its-recvWindow"])
async def test_a_request_that_executes_after_the_lookup_is_adopted_never_sent_twice(
        tmp_path: Path, delay_seconds: float) -> None:
    """503 for a market order that reaches the matching engine later: the first lookup says
    NOT_FOUND. Before, the id was re-sent at once and the late request, its id's order filled
    by then, executed as a second order. Now: one order, its fills the quantity."""
    clock = VirtualClock(minute(0.5))
    server = await start_paper(tmp_path, clock)
    venue = ccxt_venue(server.url, clock)
    await venue.instruments()
    try:
        server.set_faults(Faults(delay_seconds=delay_seconds, **LATE))
        report = await place(clock, venue, order(CID, Side.BUY, "0.5"), heal_after(server, "delay", 1))
        await server.app.settle_delayed()
        assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.5"))
        assert exchange_orders(server) == [(CID, D("0.5"))]  # one order under the id, no second
        late = [(s, code) for _, s, code, fault in order_posts(server) if fault == "delayed"]
        # executed (and adopted), or refused past its recvWindow (300 ms here) and the id sent again
        assert late in ([(200, None)], [(400, -1021)]) if delay_seconds < 0.3 else late == [(400, -1021)]
    finally:
        await venue.close()
        await server.stop()


# ---------------------------------------------------------------------- failover
def intended(at: datetime, window: timedelta = timedelta(minutes=10)) -> list[ev.Event]:
    return [ev.ExecutionSubmitted(EID, at, "r1", BTC, "buy", D("0.5"), "twap", 600),
            ev.ExecutionStarted(EID, at, D("100"), at + window, (ev.PlannedSlice(0, at, D("0.5")),)),
            ev.OrderIntended(EID, at, 0, 0, COID, "market", "gtc", D("0.5"), None, D("100"))]


@pytest.mark.parametrize("window", [timedelta(minutes=10), timedelta(milliseconds=500)],
                         ids=["window-open", "orders-closed"])
async def test_a_new_owner_waits_out_the_old_owners_late_send_and_adopts_it(tmp_path: Path, window: timedelta) -> None:
    """The old owner recorded its intent and sent it; the request is held up on its way (a
    paused process, a slow network) and the old owner is gone. The new owner's recovery finds
    nothing under the id; before, it sent the order again at once and the late request
    executed as well (or, its window closing, closed the intent unfilled while the late request
    executed untracked). Now it looks again once the late request can no longer be accepted."""
    clock = VirtualClock(minute(0.5))
    server = await start_paper(tmp_path, clock)
    old, new = ccxt_venue(server.url, clock), ccxt_venue(server.url, clock)
    await old.instruments()
    await new.instruments()
    log = EventLog(intended(clock.now(), window))
    try:
        server.set_faults(Faults(delay_seconds=0.15, **LATE))
        with pytest.raises(UnknownOutcomeError):
            await old.place_order(order(COID, Side.BUY, "0.5"))
        server.set_faults(Faults())
        calls = VenueCaller(new, clock, RetryPolicy(), lambda: False, structlog.get_logger())
        executor = recovery_executor(log, clock, calls)
        async with clock.actor():
            await reconcile(await log.load(), venue=calls, slices=executor, load=log.load, append=log.append,
                            replan=no_replan, clock=clock, log=structlog.get_logger())
        await server.app.settle_delayed()
        assert exchange_orders(server) == [(COID, D("0.5"))]
        [closed] = log.of(ev.OrderClosed)
        assert (closed.client_order_id, closed.status) == (COID, "filled")
        assert sum(f.qty for f in log.of(ev.FillRecorded)) == D("0.5")
    finally:
        await old.close()
        await new.close()
        await server.stop()


async def test_a_process_whose_lease_lapsed_sends_nothing(tmp_path: Path) -> None:
    """The old owner continued after its lease expired (by its own reckoning): it stamps no
    request, so nothing it sends can reach the exchange after the new owner's wait."""
    clock = VirtualClock(minute(0.5))
    server = await start_paper(tmp_path, clock)
    venue = ccxt_venue(server.url, clock)
    venue.stamps.may_send = lambda: False
    await venue.instruments()
    try:
        with pytest.raises(LeaseLapsed):
            await venue.place_order(order(CID, Side.BUY, "0.5"))
        assert order_posts(server) == [] and exchange_orders(server) == []
    finally:
        await venue.close()
        await server.stop()


def recovery_executor(log: EventLog, clock: VirtualClock, calls: VenueCaller) -> SliceExecutor:
    async def namespace() -> str:
        return "0123456789"

    return SliceExecutor(EID, algorithm=FixedSize(), venue=calls, append=log.append, namespace=namespace,
                         clock=clock, instrument=SIM_INSTRUMENTS[BTC], risk=RiskEngine(RiskLimits()),
                         positions=PositionBook(), benchmark=no_benchmark, log=structlog.get_logger(),
                         routing=RoutingSettings(maker_first=False, maker_timeout_seconds=5.0))


async def no_replan(agg, now, end_at, reason):  # type: ignore[no-untyped-def]
    raise AssertionError("nothing was missed: no re-plan")


# ---------------------------------------------------------------------- the timing rule
class MsClock:
    """A request clock in milliseconds whose sleeps advance it (no real time passes)."""

    def __init__(self, now_ms: int):
        self.ms, self.slept = now_ms, []

    def now(self) -> int:
        return self.ms

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ms += round(seconds * 1000)


async def test_settle_returns_once_the_last_stamp_plus_window_and_margin_has_passed() -> None:
    ms = MsClock(1_000)
    stamps = SendStamps(SendWindow(recv_window_ms=5_000, clock_margin_ms=1_000), ms.now, sleep=ms.sleep)
    await stamps.settle("a")  # nothing sent under it: at once
    assert ms.slept == [] and stamps.settled_after_ms("a") is None
    assert stamps.stamp("a") == 1_000
    ms.ms = 3_000
    stamps.stamp("a")  # a later attempt moves the fence
    assert stamps.settled_after_ms("a") == 9_000
    await stamps.settle("a")
    assert ms.ms > 9_000
    assert stamps.settled_after_ms("b", sent_by_ms=ms.ms) == ms.ms + 6_000  # another process's bound
    stamps.stamp("b")  # "a" can no longer be accepted: forgotten
    assert stamps.settled_after_ms("a") is None and stamps.settled_after_ms("b") == ms.ms + 6_000


async def test_settle_waits_for_another_processes_bound_and_a_lapsed_lease_stamps_nothing() -> None:
    ms = MsClock(10_000)
    held = [True]
    stamps = SendStamps(SendWindow(recv_window_ms=300, clock_margin_ms=100), ms.now, lambda: held[0], ms.sleep)
    await stamps.settle("x", sent_by_ms=10_000)
    assert ms.ms > 10_400
    held[0] = False
    with pytest.raises(LeaseLapsed):
        stamps.stamp("y")
    assert stamps.settled_after_ms("y") is None


def test_the_window_is_validated_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="ccxt.recv_window_ms must be between 1 and 60000"):
        SendWindow(recv_window_ms=60_001)
    with pytest.raises(ValueError, match="ccxt.resend_clock_margin_ms"):
        SendWindow(clock_margin_ms=-1)


class LateVenue:
    """A venue stamping its requests whose first order request is answered as unknown but
    executes late: by the time its window has passed (``settle_sends``)."""

    name = "late"

    def __init__(self, clock: VirtualClock, stamps: bool = True):
        self.clock, self.sent, self.settled = clock, 0, []
        self.in_flight: OrderRequest | None = None
        self.executed: list[str] = []
        if stamps:
            self.request_clock_ms = lambda: int(clock.now().timestamp() * 1000)
            self.settle_sends = self._settle

    async def _settle(self, client_order_id: str, sent_by_ms: int | None = None) -> None:
        self.settled.append((client_order_id, sent_by_ms))
        await self.clock.sleep_until(self.clock.now() + timedelta(seconds=6))
        self._arrive()

    def _arrive(self) -> None:
        if self.in_flight is not None:
            self.executed.append(self.in_flight.client_order_id)
            self.in_flight = None

    async def place_order(self, request: OrderRequest) -> OrderReport:
        self.sent += 1
        if self.sent == 1:
            self.in_flight = request
            raise UnknownOutcomeError("HTTP 503")
        self._arrive()  # a plain venue: the late one lands before the re-send
        self.executed.append(request.client_order_id)
        return OrderReport(request.client_order_id, str(self.sent), OrderStatus.FILLED, request.qty)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        if client_order_id in self.executed:
            return OrderReport(client_order_id, "1", OrderStatus.FILLED, D("0.5"))
        return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, D(0))


async def test_after_an_unknown_outcome_the_id_is_looked_up_again_once_settled_never_sent_twice() -> None:
    clock = VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc))
    venue = LateVenue(clock)
    caller = VenueCaller(venue, clock, RetryPolicy(), lambda: False, structlog.get_logger())  # type: ignore[arg-type]
    async with clock.actor():
        report = await caller.place(order(CID, Side.BUY, "0.5"), clock.now())
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.5"))
    assert venue.sent == 1 and venue.executed == [CID] and venue.settled == [(CID, None)]


async def test_the_daemons_watched_venue_still_waits_out_the_window_before_a_re_send() -> None:
    """The daemon wraps its venue (``WatchedVenue``, forwarding through ``__getattr__``): the
    wrapper has the wrapped venue's capabilities. From Python 3.12 ``isinstance`` against the
    protocol alone no longer sees them, and the re-send went out at once."""
    clock = VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc))
    venue = LateVenue(clock)
    watched = WatchedVenue(venue, [])  # type: ignore[arg-type]
    caller = VenueCaller(watched, clock, RetryPolicy(), lambda: False, structlog.get_logger())  # type: ignore[arg-type]
    assert caller.sent_by_ms() == int(clock.now().timestamp() * 1000)
    async with clock.actor():
        report = await caller.place(order(CID, Side.BUY, "0.5"), clock.now())
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.5"))
    assert venue.sent == 1 and venue.executed == [CID] and venue.settled == [(CID, None)]


async def test_a_venue_that_refuses_every_seen_id_is_sent_again_without_a_wait() -> None:
    """The simulated venue refuses every id it has seen: no window to wait out."""
    clock = VirtualClock(datetime(2026, 1, 5, 12, tzinfo=timezone.utc))
    venue = LateVenue(clock, stamps=False)
    venue.refuses_seen_client_ids = True  # type: ignore[attr-defined]  # ``RefusesSeenClientIds``
    caller = VenueCaller(venue, clock, RetryPolicy(), lambda: False, structlog.get_logger())  # type: ignore[arg-type]
    async with clock.actor():
        await caller.place(order(CID, Side.BUY, "0.5"), clock.now())
    assert venue.sent == 2 and venue.settled == []


# ---------------------------------------------------------------------- the stamp on the wire
async def test_an_order_request_carries_its_own_timestamp_and_recv_window(tmp_path: Path) -> None:
    """Stamped a second before it is sent with a 300 ms window: the exchange refuses it (-1021),
    nothing is placed (ccxt's own stamp, or its default 10 s recvWindow, would be accepted)."""
    clock = VirtualClock(minute(0.5))
    server = await start_paper(tmp_path, clock)
    venue = ccxt_venue(server.url, clock)
    await venue.instruments()
    try:
        venue.stamps = SendStamps(SEND_WINDOW, lambda: venue.request_clock_ms() - 1_000)
        with pytest.raises(RetryableVenueError):
            await venue.place_order(order(CID, Side.BUY, "0.5"))
        assert [(s, code) for _, s, code, _ in order_posts(server)] == [(400, -1021)]
        venue.stamps = SendStamps(SEND_WINDOW, lambda: venue.request_clock_ms() - 200)
        assert (await venue.place_order(order(CID, Side.BUY, "0.5"))).status is OrderStatus.FILLED
    finally:
        await venue.close()
        await server.stop()


def test_the_recv_window_setting_is_validated_naming_the_key() -> None:
    assert parse_config({}).ccxt.recv_window_ms == 5_000
    with pytest.raises(ConfigError, match="ccxt.recv_window_ms: Input should be less than or equal to 60000"):
        parse_config({"ccxt": {"recv_window_ms": 60_001}})


async def test_a_daemon_may_send_only_while_its_lease_is_held_by_its_own_reckoning(tmp_path: Path) -> None:
    keeper = LeaseKeeper(migrated_sqlite(tmp_path / "genesis.db"), ["sim"], lease_seconds=15.0)
    try:
        assert not keeper.may_send()  # not claimed yet
        assert await keeper.wait_claimed(asyncio.Event())
        assert keeper.may_send()
        keeper.held_until -= 15.0  # as if no renewal had been sent for a whole lease
        assert not keeper.may_send()
    finally:
        keeper.close()


def test_the_chaos_verdict_counts_an_id_taken_again_as_a_second_order(tmp_path: Path) -> None:
    """The paper exchange stores a re-used filled id as ``<id>#<order id>``: the chaos verdict
    reads it as the id sent, so an order executed twice under one id fails the run."""
    store = PaperStore(tmp_path / "paper.db")
    with store.transaction():
        for order_id, stored in ((1, COID), (2, f"{COID}#2")):
            store.insert_order(OrderRow(order_id, stored, BTC, "BUY", "MARKET", "GTC", D(0), D("0.5"), D("0.5"),
                                        D("50"), "FILLED", 0, 0))
    intents = {"__dupes__": {"ids": []},
               COID: {"execution_id": EID, "slice_index": 0, "qty": "0.5", "order_type": "market"}}
    verdict = Verdict()
    _orders(verdict, store.db, intents)
    store.close()
    assert verdict.counts["dup_client_ids"] == 1 and verdict.counts["orders_without_intent"] == 0
    assert any("more than one exchange order" in f for f in verdict.failures)
