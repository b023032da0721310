"""A restart recovery pass: no runner of the pass sends anything new until every execution of
the pass has reconciled with the venue (``genesis.engine.recovery_gate``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.domain.ids import client_order_id
from genesis.engine.control import Control, Desire
from genesis.engine.recovery_gate import RECOVERY_WAIT_SECONDS, RecoveryGate
from genesis.engine.venues import build_sim_venue
from genesis.venue.base import MarketDataUnavailable
from tests.harness import harness

CONFIG = parse_config({"router": {"maker_first": False}})


class SlowLookups:
    """The simulated venue, whose order lookups on ``symbol`` wait for ``release`` (a slow
    reconciliation); its quotes are counted per symbol (a slice's decisions start with one:
    the price for the early finish, the sizing)."""

    def __init__(self, inner: Any, symbol: str):
        self.inner, self.symbol, self.release = inner, symbol, asyncio.Event()
        self.quotes: dict[str, int] = {}

    async def book_top(self, symbol: str) -> Any:
        self.quotes[symbol] = self.quotes.get(symbol, 0) + 1
        return await self.inner.book_top(symbol)

    async def fetch_order(self, symbol: str, client_order_id: str) -> Any:
        if symbol == self.symbol:
            await self.release.wait()
        return await self.inner.fetch_order(symbol, client_order_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class NoMarketData(SlowLookups):
    """``SlowLookups`` whose candles of ``symbol`` are unavailable until ``release`` (a
    re-spread's volume profile cannot be read)."""

    async def fetch_order(self, symbol: str, client_order_id: str) -> Any:
        return await self.inner.fetch_order(symbol, client_order_id)

    async def candles(self, symbol: str, start: datetime, end: datetime) -> Any:
        if symbol == self.symbol and not self.release.is_set():
            raise MarketDataUnavailable("stream down", symbol, 60.0)
        return await self.inner.candles(symbol, start, end)

    def __getattr__(self, name: str) -> Any:
        if name == "volume_history":  # the curve from candles, so through the refusal above
            raise AttributeError(name)
        return getattr(self.inner, name)


async def intents(store: Any, execution_id: str) -> int:
    return sum(isinstance(s.event, ev.OrderIntended) for s in await store.read(execution_id))


async def run_then_stop(db_path: Any, minutes: int, *requests: dict[str, str], intent_on_last: bool = False
                        ) -> tuple[list[str], datetime, int]:
    """``requests`` run ``minutes`` in, then a graceful stop: their ids, when it stopped, and
    the first one's order intents so far. ``intent_on_last``: the last one then records the
    intent of an order it never sent (as a crash between the intent and the send leaves it)."""
    async with harness(db_path, CONFIG) as h:
        ids = [await h.supervisor.submit(h.request(**r)) for r in requests]
        async with h.clock.actor():
            await h.clock.sleep_until(h.clock.now() + timedelta(minutes=minutes))
        await h.supervisor.shutdown(5)
        if intent_on_last:
            agg = await h.store.load(ids[-1])
            s = agg.next_open()
            assert s is not None
            attempt = agg.attempts_for(s.index)
            coid = client_order_id(await h.store.namespace(), ids[-1], s.index, attempt)
            await h.store.append([ev.OrderIntended(ids[-1], h.clock.now(), s.index, attempt, coid, "market", "gtc",
                                                   Decimal("0.01"), None, Decimal("2700"))])
        return ids, h.clock.now(), await intents(h.store, ids[0])


@asynccontextmanager
async def restarted_with_slow_eth(db_path: Any) -> AsyncIterator[tuple[Any, SlowLookups, str, str, int]]:
    """A BTC TWAP ("fast") and an ETH VWAP ("slow", an intent it never sent) stopped 3 minutes
    in, restarted 2 minutes later on a venue whose ETH lookups wait for ``release``; recovered.
    Yields the harness, the venue, the two ids and the fast one's intents before the stop."""
    (fast, slow), stopped_at, sent_before = await run_then_stop(
        db_path, 3, dict(symbol="BTC/USDT", qty="0.05", algo="twap", request_id="fast"),
        dict(symbol="ETH/USDT", qty="1", algo="vwap", request_id="slow"), intent_on_last=True)
    venue: list[SlowLookups] = []

    def slow_eth(clock: Any) -> SlowLookups:
        venue.append(SlowLookups(build_sim_venue(clock, CONFIG), "ETH/USDT"))
        return venue[0]

    async with harness(db_path, CONFIG, start=stopped_at + timedelta(minutes=2), venue=slow_eth) as h2:
        assert sorted(await h2.supervisor.recover()) == sorted([fast, slow])
        yield h2, venue[0], fast, slow, sent_before


async def test_no_runner_sends_before_every_execution_of_the_pass_has_reconciled(db_path):  # type: ignore[no-untyped-def]
    async with restarted_with_slow_eth(db_path) as (h2, slow_venue, fast, slow, sent_before):
        runners = {eid: h2.supervisor._entries[eid].runner for eid in (fast, slow)}
        await asyncio.wait_for(runners[fast].recovered.wait(), 10)
        await asyncio.sleep(0.3)  # time enough for the fast one's overdue slice, were it let go
        assert not runners[slow].recovered.is_set()
        # nothing new while the pass reconciles: no slice decided (no quote asked), no order
        assert slow_venue.quotes.get("BTC/USDT", 0) == 0
        assert await intents(h2.store, fast) == sent_before
        slow_venue.release.set()
        await asyncio.wait_for(h2.supervisor.wait_recovered(), 10)
        for _ in range(200):  # then it goes on
            if await intents(h2.store, fast) > sent_before:
                break
            await asyncio.sleep(0.05)
        assert await intents(h2.store, fast) > sent_before
        await h2.supervisor.shutdown(5)


async def test_a_cancel_of_an_execution_held_at_the_gate_is_applied_while_the_pass_reconciles(db_path):  # type: ignore[no-untyped-def]
    async with restarted_with_slow_eth(db_path) as (h2, slow_venue, fast, slow, _):
        runners = {eid: h2.supervisor._entries[eid].runner for eid in (fast, slow)}
        await asyncio.wait_for(runners[fast].recovered.wait(), 10)
        assert h2.supervisor.control(fast, Desire.CANCEL, "command cancel")
        await asyncio.wait_for(h2.supervisor._entries[fast].task, 10)  # ended while the other is held
        assert not runners[slow].recovered.is_set()
        assert (await h2.store.load(fast)).state.value == "cancelled"
        assert slow_venue.quotes.get("BTC/USDT", 0) == 0  # no slice was decided on the way
        slow_venue.release.set()
        await h2.supervisor.shutdown(5)


async def test_an_execution_submitted_while_the_pass_settles_waits_with_it(db_path):  # type: ignore[no-untyped-def]
    async with restarted_with_slow_eth(db_path) as (h2, slow_venue, fast, slow, _):
        new = await h2.supervisor.submit(h2.request(symbol="BTC/USDT", qty="0.05", request_id="new"))
        at_submission = slow_venue.quotes.get("BTC/USDT", 0)  # the submission's own price look
        await asyncio.sleep(0.3)  # time enough for its first slice, were it let go
        assert not h2.supervisor._entries[slow].runner.recovered.is_set()
        assert slow_venue.quotes.get("BTC/USDT", 0) == at_submission  # no slice decided (it asks a quote)
        assert await intents(h2.store, new) == 0
        slow_venue.release.set()
        for _ in range(200):  # then it goes on
            if await intents(h2.store, new) > 0:
                break
            await asyncio.sleep(0.05)
        assert await intents(h2.store, new) > 0
        await h2.supervisor.shutdown(5)


async def test_a_runner_that_ends_before_reconciling_does_not_hold_the_pass(db_path):  # type: ignore[no-untyped-def]
    (eid,), stopped_at, _ = await run_then_stop(db_path, 2, dict(symbol="BTC/USDT", qty="0.05", algo="twap",
                                                                  request_id="one"))
    async with harness(db_path, CONFIG, start=stopped_at + timedelta(minutes=1)) as h2:
        await h2.supervisor.recover()
        h2.supervisor._entries[eid].task.cancel()
        await asyncio.sleep(0.05)
        assert all(g.open for g in h2.supervisor._gates)


async def test_a_re_spread_without_market_data_holds_the_others_only_for_a_while(db_path):  # type: ignore[no-untyped-def]
    (fast, slow), stopped_at, sent_before = await run_then_stop(
        db_path, 3, dict(symbol="BTC/USDT", qty="0.05", algo="twap", request_id="fast"),
        dict(symbol="ETH/USDT", qty="1", algo="vwap", request_id="slow"))
    venue: list[NoMarketData] = []

    def no_eth(clock: Any) -> NoMarketData:
        venue.append(NoMarketData(build_sim_venue(clock, CONFIG), "ETH/USDT"))
        return venue[0]

    async with harness(db_path, CONFIG, start=stopped_at + timedelta(minutes=2), venue=no_eth) as h2:
        await h2.supervisor.recover()
        restarted = h2.clock.now()
        for _ in range(200):
            if await intents(h2.store, fast) > sent_before:
                break
            await asyncio.sleep(0.05)
        assert await intents(h2.store, fast) > sent_before  # it went on
        assert not h2.supervisor._entries[slow].runner.recovered.is_set()  # while the other is held
        assert h2.clock.now() - restarted >= timedelta(seconds=RECOVERY_WAIT_SECONDS)
        await h2.supervisor.shutdown(5)


def test_waiting_for_a_step_of_the_gate_or_the_control_is_one_event_set_by_either() -> None:
    """A runner waits at the gate on one event that the gate's step and its control both set
    (no task per waiting runner relaying each: a restart has every runner of the pass wait);
    an event whose wait is over is set by neither."""
    async def main() -> None:
        gate, control = RecoveryGate(), Control()
        gate.expect("a")
        settled, recovered, control_woken, done = (asyncio.Event() for _ in range(4))
        with gate.wakes(gate.all_settled, done), control.wakes(done):
            pass  # that wait is over
        with gate.wakes(gate.all_settled, settled), gate.wakes(gate.all_recovered, recovered), \
                control.wakes(control_woken):
            gate.seal()
            assert not settled.is_set() and not recovered.is_set()
            gate.settled("a")
            assert settled.is_set() and not recovered.is_set()
            control.request_urgency("high", "test")
            assert control_woken.is_set()
            gate.recovered("a")
            assert recovered.is_set()
        assert not done.is_set()
        released, paused = asyncio.Event(), asyncio.Event()
        other = RecoveryGate()
        other.expect("b")
        with other.wakes(other.all_recovered, released), control.wakes(paused):
            other.release()  # shutdown
            control.request(Desire.PAUSE, "test")
        assert released.is_set() and paused.is_set()

    asyncio.run(main())
