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
room at once), so room is kept for them: ``FOLLOWING`` orders (a taker remainder, a re-send after
a restart; they have until their interval's end) are paced, at most ``following_share`` x
``limit`` x (elapsed fraction of the window) + 1 in a window. Each class is first come, first
served; when both could go, leading orders go first, except a window's first following order,
which goes before them: following orders are never starved, even when leading ones fill every
window.

**An order's wait ends at its deadline.** ``within`` (seconds of the budget's clock, the time
left before the order may no longer be sent): when no slot can come by then, none is taken and
the caller is told so (the venue refuses the order unsent with ``SEND_DEADLINE_REASON``).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

from genesis.clock import Clock, WallClock
from genesis.domain.orders import SendPriority
from genesis.venue.daily_orders import DailyOrders

DEFAULT_LIMIT = 97  # of Binance spot's 100 new orders per 10 s
DEFAULT_WINDOW_SECONDS = 10.0
DEFAULT_FOLLOWING_SHARE = 0.4
DEFAULT_GUARD_SECONDS = 0.25
# why an order whose budget slot would come after its deadline was not sent
SEND_DEADLINE_REASON = "no slot in the account's order budget before the order's deadline; not sent"
_WAKE_AFTER_SECONDS = 0.001  # a waiter wakes this much after the instant it may go (clock resolution)
_WINDOWS_KEPT = 4


@dataclass(slots=True)
class _Window:
    own: int = 0  # our orders that arrived in it (or may have: their time unknown)
    seen: int = 0  # the exchange's count of the account's orders in it, the highest heard
    following: int = 0  # following orders let out in it (their pace)


class Slot:
    """One order let out by the budget: until ``done`` it counts in every window from the one
    it was let out in (less the guard) on; then in the window it arrived in (module docstring)."""

    def __init__(self, budget: "OrderBudget", first: int):
        self._budget, self.first = budget, first
        self.arrived: float | None = None  # its time on the exchange's clock, once known

    def observe(self, count: int | None, at_seconds: float | None = None) -> None:
        """The order's answer: ``count``, the exchange's count of new orders in the window the
        order arrived in (``X-MBX-ORDER-COUNT-10S``); ``at_seconds``, the order's time on the
        exchange's clock (its transaction time; None: not known)."""
        self.arrived = at_seconds
        if count is not None:
            self._budget.adopt(count, self._windows())

    def window_full(self, count: int | None = None) -> None:
        """The exchange refused the order for its window's count (-1015): no more this window."""
        self._budget.adopt(max(count or 0, self._budget.limit), self._windows())

    def done(self) -> None:
        """The answer came (or the call failed): the order is no longer in flight."""
        self._budget.landed(self)

    def _windows(self) -> range:
        """The windows the order arrived in: its time's (less the guard: the exchange counts
        it when it receives it, just before), else (or when that time is off the windows it
        could have arrived in) every one since it was let out."""
        budget = self._budget
        since = range(self.first, budget.index(budget.now() + budget.guard_seconds) + 1)
        if self.arrived is not None and budget.index(self.arrived) in since:
            return range(max(self.first, budget.index(self.arrived - budget.guard_seconds)),
                         budget.index(self.arrived) + 1)
        return since


@dataclass(eq=False)
class _Waiter:
    priority: SendPriority
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # let out, or another look due
    slot: Slot | None = None


