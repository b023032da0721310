"""In-process publish/subscribe for committed events.

Each subscriber gets its own bounded priority queue and task, so a slow subscriber cannot
stall the writer and a failing one is logged and isolated. Execution lifecycle events are
delivered before progress events (``EventPriority``). When a subscriber's queue is full the
event is dropped for that subscriber only, and counted.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import structlog

from genesis.domain.events import Event

log = structlog.get_logger("genesis.bus")

Handler = Callable[[Event], Awaitable[None] | None]


@dataclass(slots=True)
class _Subscriber:
    name: str
    handler: Handler
    event_types: frozenset[type[Event]] | None
    queue: asyncio.PriorityQueue[tuple[int, int, Event]]
    task: asyncio.Task[None] | None = None
    dropped: int = 0
    failures: int = 0
    delivered: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class EventBus:
    def __init__(self, default_maxsize: int = 10_000):
        self._subs: dict[str, _Subscriber] = {}
        self._seq = itertools.count()
        self._default_maxsize = default_maxsize

    def subscribe(self, name: str, handler: Handler, event_types: tuple[type[Event], ...] | None = None,
                  maxsize: int | None = None) -> None:
        """Register ``handler`` (sync or async) for ``event_types`` (all when None)."""
        if name in self._subs:
            raise ValueError(f"subscriber {name!r} already registered")
        sub = _Subscriber(name, handler, frozenset(event_types) if event_types else None,
                          asyncio.PriorityQueue(maxsize or self._default_maxsize))
        sub.idle.set()
        sub.task = asyncio.create_task(self._consume(sub), name=f"bus-{name}")
        self._subs[name] = sub

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every interested subscriber. Never blocks, never raises."""
        for sub in self._subs.values():
            if sub.event_types is not None and type(event) not in sub.event_types:
                continue
            try:
                sub.queue.put_nowait((int(event.priority), next(self._seq), event))
                sub.idle.clear()
            except asyncio.QueueFull:
                sub.dropped += 1
                if sub.dropped == 1 or sub.dropped % 1000 == 0:
                    log.warning("bus_subscriber_queue_full", subscriber=sub.name, dropped=sub.dropped)

    def stats(self) -> dict[str, dict[str, int]]:
        return {n: {"delivered": s.delivered, "dropped": s.dropped, "failures": s.failures,
                    "queued": s.queue.qsize()} for n, s in self._subs.items()}

    async def drain(self) -> None:
        """Wait until every subscriber has handled what was published so far."""
        for sub in list(self._subs.values()):
            await sub.idle.wait()

    async def close(self) -> None:
        for sub in self._subs.values():
            if sub.task is not None:
                sub.task.cancel()
        await asyncio.gather(*(s.task for s in self._subs.values() if s.task), return_exceptions=True)
        self._subs.clear()

    async def _consume(self, sub: _Subscriber) -> None:
        while True:
            _, _, event = await sub.queue.get()
            try:
                result = sub.handler(event)
                if asyncio.iscoroutine(result):
                    await result
                sub.delivered += 1
            except Exception:  # task boundary: a subscriber's bug must not stop the bus
                sub.failures += 1
                log.exception("bus_subscriber_failed", subscriber=sub.name, event_type=event.event_type)
            finally:
                if sub.queue.empty():
                    sub.idle.set()
