"""The account's order budget: who goes first when orders queue for it (a slice's first order
ahead of taker remainders and re-sends, first come first served within a class, a bounded wait
for the later class), on a virtual clock: pure, no event-loop timing in the outcomes."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest

from genesis.domain.orders import SendPriority
from genesis.venue.order_budget import OrderBudget

LEADING, FOLLOWING = SendPriority.LEADING, SendPriority.FOLLOWING


class VirtualTime:
    """Virtual seconds: ``sleep`` parks its caller until the driver moves time to its wake-up;
    the driver moves only once every task has run as far as it can."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._seq), done))
        await done

    async def _settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    async def run(self, *coros) -> None:  # type: ignore[no-untyped-def]
        tasks = [asyncio.ensure_future(c) for c in coros]
        await self._settle()
        while not all(t.done() for t in tasks):
            assert self._timers, "stuck: tasks wait and no timer is due"
            at, _, done = heapq.heappop(self._timers)
            self.now = max(self.now, at)
            if not done.done():  # a cancelled sleeper's timer
                done.set_result(None)
            await self._settle()
        for t in tasks:
            t.result()


def budget_on(time: VirtualTime, capacity: float = 1, per_second: float = 1,
              handicap: float = 10) -> OrderBudget:
    return OrderBudget(capacity, per_second, monotonic=time.monotonic, sleep=time.sleep,
                       following_handicap_seconds=handicap)


async def caller(time: VirtualTime, budget: OrderBudget, name: str, at: float, priority: SendPriority,
                 sent: list[tuple[str, float]]) -> None:
    await time.sleep(at)
    await budget.acquire(priority)
    sent.append((name, time.now))


async def test_a_slices_first_order_goes_before_remainders_queued_ahead_of_it() -> None:
    time, sent = VirtualTime(), []
    budget = budget_on(time)
    await time.run(
        caller(time, budget, "head", 0.0, LEADING, sent),  # takes the one token: the bucket is empty
        caller(time, budget, "remainder-1", 0.1, FOLLOWING, sent),
        caller(time, budget, "remainder-2", 0.2, FOLLOWING, sent),
        caller(time, budget, "first-1", 0.3, LEADING, sent),
        caller(time, budget, "first-2", 0.4, LEADING, sent))
    assert [name for name, _ in sent] == ["head", "first-1", "first-2", "remainder-1", "remainder-2"]
    assert [at for _, at in sent] == [0.0, 1.0, 2.0, 3.0, 4.0]  # the bucket's pace, unchanged


async def test_a_first_order_arriving_while_the_head_waits_for_the_refill_goes_first() -> None:
    time, sent = VirtualTime(), []
    budget = budget_on(time, per_second=0.5)
    await time.run(
        caller(time, budget, "head", 0.0, LEADING, sent),
        caller(time, budget, "remainder", 0.5, FOLLOWING, sent),  # waits for the refill at 2.0
        caller(time, budget, "first", 1.5, LEADING, sent))  # arrives while it sleeps
    assert sent == [("head", 0.0), ("first", 2.0), ("remainder", 4.0)]


async def test_first_come_first_served_within_a_class() -> None:
    time, sent = VirtualTime(), []
    budget = budget_on(time, capacity=2, per_second=4)
    names = [f"{kind}-{i}" for i in range(6) for kind in ("first", "remainder")]
    await time.run(*(caller(time, budget, name, 0.01 * k, LEADING if name.startswith("first") else FOLLOWING, sent)
                     for k, name in enumerate(names)))
    order = [name for name, _ in sent]
    assert [n for n in order if n.startswith("first")] == [f"first-{i}" for i in range(6)]
    assert [n for n in order if n.startswith("remainder")] == [f"remainder-{i}" for i in range(6)]


async def test_a_remainder_waits_at_most_the_handicap_longer_under_a_steady_stream_of_first_orders() -> None:
    # first orders arrive as fast as the bucket refills, for 60 s: without a bound the
    # remainder would wait for all of them
    time, sent = VirtualTime(), []
    budget = budget_on(time, capacity=1, per_second=1, handicap=5)
    firsts = [caller(time, budget, f"first-{i}", 0.5 + i, LEADING, sent) for i in range(60)]
    await time.run(caller(time, budget, "head", 0.0, LEADING, sent),
                   caller(time, budget, "remainder", 0.2, FOLLOWING, sent), *firsts)
    at = dict(sent)["remainder"]
    assert at <= 0.2 + 5 + 1  # its rank (asked + handicap), then the bucket's next token
    assert len(sent) == 62 and sent[-1][1] == 61.0  # nothing lost, the pace kept


async def test_handicap_zero_is_one_first_come_first_served_queue() -> None:
    time, sent = VirtualTime(), []
    budget = budget_on(time, handicap=0)
    await time.run(caller(time, budget, "head", 0.0, LEADING, sent),
                   caller(time, budget, "remainder", 0.1, FOLLOWING, sent),
                   caller(time, budget, "first", 0.2, LEADING, sent))
    assert [name for name, _ in sent] == ["head", "remainder", "first"]


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_goes() -> None:
    time, sent = VirtualTime(), []
    budget = budget_on(time)

    async def cancelled_after(at: float, seconds: float) -> None:
        await time.sleep(at)
        task = asyncio.ensure_future(budget.acquire(LEADING))
        await time.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    await time.run(caller(time, budget, "head", 0.0, LEADING, sent),
                   cancelled_after(0.05, 0.5),  # queued first, the head of the queue while it sleeps
                   caller(time, budget, "remainder", 0.1, FOLLOWING, sent))
    assert sent == [("head", 0.0), ("remainder", 1.0)]
    assert budget.waited_seconds == pytest.approx(0.5 + 0.9)  # both waits counted


def test_a_negative_handicap_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="following_handicap_seconds"):
        OrderBudget(following_handicap_seconds=-1)


async def test_a_wait_bounded_by_a_deadline_takes_no_slot_that_comes_after_it() -> None:
    time = VirtualTime()
    budget = budget_on(time, capacity=1, per_second=1, handicap=0)
    got: dict[str, tuple[bool, float]] = {}

    async def ask(name: str, at: float, within: float | None) -> None:
        await time.sleep(at)
        got[name] = (await budget.acquire(LEADING, within=within), time.now)

    # a takes the only token, x (no deadline) queues for the next at t=1; b, queued behind x,
    # gives up at its deadline (t=0.5); c's slot, after x's, would come at t=2, after its
    # deadline (t=1.7); d has no deadline and gets the slot c did not take
    await time.run(ask("a", 0, None), ask("x", 0.05, None), ask("b", 0.1, 0.4), ask("c", 0.2, 1.5),
                   ask("d", 0.3, None))
    assert got["a"] == (True, 0) and got["x"] == (True, 1.0)
    assert got["b"] == (False, 0.5)
    assert got["c"][0] is False and got["c"][1] <= 1.7
    assert got["d"] == (True, 2.0), "a refused caller takes no slot"
    assert await budget.acquire(LEADING, within=0) is False  # a deadline already past: no slot
