"""The account's order budget: new orders counted in the exchange's fixed windows (a clump of
leading orders passes at once, following orders paced, never above the limit in any exchange
window, boundary crossings included), the exchange's own count adopted, deadlines kept. On a
virtual clock: no event-loop or wall-clock timing in the outcomes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from genesis.clock import VirtualClock
from genesis.domain.orders import SendPriority
from genesis.venue.order_budget import OrderBudget, Slot

LEADING, FOLLOWING = SendPriority.LEADING, SendPriority.FOLLOWING
START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)  # a window boundary of the exchange's clock


def seconds(clock: VirtualClock) -> float:
    return round((clock.now() - START).total_seconds(), 6)


class Orders:
    """Callers of one budget on a virtual clock; ``sent``: (name, when let out), ``refused``:
    (name, when told no)."""

    def __init__(self, budget: OrderBudget):
        self.budget, self.clock = budget, budget.clock
        assert isinstance(self.clock, VirtualClock)
        self.sent: list[tuple[str, float]] = []
        self.refused: list[tuple[str, float]] = []
        self.slots: dict[str, Slot] = {}

    async def ask(self, name: str, at: float, priority: SendPriority = LEADING,
                  within: float | None = None, flight: float = 0.0) -> None:
        """Ask at ``at`` s; once let out, the order is in flight for ``flight`` s."""
        async with self.clock.actor():
            await self.clock.sleep_until(START + timedelta(seconds=at))
            slot = await self.budget.take(priority, within)
            if slot is None:
                self.refused.append((name, seconds(self.clock)))
                return
            self.sent.append((name, seconds(self.clock)))
            self.slots[name] = slot
            await self.clock.sleep_until(self.clock.now() + timedelta(seconds=flight))
            slot.done()

    def at(self, name: str) -> float:
        return dict(self.sent)[name]

    def per_window(self, prefix: str = "") -> Counter[int]:
        return Counter(int(at // 10) for name, at in self.sent if name.startswith(prefix))


def budget(limit: int = 97, share: float = 0.15, guard: float = 0.25, window: float = 10.0) -> OrderBudget:
    return OrderBudget(limit, window, share, guard, VirtualClock(START))


def pace(elapsed: float, share: float = 0.15) -> float:
    """Following orders a window of 97 lets out by ``elapsed``: share x 97 x elapsed + 1, and in
    its last fifth up to 0.4 x 97 more, evenly."""
    return (share * elapsed + 0.4 * max(0.0, elapsed - 0.8) / 0.2) * 97 + 1


async def test_a_clump_of_leading_orders_goes_at_once_while_following_ones_are_paced() -> None:
    orders = Orders(budget())
    await asyncio.gather(*(orders.ask(f"follow-{i}", 0.0, FOLLOWING) for i in range(80)),
                         *(orders.ask(f"lead-{i}", 7.0) for i in range(35)))
    assert {orders.at(f"lead-{i}") for i in range(35)} == {7.0}, "the whole clump went when it asked"
    follows = sorted(at for name, at in orders.sent if name.startswith("follow"))
    window = [at for at in follows if at < 10.0]
    for k, at in enumerate(window):  # k went before it in the window
        assert k < pace(at / 10)
    assert len([at for at in window if at < 8.0]) == 13  # 0.15 x 97 x 0.8 + 1 = 12.6
    assert len(window) == 55  # by the window's end: 0.55 x 97 + 1 = 54.35
    assert orders.per_window()[0] == 90 and len(orders.sent) == 115


async def test_a_leading_clump_late_in_a_window_finds_the_room_the_old_pace_gave_away() -> None:
    """The default pace of following orders, 0.15 x 97 x elapsed + 1 before the window's last
    fifth, has let 12 of them out by 7.5 s (the old 0.4 let 30 out, leaving 17 for the clump of
    25); the rest of the window goes to them in its tail."""
    orders = Orders(OrderBudget(clock=VirtualClock(START)))  # the default settings
    await asyncio.gather(*(orders.ask(f"lead-{i}", 1.0) for i in range(50)),
                         *(orders.ask(f"follow-{i}", 1.5, FOLLOWING) for i in range(60)),
                         *(orders.ask(f"late-{i}", 7.5) for i in range(25)))
    assert {orders.at(f"late-{i}") for i in range(25)} == {7.5}, "the late clump went when it asked"
    assert orders.per_window()[0] == 97, "following orders had the rest in the window's tail"
    assert len(orders.sent) == 135


async def test_in_a_windows_last_fifth_following_orders_go_faster_but_evenly() -> None:
    """0.4 x 97 more over the last fifth (more than the old pace's 0.4 x 97 + 1 a whole window),
    one every ~0.05 s: not a burst still in flight when the next window begins."""
    orders = Orders(budget())
    await asyncio.gather(*(orders.ask(f"follow-{i}", 0.5, FOLLOWING) for i in range(96)))
    assert orders.per_window()[0] == 55
    tail = sorted(at for _, at in orders.sent if 8.0 <= at < 10.0)
    assert len(tail) == 55 - 13 and min(b - a for a, b in zip(tail, tail[1:])) > 0.04


async def test_leading_orders_may_use_the_whole_window_then_wait_for_the_next() -> None:
    orders = Orders(budget())
    await asyncio.gather(*(orders.ask(f"lead-{i}", 2.0 + i / 1000) for i in range(150)))
    times = [orders.at(f"lead-{i}") for i in range(150)]
    assert times == sorted(times), "first come, first served"
    # the window of 2.0 s counts 97; the last ones wait for the next window, past its start's
    # guard (an order let out earlier might arrive in the full window)
    assert orders.per_window() == Counter({0: 97, 1: 53})
    assert min(times[97:]) == pytest.approx(10.251)


async def test_no_exchange_window_sees_more_than_the_limit_across_boundaries() -> None:
    """Random clumps of leading orders, their following orders a few seconds later, every order
    in flight for up to 0.6 s and arriving somewhere in its flight, on an exchange clock up to
    0.2 s off ours (less than the guard): the exchange counts arrivals in its own windows."""
    rng = random.Random(7)
    for offset in (-0.2, 0.2):
        b = budget()
        orders, arrivals, flights = Orders(b), [], {}
        calls = []
        for clump in range(10):
            at = clump * 2.5 + rng.random()
            for i in range(rng.randint(20, 45)):
                name, flight = f"lead-{clump}-{i}", rng.uniform(0.0, 0.6)
                flights[name] = flight
                calls.append(orders.ask(name, at, LEADING, flight=flight))
                if rng.random() < 0.5:
                    name = f"follow-{clump}-{i}"
                    flights[name] = rng.uniform(0.0, 0.6)
                    calls.append(orders.ask(name, at + 5, FOLLOWING, flight=flights[name]))
        await asyncio.gather(*calls)
        for name, sent in orders.sent:
            arrived = sent + rng.uniform(0, 1) * flights[name] + offset  # on the exchange's clock
            arrivals.append(int(arrived // 10))
        counts = Counter(arrivals)
        assert max(counts.values()) <= 97, (offset, counts)
        assert max(counts.values()) >= 90, "the test puts the windows under pressure"
        assert len(orders.sent) == len(calls), "nothing lost"


async def test_an_order_in_flight_when_a_window_begins_counts_in_it() -> None:
    orders = Orders(budget(limit=3, guard=0.0))
    await asyncio.gather(orders.ask("slow", 9.5, flight=1.0),  # may arrive after 10.0
                         *(orders.ask(f"next-{i}", 10.0) for i in range(3)))
    assert [orders.at(f"next-{i}") for i in range(3)] == [10.0, 10.0, pytest.approx(20.001)]


async def test_an_order_let_out_within_the_guard_of_a_boundary_counts_in_both_windows() -> None:
    orders = Orders(budget(limit=3, guard=0.25))
    await asyncio.gather(orders.ask("late", 9.9),  # answered at once, but our clock may be off
                         *(orders.ask(f"next-{i}", 10.5) for i in range(3)))
    assert [orders.at(f"next-{i}") for i in range(3)] == [10.5, 10.5, pytest.approx(20.251)]


async def test_an_order_whose_arrival_is_known_counts_only_in_the_window_it_arrived_in() -> None:
    async def answered(arrived: float | None) -> list[float]:
        b = budget(limit=3, guard=0.25)
        orders = Orders(b)
        async with b.clock.actor():
            await b.clock.sleep_until(START + timedelta(seconds=9.9))
            slot = await b.take(LEADING)
            assert slot is not None
            await b.clock.sleep_until(START + timedelta(seconds=10.05))  # the answer
            slot.observe(None, at_seconds=None if arrived is None else START.timestamp() + arrived)
            slot.done()
        await asyncio.gather(*(orders.ask(f"next-{i}", 10.5) for i in range(3)))
        return [orders.at(f"next-{i}") for i in range(3)]

    assert await answered(9.95) == [10.5, 10.5, 10.5]  # its transaction time: window 0 only
    assert await answered(None) == [10.5, 10.5, pytest.approx(20.251)]  # may have arrived in 1


async def test_the_exchanges_count_is_adopted_when_higher() -> None:
    b = budget(limit=10)
    orders = Orders(b)
    await orders.ask("first", 1.0)
    orders.slots["first"].observe(8, at_seconds=START.timestamp() + 1.0)  # others sent 7 more
    assert b.available() == 2
    orders.slots["first"].observe(3, at_seconds=START.timestamp() + 1.0)  # lower: ours stands
    assert b.available() == 2
    await asyncio.gather(*(orders.ask(f"more-{i}", 2.0) for i in range(3)))
    assert [orders.at(f"more-{i}") for i in range(3)] == [2.0, 2.0, pytest.approx(10.251)]


async def test_a_window_refused_by_the_exchange_is_full_until_the_next() -> None:
    b = budget(limit=10)
    orders = Orders(b)
    await orders.ask("refused", 3.0)
    orders.slots["refused"].window_full()  # -1015: not placed
    await orders.ask("again", 3.0)
    assert orders.at("again") == pytest.approx(10.251)


async def test_a_refusal_answered_just_before_a_boundary_does_not_close_the_next_window() -> None:
    b = budget(limit=10)  # guard 0.25 s
    orders = Orders(b)
    await orders.ask("refused", 9.8, flight=0.05)  # let out 0.2 s before the boundary
    orders.slots["refused"].window_full()  # its -1015 read at 9.85 s: window 0 is full
    await orders.ask("next", 9.9)
    # window 1 is not closed by it: the next order goes once past the boundary's guard, not at 20 s
    assert orders.at("next") == pytest.approx(10.251)


async def test_a_wait_that_would_end_after_the_deadline_is_refused_at_once() -> None:
    orders = Orders(budget(limit=2, share=0.5, guard=0.0))
    await asyncio.gather(orders.ask("a", 1.0), orders.ask("b", 1.0),
                         orders.ask("late", 1.0, within=5.0),  # next window at 10 > 6
                         orders.ask("patient", 1.0, within=9.5))
    assert orders.refused == [("late", 1.0)], "told at once, not at its deadline"
    assert orders.at("patient") == pytest.approx(10.001), "a refused caller takes no slot"
    paced = Orders(budget(limit=10, share=0.5, guard=0.0))
    # pace 0.5 x 10 x elapsed + 1: the 1st following order at 0, the 2nd just after, the 3rd at 2 s
    await asyncio.gather(*(paced.ask(f"f-{i}", 0.0, FOLLOWING) for i in range(2)),
                         paced.ask("f-late", 0.0, FOLLOWING, within=1.5))
    assert paced.refused == [("f-late", pytest.approx(0.001))]
    assert await paced.budget.take(LEADING, within=0) is None  # a deadline already past: no slot


async def test_following_orders_are_never_starved_by_leading_ones_filling_every_window() -> None:
    orders = Orders(budget(limit=5, guard=0.0))
    await asyncio.gather(*(orders.ask(f"lead-{i}", 0.0 + i / 1000) for i in range(30)),
                         orders.ask("follow", 0.5, FOLLOWING))
    assert orders.at("follow") == pytest.approx(10.001), "the next window's first slot"
    assert orders.per_window("lead")[1] == 4


async def test_first_come_first_served_within_a_class() -> None:
    orders = Orders(budget(limit=4, guard=0.0))
    names = [f"{kind}-{i}" for i in range(6) for kind in ("lead", "follow")]
    await asyncio.gather(*(orders.ask(name, 0.5 + k / 100, LEADING if name.startswith("lead") else FOLLOWING)
                           for k, name in enumerate(names)))
    order = [name for name, _ in sorted(orders.sent, key=lambda s: s[1])]
    assert [n for n in order if n.startswith("lead")] == [f"lead-{i}" for i in range(6)]
    assert [n for n in order if n.startswith("follow")] == [f"follow-{i}" for i in range(6)]


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_goes() -> None:
    b = budget(limit=1, guard=0.0)
    orders = Orders(b)

    async def cancelled_after(at: float, wait: float) -> None:
        async with b.clock.actor():
            await b.clock.sleep_until(START + timedelta(seconds=at))
            task = asyncio.ensure_future(b.take(LEADING))
            await b.clock.sleep_until(START + timedelta(seconds=at + wait))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    await asyncio.gather(orders.ask("head", 0.0), cancelled_after(0.05, 0.5), orders.ask("next", 0.1))
    assert orders.sent == [("head", 0.0), ("next", pytest.approx(10.001))]
    assert b.waited_seconds == pytest.approx(0.5 + 9.901)  # both waits counted


def test_settings_out_of_range_are_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="following_share"):
        OrderBudget(following_share=1.5)
    with pytest.raises(ValueError, match="guard_seconds"):
        OrderBudget(guard_seconds=6)
    with pytest.raises(ValueError, match="limit"):
        OrderBudget(limit=0)