class OrderBudget:
    """New orders per fixed window of the exchange's clock, shared by an account's executions
    (module docstring). ``clock`` defaults to the wall clock."""

    def __init__(self, limit: int = DEFAULT_LIMIT, window_seconds: float = DEFAULT_WINDOW_SECONDS,
                 following_share: float = DEFAULT_FOLLOWING_SHARE,
                 guard_seconds: float = DEFAULT_GUARD_SECONDS, clock: Clock | None = None):
        if not limit >= 1 or not window_seconds > 0:
            raise ValueError("an order budget needs limit >= 1 and window_seconds > 0")
        if not 0 <= following_share <= 1:
            raise ValueError("an order budget needs 0 <= following_share <= 1 "
                             "(the share of a window following orders may use)")
        if not 0 <= guard_seconds < window_seconds / 2:
            raise ValueError("an order budget needs 0 <= guard_seconds < window_seconds / 2")
        self.limit, self.window_seconds = int(limit), float(window_seconds)
        self.following_share, self.guard_seconds = float(following_share), float(guard_seconds)
        self.clock: Clock = clock or WallClock()
        self._windows: dict[int, _Window] = {}
        self._in_flight: set[Slot] = set()
        self._queues: dict[SendPriority, deque[_Waiter]] = {p: deque() for p in SendPriority}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waited_seconds = 0.0  # total time callers spent waiting (observability)
        self.daily = DailyOrders(self.now)  # the account's orders in the exchange's UTC day

    @property
    def capacity(self) -> float:
        """Orders let out per window (observability)."""
        return float(self.limit)

    def now(self) -> float:
        """The exchange's time, in seconds since the epoch, as the budget reads it."""
        return self.clock.now().timestamp()

    def index(self, at_seconds: float) -> int:
        """The window an instant of the exchange's clock falls in."""
        return math.floor(at_seconds / self.window_seconds)

    def available(self) -> float:
        """Orders the current window still has room for."""
        now = self.now()
        return float(max(0, self.limit - self._count(self.index(now), now)))

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
                opens = self._opens_at(priority, now)
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

    def adopt(self, count: int, windows: range) -> None:
        """The exchange counted ``count`` new orders of the account in each of ``windows``."""
        for index in windows:
            window = self._window(index)
            window.seen = max(window.seen, int(count))

    def landed(self, slot: Slot) -> None:
        """``slot``'s order is no longer in flight: it counts in the window it arrived in."""
        if slot in self._in_flight:
            self._in_flight.discard(slot)
            for index in slot._windows():
                self._window(index).own += 1

    # ------------------------------------------------------------------ internals
    def _dispatch(self, now: float) -> None:
        """Let out every waiter that may go at ``now``, in turn; a new head of a queue is woken
        to keep its queue's time."""
        leading, following = self._queues[SendPriority.LEADING], self._queues[SendPriority.FOLLOWING]
        heads = (leading[0] if leading else None, following[0] if following else None)
        while (leading or following) and self._full_window(now, now) is None:
            paced = bool(following) and self._paced(now)
            window = self._windows.get(self.index(now))
            if paced and (window is None or window.following == 0 or not leading):
                self._grant(following.popleft(), now)
            elif leading:
                self._grant(leading.popleft(), now)
            else:
                break
        for queue, head in zip((leading, following), heads):
            if queue and queue[0] is not head:
                queue[0].wake.set()

    def _grant(self, waiter: _Waiter, now: float) -> None:
        if waiter.priority is SendPriority.FOLLOWING:
            self._window(self.index(now)).following += 1
        waiter.slot = Slot(self, self._reach(now)[0])
        self._in_flight.add(waiter.slot)
        waiter.wake.set()

    def _reach(self, now: float) -> tuple[int, int]:
        """The windows an order let out at ``now`` may arrive in (the clock's guard)."""
        return self.index(now - self.guard_seconds), self.index(now + self.guard_seconds)

    def _count(self, index: int, now: float) -> int:
        """Orders counted in window ``index``: ours that arrived in it or the exchange's count,
        whichever is higher, plus ours in flight that may arrive in it (from ``now``'s view:
        a later window's are counted when it comes within reach)."""
        window = self._windows.get(index)
        counted = max(window.own, window.seen) if window is not None else 0
        if index <= self._reach(now)[1]:
            counted += sum(1 for slot in self._in_flight if slot.first <= index)
        return counted

    def _full_window(self, at: float, now: float) -> int | None:
        """The last window an order let out at ``at`` may arrive in that has no room (as far as
        is known at ``now``), if any."""
        first, last = self._reach(at)
        full = [index for index in range(first, last + 1) if self._count(index, now) >= self.limit]
        return full[-1] if full else None

    def _paced(self, now: float) -> bool:
        """Whether the window's pace lets one more following order out at ``now``."""
        elapsed = now / self.window_seconds - self.index(now)
        allowed = self.following_share * self.limit * elapsed + 1
        window = self._windows.get(self.index(now))
        return (window.following if window is not None else 0) < allowed

    def _opens_at(self, priority: SendPriority, now: float) -> float:
        """The earliest instant an order of ``priority`` could be let out (those queued before
        it not counted: a lower bound)."""
        at = now
        for _ in range(8):  # each step passes a full window or a pace step; a few at most
            full = self._full_window(at, now)
            if full is not None:  # out of its reach once the guard has passed its end
                at = max(at, (full + 1) * self.window_seconds + self.guard_seconds)
                continue
            if priority is SendPriority.LEADING or self._paced(at):
                return at
            index = self.index(at)
            next_window = (index + 1) * self.window_seconds
            if self.following_share == 0:
                return next_window
            # the pace allows one more once share * limit * elapsed + 1 > following
            elapsed = (self._windows[index].following - 1) / (self.following_share * self.limit)
            return min(next_window, max(at, (index + elapsed) * self.window_seconds))
        return at

    def _window(self, index: int) -> _Window:
        window = self._windows.get(index)
        if window is None:
            window = self._windows[index] = _Window()
            oldest = self.index(self.now()) - _WINDOWS_KEPT
            for old in [i for i in self._windows if i < oldest]:
                del self._windows[old]
        return window

    def _own_loop(self) -> None:
        # a process-wide budget may outlive an event loop: waiters of a loop that is gone are not
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._queues = {p: deque() for p in SendPriority}
            self._in_flight = set()


_budgets: dict[tuple[str, object], OrderBudget] = {}


def account_key(exchange_id: str, api_key: str | None) -> str:
    """Registry key of an account: exchange id plus a hash of the API key (never the key)."""
    digest = hashlib.sha256((api_key or "").encode("utf-8")).hexdigest()[:16]
    return f"{exchange_id}:{digest}"


def shared_budget(exchange_id: str, api_key: str | None, clock: Clock | None = None,
                  limit: int = DEFAULT_LIMIT, window_seconds: float = DEFAULT_WINDOW_SECONDS,
                  following_share: float = DEFAULT_FOLLOWING_SHARE,
                  guard_seconds: float = DEFAULT_GUARD_SECONDS) -> OrderBudget:
    """The process-wide budget of one account on one clock (created on first use with these
    settings). Every wall clock is the same clock; another clock (a paper exchange's, which
    starts again with each exchange) gets a budget of its own."""
    clock = clock or WallClock()
    # the budget keeps its clock alive; the wall clock (read as the exchange's) is one clock
    on = "wall" if type(getattr(clock, "base", clock)) is WallClock else id(clock)
    key = (account_key(exchange_id, api_key), on)
    budget = _budgets.get(key)
    if budget is None:
        budget = _budgets[key] = OrderBudget(limit, window_seconds, following_share, guard_seconds, clock)
    return budget
