"""Market data unavailable past the venue's limit: new slices are held with a recorded reason
(``SlicingHeld``/``SlicingResumed``), projected, shown by ``genesis status``, and the
execution resumes by itself; the window's end does not move; a user pause still works during
a hold. On the simulated venue with an injected outage (a venue wrapper: the simulator itself
carries no fault injection)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any, Callable

import structlog
from click.testing import CliRunner

from genesis.cli import main
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.state import ExecutionState
from genesis.clock import VirtualClock
from genesis.engine.control import Control, Desire
from genesis.engine.market_hold import MarketHold
from genesis.engine.venues import build_sim_venue
from genesis.config import RuntimeConfig
from genesis.observability.usage import counts_weight
from genesis.store.projector import rebuild
from genesis.venue.base import MarketDataUnavailable
from tests.harness import SIM_START, harness
from tests.test_projections import snapshot

D = Decimal
OUTAGE_FROM = SIM_START + timedelta(minutes=3, seconds=30)


class MarketOutage:
    """The wrapped venue, except that its book top is unavailable (``MarketDataUnavailable``,
    as the streaming venue raises it) from ``down_from`` until ``down_until`` (None: for good).
    ``on_failure(n)`` is called with the count of refused reads."""

    def __init__(self, inner: Any, clock: Any, down_from: Any, down_until: Any = None,
                 on_failure: Callable[[int], None] = lambda n: None):
        self.inner, self.clock, self.down_from, self.down_until = inner, clock, down_from, down_until
        self.on_failure, self.refused = on_failure, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def down(self) -> bool:
        now = self.clock.now()
        return now >= self.down_from and (self.down_until is None or now < self.down_until)

    async def book_top(self, symbol: str) -> Any:
        if self.down():
            self.refused += 1
            self.on_failure(self.refused)
            raise MarketDataUnavailable(f"{symbol}: market data stream down", symbol, 75.0, retry_after_seconds=5.0)
        return await self.inner.book_top(symbol)


def outage(down_from: Any, down_until: Any = None, **kw: Any) -> Callable[[Any], MarketOutage]:
    config = RuntimeConfig()
    return lambda clock: MarketOutage(build_sim_venue(clock, config), clock, down_from, down_until, **kw)


def of(history: list[ev.Event], cls: type) -> list[Any]:
    return [e for e in history if isinstance(e, cls)]


async def history_of(h: Any, execution_id: str) -> list[ev.Event]:
    return [s.event for s in await h.store.read(execution_id)]


async def test_a_market_outage_holds_new_slices_records_it_and_resumes_by_itself(db_path):
    until = SIM_START + timedelta(minutes=7)
    async with harness(db_path, venue=outage(OUTAGE_FROM, until)) as h:
        execution_id = await h.supervisor.submit(h.request(qty="2.5", duration="15m"))
        await h.supervisor.wait_all()
        history = await history_of(h, execution_id)
        (started,) = of(history, ev.ExecutionStarted)
        (held,) = of(history, ev.SlicingHeld)
        (resumed,) = of(history, ev.SlicingResumed)
        (done,) = of(history, ev.TwapCompleted)
        assert (held.reason, held.venue, held.symbol) == (ev.HOLD_MARKET_DATA_UNAVAILABLE, "sim", "BTC/USDT")
        assert held.stream_down_seconds == 75.0 and "stream down" in held.detail
        assert OUTAGE_FROM <= held.occurred_at < until <= resumed.occurred_at
        assert resumed.reason == ev.HOLD_MARKET_DATA_UNAVAILABLE
        assert resumed.held_seconds == (resumed.occurred_at - held.occurred_at).total_seconds()
        # nothing was sent while held; the execution stayed running; it completed after
        assert not [e for e in of(history, ev.OrderIntended) if held.occurred_at <= e.occurred_at < resumed.occurred_at]
        at_hold = Execution.replay(execution_id, history[:history.index(held) + 1])
        assert at_hold.state is ExecutionState.RUNNING and at_hold.held_since == held.occurred_at
        assert not of(history, ev.ExecutionPaused)
        assert done.reason == "filled" and done.filled_qty == D("2.5")
        # the hold did not move the window's end
        assert all(r.end_at == started.end_at for r in of(history, ev.ScheduleReplanned))
        assert done.occurred_at <= started.end_at
        row = await h.execution_row(execution_id)
        assert (row["held_since"], row["hold_reason"]) == (None, None)
        assert row["held_seconds"] == resumed.held_seconds
        before = await snapshot(h.engine)
        async with h.engine.begin() as conn:
            await rebuild(conn)
        assert await snapshot(h.engine) == before


async def test_an_outage_that_outlasts_the_window_expires_it_with_the_remainder(db_path):
    async with harness(db_path, venue=outage(OUTAGE_FROM)) as h:
        execution_id = await h.supervisor.submit(h.request(qty="2.5", duration="10m"))
        await h.supervisor.wait_all()
        history = await history_of(h, execution_id)
        (started,) = of(history, ev.ExecutionStarted)
        (held,) = of(history, ev.SlicingHeld)
        (done,) = of(history, ev.TwapCompleted)
        assert not of(history, ev.SlicingResumed)
        assert done.reason == "window_ended" and done.remaining_qty == D("2.5") - done.filled_qty > 0
        assert done.occurred_at == started.end_at  # ended at its end, not moved by the hold
        row = await h.execution_row(execution_id)
        assert row["state"] == "expired" and row["held_since"] is None
        assert row["held_seconds"] == (done.occurred_at - held.occurred_at).total_seconds()
        assert row["end_at"] == started.end_at


async def test_a_user_pause_during_a_hold_is_recorded_as_a_pause(db_path):
    box: dict[str, Any] = {}

    def pause_on_third_refusal(n: int) -> None:
        if n == 3:
            box["h"].supervisor.control(box["id"], Desire.PAUSE, "operator")

    async with harness(db_path, venue=outage(OUTAGE_FROM, on_failure=pause_on_third_refusal)) as h:
        box["h"] = h
        execution_id = box["id"] = await h.supervisor.submit(h.request(qty="2.5", duration="30m"))
        for _ in range(2000):
            if of(await history_of(h, execution_id), ev.ExecutionPaused):
                break
            await asyncio.sleep(0.005)
        status = CliRunner().invoke(main, ["status", execution_id, "--json", "--db", str(db_path)])
        shown = json.loads(status.output)
        assert (shown["state"], shown["hold_reason"]) == ("paused", ev.HOLD_MARKET_DATA_UNAVAILABLE)
        table = CliRunner().invoke(main, ["status", "--db", str(db_path)])
        assert "paused, held: market_data_unavailable" in table.output
        assert not counts_weight(h.venue) and "request weight" not in table.output  # the simulator counts none
        h.supervisor.control(execution_id, Desire.CANCEL, "operator")
        await h.supervisor.wait_all()
        history = await history_of(h, execution_id)
        kinds = [type(e).__name__ for e in history]
        assert kinds.index("SlicingHeld") < kinds.index("ExecutionPaused") < kinds.index("ExecutionCancelled")
        row = await h.execution_row(execution_id)
        assert row["state"] == "cancelled" and row["held_since"] is None and row["held_seconds"] > 0


async def test_a_hold_inside_a_slice_under_way_or_while_reconciling_is_never_interrupted() -> None:
    """A pause during a hold ends the wait only while the runner is deciding and the slice due
    has sent nothing: a slice with a child order already (or a reconciliation) waits for the
    market as before, at the retry pace (no tight loop on a set wake-up)."""
    start = SIM_START
    history: list[ev.Event] = [
        ev.ExecutionSubmitted("e1", start, "r1", "BTC/USDT", "buy", D("1"), "twap", 600),
        ev.ExecutionStarted("e1", start, D("100"), start + timedelta(minutes=10),
                            (ev.PlannedSlice(0, start, D("0.5")), ev.PlannedSlice(1, start, D("0.5"))))]

    async def load() -> Execution:
        return Execution.replay("e1", history)

    async def append(events: list[ev.Event]) -> Execution:
        history.extend(events)
        return await load()

    clock, control = VirtualClock(start), Control()
    hold = MarketHold("e1", build_sim_venue(clock, RuntimeConfig()), load=load, append=append, clock=clock, control=control,
                      log=structlog.get_logger("test"))
    error = MarketDataUnavailable("down", "BTC/USDT", 61.0)
    control.request(Desire.PAUSE, "operator")
    await hold.hold(error)
    assert [type(e).__name__ for e in history[2:]] == ["SlicingHeld"]
    assert not hold.interrupts()  # not deciding (reconciling): the wait goes on
    hold.armed = True
    assert hold.interrupts()  # deciding, nothing sent for the slice due: the pause ends the wait
    history.append(ev.OrderIntended("e1", start, 0, 0, "g-e1-0-0", "limit", "post_only", D("0.5"), D("100"),
                                    D("100")))
    await hold.hold(error)  # already held: recorded once
    assert [type(e).__name__ for e in history[2:]] == ["SlicingHeld", "OrderIntended"]
    assert not hold.interrupts()  # the slice due is under way: the wait goes on
    async with clock.actor():
        await hold.wait(5.0)  # at the retry pace, though the wake-up is set
    assert clock.now() == start + timedelta(seconds=5)
