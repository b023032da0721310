"""One order budget per exchange account, shared by every execution in the process: new orders
counted in the exchange's own fixed windows.

**The rule.** Binance spot counts an account's new orders in FIXED 10-second windows of its own
clock (the ``ORDERS`` limit: 100 per window in the recorded exchangeInfo) and refuses the
101st with HTTP 429, -1015 "Too many new orders" (the order is not placed); the paper exchange
(``genesis.paper.limits``) does the same on its simulated clock. The budget lets out at most
``limit`` orders (default 97, three under Binance's 100) in each window of ``window_seconds``
(default 10) of its ``clock``: the venue's clock, which reads the exchange's time (the paper
exchange's simulated clock, or live the wall clock less ccxt's measured time difference:
``genesis.venue.exchange_clock``). Waits are in the clock's seconds; a ``ScaledClock`` (a paper
exchange at ``--speed N``) turns them into wall seconds. Binance's other ``ORDERS`` limit,
200,000 a day, is counted by the budget's ``daily`` (``genesis.venue.daily_orders``).

**The margin: orders that cross a boundary.** The exchange counts an order in the window it
*arrives* in, which may not be the one the budget let it out in. An order in flight (let out,
no answer yet: the venue holds its ``Slot``) counts in every window from the one it was let
out in on, that one taken ``guard_seconds`` earlier (our reading of the exchange's clock may be
that far off): one let out within the guard after a boundary needs room in both windows, and
one still in flight when a window begins counts in it. Once answered, it counts in the window
its transaction time falls in (every window it may have reached when that time is not known).
The three of 100 left over absorb the rest (a clock error beyond the guard, an order by hand).

**Feedback from the exchange.** Every order answer carries the window's count
(``X-MBX-ORDER-COUNT-10S``); the venue hands it to ``Slot.observe`` with the order's
transaction time, and the window counts the higher of the exchange's count and ours (orders
another process, or a person, sent on the account). A -1015 answer makes the window full
(``Slot.window_full``): the order, not placed, asks again and goes in a later window, within its
deadline.

**Who goes first.** A ``SendPriority.LEADING`` order (a slice's first, whose wait is the slice's
lateness) may use the whole window; leading orders arrive in clumps (one print gives many slices
room at once), at any moment of a window, so room is kept for them: ``FOLLOWING`` orders (a
taker remainder, a re-send after a restart; they have until their interval's end) are paced, at
most ``following_share`` x ``limit`` x (elapsed fraction of the window) + 1 in a window, and in
its last fifth up to 0.4 x ``limit`` more, evenly over it (``FOLLOWING_TAIL``,
``FOLLOWING_TAIL_SHARE``): the window is not filled early (a leading clump late in it still
finds room), and following orders still get the room leading ones left, at an even pace the
exchange keeps up with (not one burst, still in flight when the next window begins). Each class
is first come, first served; when both could go, leading orders go first, except a window's
first following order, which goes before them: following orders are never starved, even when
leading ones fill every window.

**An order's wait ends at its deadline.** ``within`` (seconds of the budget's clock, the time
left before the order may no longer be sent): when no slot can come by then, none is taken and
the caller is told so (the venue refuses the order unsent with ``SEND_DEADLINE_REASON``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

from genesis.clock import Clock, WallClock
from genesis.domain.orders import SendPriority
from genesis.venue.daily_orders import DEFAULT_DAILY_LIMIT, DEFAULT_DAILY_MARGIN, DailyOrders
from genesis.venue.order_windows import OrderWindows, Slot

__all__ = ["DEFAULT_FOLLOWING_SHARE", "DEFAULT_GUARD_SECONDS", "DEFAULT_LIMIT", "DEFAULT_WINDOW_SECONDS",
           "OrderBudget", "SEND_DEADLINE_REASON", "Slot", "account_key", "shared_budget"]

DEFAULT_LIMIT = 97  # of Binance spot's 100 new orders per 10 s
DEFAULT_WINDOW_SECONDS = 10.0
DEFAULT_FOLLOWING_SHARE = 0.15
DEFAULT_GUARD_SECONDS = 0.25
# why an order whose budget slot would come after its deadline was not sent
SEND_DEADLINE_REASON = "no slot in the account's order budget before the order's deadline; not sent"
_WAKE_AFTER_SECONDS = 0.001  # a waiter wakes this much after the instant it may go (clock resolution)


@dataclass(eq=False)
class _Waiter:
    priority: SendPriority
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # let out, or another look due
    slot: Slot | None = None


class OrderBudget:
    """New orders per fixed window of the exchange's clock, shared by an account's executions
    (module docstring). ``clock`` defaults to the wall clock. The counting is its
    ``OrderWindows``'; the budget queues the callers and lets them out in turn."""

    def __init__(self, limit: int = DEFAULT_LIMIT, window_seconds: float = DEFAULT_WINDOW_SECONDS,
                 following_share: float = DEFAULT_FOLLOWING_SHARE,
                 guard_seconds: float = DEFAULT_GUARD_SECONDS, clock: Clock | None = None,
                 daily_limit: int = DEFAULT_DAILY_LIMIT, daily_margin: int = DEFAULT_DAILY_MARGIN):
        self.windows = OrderWindows(limit, window_seconds, following_share, guard_seconds, clock or WallClock())
        self.limit, self.window_seconds = self.windows.limit, self.windows.window_seconds
        self.following_share, self.guard_seconds = self.windows.following_share, self.windows.guard_seconds
        self.clock: Clock = self.windows.clock
        self._queues: dict[SendPriority, deque[_Waiter]] = {p: deque() for p in SendPriority}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waited_seconds = 0.0  # total time callers spent waiting (observability)
        self.daily = DailyOrders(self.now, daily_limit, daily_margin)  # the account's orders in the UTC day

    @property
    def capacity(self) -> float:
        """Orders let out per window (observability)."""
        return float(self.limit)

    def now(self) -> float:
        """The exchange's time, in seconds since the epoch, as the budget reads it."""
        return self.windows.now()

    def index(self, at_seconds: float) -> int:
        """The window an instant of the exchange's clock falls in."""
        return self.windows.index(at_seconds)

    def available(self) -> float:
        """Orders the current window still has room for."""
        return float(self.windows.available())

    async def take(self, priority: SendPriority = SendPriority.LEADING,
                   within: float | None = None) -> Slot | None:
        """A slot for one new order, waiting for room (module docstring), or None when none can
        come within ``within`` seconds (None: no deadline): then the order must not be sent.
        The caller calls ``done`` on the slot once the order's answer came (or it failed)."""
        self._own_loop()
        asked = self.now()
        deadline = None if within is None else asked + within
        if within is not None and within <= 0:
            return None  # its deadline has passed
        me, queue = _Waiter(priority), self._queues[priority]
        queue.append(me)
        try:
            while True:
                now = self.now()
                self._dispatch(now)
                if me.slot is not None:
                    return me.slot
                opens = self.windows.opens_at(priority, now)
                if deadline is not None and (now >= deadline or opens > deadline):
                    return None  # no slot before its deadline
                # the head of its queue wakes when a slot may be free, to let it (and those
                # behind it) out; the others when they are let out, become the head, or give up
                wake = opens + _WAKE_AFTER_SECONDS if queue[0] is me else None
                if deadline is not None:
                    wake = deadline if wake is None else min(wake, deadline)
                me.wake.clear()
                await self.clock.wait_event(me.wake, None if wake is None else
                                            self.clock.now() + timedelta(seconds=wake - now))
        except BaseException:
            if me.slot is not None:  # let out, but its caller is gone: the order is not sent
                me.slot.done()
                me.slot = None
            raise
        finally:
            if me in queue:
                was_head = queue[0] is me
                queue.remove(me)
                if was_head and queue:
                    queue[0].wake.set()
            self.waited_seconds += max(0.0, self.now() - asked)

    # ------------------------------------------------------------------ internals
    def _dispatch(self, now: float) -> None:
        """Let out every waiter that may go at ``now``, in turn; a new head of a queue is woken
        to keep its queue's time."""
        leading, following = self._queues[SendPriority.LEADING], self._queues[SendPriority.FOLLOWING]
        heads = (leading[0] if leading else None, following[0] if following else None)
        windows = self.windows
        while (leading or following) and windows.full_window(now, now) is None:
            paced = bool(following) and windows.paced(now)
            if paced and (windows.following_in(windows.index(now)) == 0 or not leading):
                self._grant(following.popleft(), now)
            elif leading:
                self._grant(leading.popleft(), now)
            else:
                break
        for queue, head in zip((leading, following), heads):
            if queue and queue[0] is not head:
                queue[0].wake.set()

    def _grant(self, waiter: _Waiter, now: float) -> None:
        waiter.slot = self.windows.let_out(waiter.priority, now)
        waiter.wake.set()

    def _own_loop(self) -> None:
        # a process-wide budget may outlive an event loop: waiters of a loop that is gone are not
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._queues = {p: deque() for p in SendPriority}
            self.windows.forget_in_flight()


