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

**Who goes first when orders queue.** Each caller's place in the queue is its *rank*: the time
it asked, plus ``following_handicap_seconds`` for a ``SendPriority.FOLLOWING`` order (a slice's
taker remainder, a re-send after a restart); a ``LEADING`` order (a slice's first, whose wait is
the slice's lateness) ranks at the time it asked. The lowest rank goes first, ties in the order
asked: first come, first served within a class, and a following order is never passed by a
leading one that asked more than the handicap after it, so it waits at most that much longer
than it would have as a leading order (nothing starves). The priority orders the queue only: it
never lets an order out sooner than the bucket allows.

**An order's wait ends at its deadline.** A caller may bound its wait (``within``: the time
left before its order may no longer be sent, a window's end less the order cutoff): when its
slot would come later, it takes none and is told so (the venue refuses the order unsent with
``SEND_DEADLINE_REASON``), instead of being sent after the window it was meant for.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from genesis.domain.orders import SendPriority

DEFAULT_CAPACITY = 10.0
DEFAULT_REFILL_PER_SECOND = 8.0
# a following order may wait this much longer than a leading one (a tenth of a 1-minute slice
# interval; the taker remainder it delays goes at the latest at its interval's end)
DEFAULT_FOLLOWING_HANDICAP_SECONDS = 6.0
# why an order whose budget slot would come after its deadline was not sent
SEND_DEADLINE_REASON = "no slot in the account's order budget before the order's deadline; not sent"


@dataclass(order=True)
class _Waiter:
    rank: float
    seq: int
    turn: asyncio.Event = field(compare=False, default_factory=asyncio.Event)


class OrderBudget:
    """Async token bucket with a ranked queue (module docstring). ``monotonic`` and ``sleep``
    are injectable for tests."""

    def __init__(self, capacity: float = DEFAULT_CAPACITY,
                 refill_per_second: float = DEFAULT_REFILL_PER_SECOND,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 following_handicap_seconds: float = DEFAULT_FOLLOWING_HANDICAP_SECONDS):
        if not capacity >= 1 or not refill_per_second > 0:
            raise ValueError("an order budget needs capacity >= 1 and refill_per_second > 0")
        if not following_handicap_seconds >= 0:
            raise ValueError("an order budget needs following_handicap_seconds >= 0 "
                             "(0: one first-come, first-served queue)")
        self.capacity, self.refill_per_second = float(capacity), float(refill_per_second)
        self.following_handicap_seconds = float(following_handicap_seconds)
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens = self.capacity
        self._stamp = monotonic()
        self._queue: list[_Waiter] = []  # a heap on (rank, seq)
        self._seq = itertools.count()
        self._sleeping = False  # the head of the queue is waiting for the bucket to refill
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waited_seconds = 0.0  # total time callers spent waiting, queue included (observability)

    def available(self) -> float:
        """Tokens available now (fractional)."""
        self._refill()
        return self._tokens

    async def acquire(self, priority: SendPriority = SendPriority.LEADING, within: float | None = None) -> bool:
        """Take one order slot, waiting until one is free and every caller ranked before this
        one has had its slot (module docstring). Every caller's whole wait counts in
        ``waited_seconds``: behind the others queued first too. ``within``: the longest wait in
        seconds (None: unbounded); when the slot would come later, no slot is taken and the
        answer is False (the order must not be sent). True: the slot is taken."""
        self._own_loop()
        asked = self._monotonic()
        give_up = None if within is None else asked + within
        if within is not None and within <= 0:
            return False  # its deadline has passed: no slot
        handicap = self.following_handicap_seconds if priority is SendPriority.FOLLOWING else 0.0
        me = _Waiter(asked + handicap, next(self._seq))
        heapq.heappush(self._queue, me)
        try:
            while True:
                if self._queue[0] is not me or self._sleeping:
                    me.turn.clear()
                    if not await self._turn(me, give_up):  # set when this caller may be the head
                        return False
                    continue
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return True
                refilled_in = (1 - self._tokens) / self.refill_per_second
                if give_up is not None and self._monotonic() + refilled_in > give_up:
                    return False  # its slot comes after its deadline
                self._sleeping = True  # one sleeper at a time: the head
                try:
                    await self._sleep(refilled_in)
                finally:
                    self._sleeping = False
                if self._queue[0] is not me:  # a better-ranked caller arrived meanwhile
                    self._queue[0].turn.set()
        finally:
            self._queue.remove(me)
            heapq.heapify(self._queue)
            if self._queue:
                self._queue[0].turn.set()
            self.waited_seconds += self._monotonic() - asked

    async def _turn(self, me: _Waiter, give_up: float | None) -> bool:
        """Wait for ``me``'s turn to be the head; False when ``give_up`` comes first."""
        if give_up is None:
            await me.turn.wait()
            return True
        left = give_up - self._monotonic()
        if left <= 0:
            return False
        turn, timer = asyncio.ensure_future(me.turn.wait()), asyncio.ensure_future(self._sleep(left))
        try:
            await asyncio.wait({turn, timer}, return_when=asyncio.FIRST_COMPLETED)
            return turn.done()
        finally:
            turn.cancel()
            timer.cancel()

    def _own_loop(self) -> None:
        # a process-wide budget may outlive an event loop: waiters of a loop that is gone are not
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._queue, self._sleeping = loop, [], False

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
                  refill_per_second: float = DEFAULT_REFILL_PER_SECOND,
                  following_handicap_seconds: float = DEFAULT_FOLLOWING_HANDICAP_SECONDS) -> OrderBudget:
    """The process-wide budget of one account (created on first use with these limits)."""
    key = account_key(exchange_id, api_key)
    budget = _budgets.get(key)
    if budget is None:
        budget = _budgets[key] = OrderBudget(capacity, refill_per_second,
                                             following_handicap_seconds=following_handicap_seconds)
    return budget
