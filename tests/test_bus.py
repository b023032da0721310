"""The in-process event bus: priorities, isolation of failing subscribers, bounded queues, filters."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import AsyncIterator

import pytest
from structlog.testing import capture_logs

from genesis.bus import EventBus
from genesis.domain import events as ev
from genesis.domain.events import Event, EventPriority

T0 = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


def paused(n: int) -> ev.ExecutionPaused:  # HIGH
    return ev.ExecutionPaused("e1", T0 + timedelta(seconds=n), f"p{n}")


def ack(n: int) -> ev.OrderAcknowledged:  # NORMAL
    return ev.OrderAcknowledged("e1", T0 + timedelta(seconds=n), f"ge1-{n}-0", None, "open")


def slice_done(n: int) -> ev.TwapSliceExecuted:  # HIGH
    return ev.TwapSliceExecuted("e1", T0 + timedelta(seconds=n), n, 10, "filled", Decimal("0.1"),
                                Decimal("0.1"), Decimal("100"), Decimal("100"), Decimal("0"), Decimal("0"))


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    b = EventBus()
    yield b
    await b.close()


def test_priorities_are_as_specified() -> None:
    assert ev.ExecutionPaused.priority is EventPriority.HIGH
    assert ev.TwapSliceExecuted.priority is EventPriority.HIGH
    assert ev.TwapCompleted.priority is EventPriority.HIGH
    assert ev.OrderIntended.priority is EventPriority.NORMAL
    assert ev.FillRecorded.priority is EventPriority.NORMAL
    assert EventPriority.HIGH < EventPriority.NORMAL


async def test_high_priority_events_are_delivered_before_normal_ones_queued_with_them(bus: EventBus) -> None:
    seen: list[Event] = []
    bus.subscribe("s", seen.append)
    batch = [ack(0), ack(1), paused(2), ack(3), slice_done(4), paused(5)]
    for e in batch:  # all queued before the subscriber's task runs
        bus.publish(e)
    await bus.drain()
    assert seen == [paused(2), slice_done(4), paused(5), ack(0), ack(1), ack(3)]
    # without contention, order is publication order
    seen.clear()
    for e in batch:
        bus.publish(e)
        await bus.drain()
    assert seen == batch


async def test_a_failing_subscriber_is_isolated_and_counted(bus: EventBus) -> None:
    good: list[Event] = []
    flaky: list[Event] = []

    def explode_on_acks(e: Event) -> None:
        if isinstance(e, ev.OrderAcknowledged):
            raise RuntimeError("subscriber bug")
        flaky.append(e)

    async def always_explodes(e: Event) -> None:
        await asyncio.sleep(0)
        raise KeyError(e.event_type)

    bus.subscribe("good", good.append)
    bus.subscribe("flaky", explode_on_acks)
    bus.subscribe("broken", always_explodes)
    events = [paused(0), ack(1), paused(2), ack(3), paused(4)]
    with capture_logs() as logs:
        for e in events:
            bus.publish(e)
            await asyncio.sleep(0)
        await bus.drain()

    assert good == events
    assert flaky == [paused(0), paused(2), paused(4)]  # it kept receiving after its failures
    stats = bus.stats()
    assert stats["good"] == {"delivered": 5, "dropped": 0, "failures": 0, "queued": 0}
    assert stats["flaky"] == {"delivered": 3, "dropped": 0, "failures": 2, "queued": 0}
    assert stats["broken"] == {"delivered": 0, "dropped": 0, "failures": 5, "queued": 0}
    failed = [entry for entry in logs if entry["event"] == "bus_subscriber_failed"]
    assert sorted(entry["subscriber"] for entry in failed) == ["broken"] * 5 + ["flaky"] * 2


async def test_a_slow_subscriber_drops_and_counts_without_blocking_publish(bus: EventBus) -> None:
    release = asyncio.Event()
    slow: list[Event] = []
    fast: list[Event] = []

    async def slow_handler(e: Event) -> None:
        await release.wait()
        slow.append(e)

    bus.subscribe("slow", slow_handler, maxsize=5)
    bus.subscribe("fast", fast.append)
    events = [paused(i) for i in range(20)]
    for e in events:
        bus.publish(e)  # synchronous: returns at once even though "slow" cannot keep up
    await asyncio.sleep(0)  # "slow" takes one event and blocks in its handler
    for i in range(20, 30):
        bus.publish(paused(i))
    assert bus.stats()["slow"]["dropped"] == 15 + 9  # 5 fit at first, then 1 more after its first get

    for _ in range(1000):  # "fast" is not held up by "slow"
        if len(fast) == 30:
            break
        await asyncio.sleep(0)
    assert fast == [paused(i) for i in range(30)]
    release.set()
    await bus.drain()
    assert slow == [paused(i) for i in range(5)] + [paused(20)]
    stats = bus.stats()["slow"]
    assert stats["delivered"] == 6 and stats["dropped"] == 24 and stats["queued"] == 0


async def test_event_type_filter(bus: EventBus) -> None:
    only_lifecycle: list[Event] = []
    everything: list[Event] = []
    bus.subscribe("lifecycle", only_lifecycle.append, event_types=(ev.ExecutionPaused, ev.TwapSliceExecuted))
    bus.subscribe("all", everything.append)
    events = [ack(0), paused(1), slice_done(2), ack(3)]
    for e in events:
        bus.publish(e)
        await bus.drain()
    assert only_lifecycle == [paused(1), slice_done(2)]
    assert everything == events
    assert bus.stats()["lifecycle"]["delivered"] == 2


async def test_subscriber_names_are_unique_and_close_stops_delivery(bus: EventBus) -> None:
    seen: list[Event] = []
    bus.subscribe("s", seen.append)
    with pytest.raises(ValueError, match="already registered"):
        bus.subscribe("s", seen.append)
    await bus.close()
    bus.publish(paused(0))
    await asyncio.sleep(0)
    assert seen == [] and bus.stats() == {}