_budgets: dict[tuple[str, object], OrderBudget] = {}


def account_key(exchange_id: str, api_key: str | None) -> str:
    """Registry key of an account: exchange id plus a hash of the API key (never the key)."""
    digest = hashlib.sha256((api_key or "").encode("utf-8")).hexdigest()[:16]
    return f"{exchange_id}:{digest}"


def shared_budget(exchange_id: str, api_key: str | None, clock: Clock | None = None,
                  limit: int = DEFAULT_LIMIT, window_seconds: float = DEFAULT_WINDOW_SECONDS,
                  following_share: float = DEFAULT_FOLLOWING_SHARE,
                  guard_seconds: float = DEFAULT_GUARD_SECONDS, daily_limit: int = DEFAULT_DAILY_LIMIT,
                  daily_margin: int = DEFAULT_DAILY_MARGIN) -> OrderBudget:
    """The process-wide budget of one account on one clock (created on first use with these
    settings). Every wall clock is the same clock; another clock (a paper exchange's, which
    starts again with each exchange) gets a budget of its own."""
    clock = clock or WallClock()
    # the budget keeps its clock alive; the wall clock (read as the exchange's) is one clock
    on = "wall" if type(getattr(clock, "base", clock)) is WallClock else id(clock)
    key = (account_key(exchange_id, api_key), on)
    budget = _budgets.get(key)
    if budget is None:
        budget = _budgets[key] = OrderBudget(limit, window_seconds, following_share, guard_seconds, clock,
                                             daily_limit, daily_margin)
    return budget
