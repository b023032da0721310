"""One order budget per exchange account, shared by every execution in the process.

A token bucket: ``capacity`` orders may go out at once, then ``refill_per_second``. Over any
window of W seconds at most ``capacity + refill_per_second * W`` orders are sent, so the
defaults (capacity 10, 8/s) send at most 90 per 10 s, 90 % of Binance spot's ``ORDERS`` limit
(100 per 10 s in the recorded exchangeInfo), even when hundreds of parent orders slice at once:
480 orders a minute, ~350 TWAP parents slicing once a minute (1.4 orders a slice, maker-first).
Binance's other ``ORDERS`` limit, 200,000 a day, is not counted here: sustained all day it
allows ~139 orders a minute on average (docs/performance.md).
ccxt's own limiter (``enableRateLimit``) still spaces every request by request weight; this
budget only counts new orders.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Awaitable, Callable

DEFAULT_CAPACITY = 10.0
DEFAULT_REFILL_PER_SECOND = 8.0


class OrderBudget:
    """Async token bucket. ``monotonic`` and ``sleep`` are injectable for tests."""

    def __init__(self, capacity: float = DEFAULT_CAPACITY,
                 refill_per_second: float = DEFAULT_REFILL_PER_SECOND,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        if not capacity >= 1 or not refill_per_second > 0:
            raise ValueError("an order budget needs capacity >= 1 and refill_per_second > 0")
        self.capacity, self.refill_per_second = float(capacity), float(refill_per_second)
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens = self.capacity
        self._stamp = monotonic()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.waited_seconds = 0.0  # total time callers spent waiting, queue included (observability)

    def available(self) -> float:
        """Tokens available now (fractional)."""
        self._refill()
        return self._tokens

    async def acquire(self) -> None:
        """Take one order slot, waiting (first come, first served) until one is free. Every
        caller's whole wait counts in ``waited_seconds``: behind the others queued first too."""
        asked = self._monotonic()
        try:
            async with self._loop_lock():
                while True:
                    self._refill()
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    await self._sleep((1 - self._tokens) / self.refill_per_second)
        finally:
            self.waited_seconds += self._monotonic() - asked

    def _loop_lock(self) -> asyncio.Lock:
        # an asyncio.Lock belongs to one event loop; a process-wide budget may outlive a loop
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _refill(self) -> None:
        now = self._monotonic()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)


_budgets: dict[str, OrderBudget] = {}


def account_key(exchange_id: str, api_key: str | None) -> str:
    """Registry key of an account: exchange id plus a hash of the API key (never the key)."""
    digest = hashlib.sha256((api_key or "").encode("utf-8")).hexdigest()[:16]
    return f"{exchange_id}:{digest}"


def shared_budget(exchange_id: str, api_key: str | None, capacity: float = DEFAULT_CAPACITY,
                  refill_per_second: float = DEFAULT_REFILL_PER_SECOND) -> OrderBudget:
    """The process-wide budget of one account (created on first use with these limits)."""
    key = account_key(exchange_id, api_key)
    budget = _budgets.get(key)
    if budget is None:
        budget = _budgets[key] = OrderBudget(capacity, refill_per_second)
    return budget
