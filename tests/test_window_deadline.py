"""Nothing is sent once a window's orders have closed, whatever the venue answered meanwhile
(throttling, unknown outcomes); and a dust remainder after an early completion ends the
execution instead of failing it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from genesis.algorithms.base import AlgorithmSettings, Context, VwapSettings
from genesis.algorithms.twap import TwapConfig, TwapExecutor
from genesis.domain import events as ev
from genesis.domain.execution import Execution, SliceState
from genesis.domain.fills import FillTotals
from genesis.domain.instrument import Instrument
from genesis.domain.orders import OrderStatus
from genesis.domain.state import ExecutionState
from genesis.domain.twap import TwapParams
from genesis.venue.base import RetryableVenueError, UnknownOutcomeError
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue
from tests.test_slice_executor_ports import EID, NOW, QTY, EventLog, ports

END = NOW + timedelta(seconds=10)


def ten_second_window() -> EventLog:
    return EventLog([ev.ExecutionSubmitted(EID, NOW, "r1", "BTC/USDT", "buy", QTY, "twap", 10),
                     ev.ExecutionStarted(EID, NOW, Decimal("100000"), END, (ev.PlannedSlice(0, NOW, QTY),))])


class Throttled:
    """A venue answering 429 to every order from ``from_`` (None: the start) until ``until``;
    records when orders got through."""

    def __init__(self, inner, clock, until, from_=None):  # type: ignore[no-untyped-def]
        self.inner, self.clock, self.until, self.sent_at = inner, clock, until, []
        self.from_ = from_

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    async def place_order(self, request):  # type: ignore[no-untyped-def]
        if (self.from_ is None or self.clock.now() >= self.from_) and self.clock.now() < self.until:
            raise RetryableVenueError("429 too many requests", 1.0)
        self.sent_at.append((request.client_order_id, self.clock.now()))
        return await self.inner.place_order(request)


class SlowToShow:
    """A venue that takes the order but answers with an unknown outcome, and whose lookups do
    not show it until ``visible_from``; records every send."""

    def __init__(self, inner, clock, visible_from):  # type: ignore[no-untyped-def]
        self.inner, self.clock, self.visible_from, self.sent_at = inner, clock, visible_from, []

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    async def place_order(self, request):  # type: ignore[no-untyped-def]
        self.sent_at.append((request.client_order_id, self.clock.now()))
        if len(self.sent_at) == 1:
            await self.inner.place_order(request)
        raise UnknownOutcomeError("timed out reading the answer")

    async def fetch_order(self, symbol, client_order_id):  # type: ignore[no-untyped-def]
        report = await self.inner.fetch_order(symbol, client_order_id)
        if self.clock.now() < self.visible_from:
            return type(report)(client_order_id, None, OrderStatus.NOT_FOUND, Decimal(0))
        return report


async def run_the_slice(wrap):  # type: ignore[no-untyped-def]
    """The window's one slice run through a venue wrapped by ``wrap(venue, clock)``."""
    log = ten_second_window()
    executor, clock, _, calls = ports(log)
    calls.venue = wrapped = wrap(calls.venue, clock)
    agg = await log.load()
    async with clock.actor():
        await executor.execute(agg, agg.slices[0], 1, 10.0)
    return log, wrapped


async def test_a_throttled_order_is_never_sent_after_the_window_end() -> None:
    log, throttled = await run_the_slice(lambda v, clock: Throttled(v, clock, END + timedelta(seconds=20)))
    assert throttled.sent_at == []
    closed = log.of(ev.OrderClosed)
    assert closed and {c.status for c in closed} == {"rejected"}
    assert closed[-1].reason == "window ended before the venue accepted it"
    agg = await log.load()
    assert agg.slices[0].closed and agg.filled_qty == 0 and agg.remaining_qty == QTY


async def test_an_unknown_outcome_past_the_deadline_is_looked_up_never_sent_again() -> None:
    log, slow = await run_the_slice(lambda v, clock: SlowToShow(v, clock, END + timedelta(seconds=30)))
    assert [at for _, at in slow.sent_at if at >= END - timedelta(seconds=1)] == []
    # resolved by lookup, never given up as "not found":
    first = slow.sent_at[0][0]
    # the (resting) order the venue did take, shown 30 s after the end, is found and cancelled
    assert [(c.client_order_id, c.status) for c in log.of(ev.OrderClosed)] == [(first, "cancelled")]


async def test_a_dust_remainder_after_early_completion_plans_nothing() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)

    class NoProfile:
        async def window_profile(self, *a, **k):  # type: ignore[no-untyped-def]
            return None

    inst = Instrument("BTC/USDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5"))
    ctx = Context(NoProfile(), inst, AlgorithmSettings(TwapParams(), VwapSettings()))
    algo = TwapExecutor(ctx, TwapConfig(TwapParams()))
    agg = Execution("0123456789ab", state=ExecutionState.RUNNING, symbol="BTC/USDT", qty=Decimal("1"),
                    started_at=t0, end_at=t0 + timedelta(minutes=30), arrival_price=Decimal("100000"),
                    early_completion_at=t0 + timedelta(minutes=2))
    agg.slices = {i: SliceState(i, t0 + timedelta(seconds=10 * i), Decimal("0.03"), closed=True, status="partial")
                  for i in range(30)}
    # 0.00004 BTC left = $4, below the $5 minimum notional (a partial maker fill leaves this)
    agg.fills = FillTotals(qty=Decimal("0.99996"), notional=Decimal("99996"))
    assert agg.remaining_qty == Decimal("0.00004")
    assert await algo.continue_after_plan(agg, t0 + timedelta(minutes=6)) == []


RUN_START = T0 + timedelta(days=HISTORY_DAYS, hours=1)


async def run_five_minutes(db_path, wrap):  # type: ignore[no-untyped-def]
    """1 BTC over 5 minutes from ``RUN_START`` through the simulated venue wrapped by
    ``wrap(venue, clock)``: the execution's history, its final state and the wrapped venue."""
    btc = series(HISTORY_DAYS + 1, flat("100000"), flat("50"))
    wrapped = []

    def make_venue(clock):  # type: ignore[no-untyped-def]
        wrapped.append(wrap(venue(clock, btc), clock))
        return wrapped[-1]

    async with harness(db_path, start=RUN_START, venue=make_venue) as h:
        execution_id = await h.supervisor.submit(h.request(qty="1", duration="5m"))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        agg = await h.store.load(execution_id)
    return history, agg, wrapped[0]


async def test_a_run_throttled_past_its_window_sends_nothing_late_and_expires(db_path) -> None:  # type: ignore[no-untyped-def]
    # from the fourth minute on the venue answers 429 until 30 s after the end
    history, agg, throttled = await run_five_minutes(db_path, lambda v, clock: Throttled(
        v, clock, RUN_START + timedelta(minutes=5, seconds=30), from_=RUN_START + timedelta(minutes=4)))
    (started,) = [e for e in history if isinstance(e, ev.ExecutionStarted)]
    late = [at for _, at in throttled.sent_at if at >= started.end_at]
    assert late == []
    assert any(isinstance(e, ev.OrderClosed) and e.reason == "window ended before the venue accepted it"
               for e in history)
    (done,) = [e for e in history if isinstance(e, ev.TwapCompleted)]
    assert done.reason == "window_ended" and done.remaining_qty > 0
    assert done.filled_qty + done.remaining_qty == Decimal("1")
    assert agg.state is ExecutionState.EXPIRED
