"""The writer's queue of appends: ``asyncio.Queue``'s contract for one consumer that takes a
chunk at a time, at a fraction of its cost per item.

Every append passes through it (queued, taken, counted done): ``asyncio.Queue`` pays for
its getter and putter wake-ups and its finished event on every one of them; here a taker
waits on one future, items are taken by the chunk, and the finished event only changes when
the count of unfinished appends leaves or reaches zero.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class AppendQueue(Generic[T]):
    """Unbounded FIFO; one task takes from it (``take``). ``join`` waits until every item
    put has been marked ``task_done``."""

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None  # the taker, while the queue is empty
        self._unfinished = 0
        self._finished = asyncio.Event()
        self._finished.set()

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._unfinished += 1
        if self._unfinished == 1:
            self._finished.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self, most: int) -> list[T]:
        """The oldest items, at least one (waiting for it) and at most ``most``."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items, popleft = self._items, self._items.popleft
        return [popleft() for _ in range(min(most, len(items)))]

    def get_nowait(self) -> T:
        """The oldest item; ``IndexError`` when empty."""
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def task_done(self) -> None:
        """One item taken earlier is finished with."""
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put is done."""
        await self._finished.wait()
