"""The order budget's window accounting: pure counts, no waiting (``genesis.venue.order_budget``).

``OrderWindows`` keeps, per fixed window of the exchange's clock, our orders that arrived in it,
the exchange's own count heard for it and the following orders let out in it, plus the orders in
flight (``Slot``). From these it answers, for any instant, whether an order may be let out and
the earliest instant one could be: the rules are in ``order_budget``'s module docstring. The
budget's queues (who waits, who goes first) are ``OrderBudget``'s; this class never awaits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genesis.clock import Clock
from genesis.domain.orders import SendPriority

_WINDOWS_KEPT = 4
# following orders' pace quickens in a window's last FOLLOWING_TAIL: by FOLLOWING_TAIL_SHARE x
# limit more over it (``order_budget``'s module docstring)
FOLLOWING_TAIL = 0.2
FOLLOWING_TAIL_SHARE = 0.4


@dataclass(slots=True)
class _Window:
    own: int = 0  # our orders that arrived in it (or may have: their time unknown)
    seen: int = 0  # the exchange's count of the account's orders in it, the highest heard
    following: int = 0  # following orders let out in it (their pace)


class Slot:
    """One order let out by the budget: until ``done`` it counts in every window from the one
    it was let out in (less the guard) on; then in the window it arrived in (``order_budget``'s
    module docstring)."""

    def __init__(self, windows: "OrderWindows", first: int):
        self._windows, self.first = windows, first
        self.arrived: float | None = None  # its time on the exchange's clock, once known

    def observe(self, count: int | None, at_seconds: float | None = None) -> None:
        """The order's answer: ``count``, the exchange's count of new orders in the window the
        order arrived in (``X-MBX-ORDER-COUNT-10S``); ``at_seconds``, the order's time on the
        exchange's clock (its transaction time; None: not known)."""
        self.arrived = at_seconds
        if count is not None:
            self._windows.adopt(count, self.reached())

    def window_full(self, count: int | None = None) -> None:
        """The exchange refused the order for its window's count (-1015): no more in the
        windows it may have arrived in up to now, without the guard past ``now``: a refusal
        answered just before a boundary must not close the whole next window (were the order
        counted there after all, the next one is refused too and closes it then)."""
        windows = self._windows
        self._windows.adopt(max(count or 0, windows.limit),
                            range(self.first, max(self.first, windows.index(windows.now())) + 1))

    def done(self) -> None:
        """The answer came (or the call failed): the order is no longer in flight."""
        self._windows.landed(self)

    def reached(self) -> range:
        """The windows the order arrived in: its time's (less the guard: the exchange counts
        it when it receives it, just before), else (or when that time is off the windows it
        could have arrived in) every one since it was let out."""
        windows = self._windows
        since = range(self.first, windows.index(windows.now() + windows.guard_seconds) + 1)
        if self.arrived is not None and windows.index(self.arrived) in since:
            return range(max(self.first, windows.index(self.arrived - windows.guard_seconds)),
                         windows.index(self.arrived) + 1)
        return since


class OrderWindows:
    """Orders counted per fixed window of ``clock`` (the exchange's), and those in flight."""

    def __init__(self, limit: int, window_seconds: float, following_share: float, guard_seconds: float,
                 clock: Clock):
        if not limit >= 1 or not window_seconds > 0:
            raise ValueError("an order budget needs limit >= 1 and window_seconds > 0")
        if not 0 <= following_share <= 1:
            raise ValueError("an order budget needs 0 <= following_share <= 1 "
                             "(the share of a window following orders may use)")
        if not 0 <= guard_seconds < window_seconds / 2:
            raise ValueError("an order budget needs 0 <= guard_seconds < window_seconds / 2")
        self.limit, self.window_seconds = int(limit), float(window_seconds)
        self.following_share, self.guard_seconds = float(following_share), float(guard_seconds)
        self.clock = clock
        self._windows: dict[int, _Window] = {}
        self._in_flight: set[Slot] = set()

    def now(self) -> float:
        """The exchange's time, in seconds since the epoch, as the budget reads it."""
        return self.clock.now().timestamp()

    def index(self, at_seconds: float) -> int:
        """The window an instant of the exchange's clock falls in."""
        return math.floor(at_seconds / self.window_seconds)

    def available(self) -> int:
        """Orders the current window still has room for."""
        now = self.now()
        return max(0, self.limit - self.count(self.index(now), now))

    def let_out(self, priority: SendPriority, now: float) -> Slot:
        """An order of ``priority`` let out at ``now``: in flight from then on."""
        if priority is SendPriority.FOLLOWING:
            self._window(self.index(now)).following += 1
        slot = Slot(self, self._reach(now)[0])
        self._in_flight.add(slot)
        return slot

    def adopt(self, count: int, windows: range) -> None:
        """The exchange counted ``count`` new orders of the account in each of ``windows``."""
        for index in windows:
            window = self._window(index)
            window.seen = max(window.seen, int(count))

    def landed(self, slot: Slot) -> None:
        """``slot``'s order is no longer in flight: it counts in the window it arrived in."""
        if slot in self._in_flight:
            self._in_flight.discard(slot)
            for index in slot.reached():
                self._window(index).own += 1

    def forget_in_flight(self) -> None:
        """Drop the orders in flight (their event loop is gone: they were never answered)."""
        self._in_flight = set()

    def following_in(self, index: int) -> int:
        """Following orders let out in window ``index``."""
        window = self._windows.get(index)
        return window.following if window is not None else 0

    def count(self, index: int, now: float) -> int:
        """Orders counted in window ``index``: ours that arrived in it or the exchange's count,
        whichever is higher, plus ours in flight that may arrive in it (from ``now``'s view:
        a later window's are counted when it comes within reach)."""
        window = self._windows.get(index)
        counted = max(window.own, window.seen) if window is not None else 0
        if index <= self._reach(now)[1]:
            counted += sum(1 for slot in self._in_flight if slot.first <= index)
        return counted

    def full_window(self, at: float, now: float) -> int | None:
        """The last window an order let out at ``at`` may arrive in that has no room (as far as
        is known at ``now``), if any."""
        first, last = self._reach(at)
        full = [index for index in range(first, last + 1) if self.count(index, now) >= self.limit]
        return full[-1] if full else None

    def following_pace(self, elapsed: float) -> float:
        """Following orders a window lets out by ``elapsed`` (a fraction of it): ``following_share``
        x ``limit`` x ``elapsed`` + 1, and in its last ``FOLLOWING_TAIL`` up to
        ``FOLLOWING_TAIL_SHARE`` x ``limit`` more, evenly over it."""
        tail = max(0.0, elapsed - (1 - FOLLOWING_TAIL)) / FOLLOWING_TAIL
        return (self.following_share * elapsed + FOLLOWING_TAIL_SHARE * tail) * self.limit + 1

    def paced(self, now: float) -> bool:
        """Whether the window's pace lets one more following order out at ``now``."""
        index = self.index(now)
        return self.following_in(index) < self.following_pace(now / self.window_seconds - index)

    def opens_at(self, priority: SendPriority, now: float) -> float:
        """The earliest instant an order of ``priority`` could be let out (those queued before
        it not counted: a lower bound)."""
        at = now
        for _ in range(8):  # each step passes a full window or a pace step; a few at most
            full = self.full_window(at, now)
            if full is not None:  # out of its reach once the guard has passed its end
                at = max(at, (full + 1) * self.window_seconds + self.guard_seconds)
                continue
            if priority is SendPriority.LEADING or self.paced(at):
                return at
            index = self.index(at)
            # the pace allows one more once following_pace(elapsed) > following: before the
            # tail at (following - 1) / (share x limit); in it, on the steeper line
            needed = (self._windows[index].following - 1) / self.limit
            tail_from, share = 1 - FOLLOWING_TAIL, self.following_share
            elapsed = needed / share if share > 0 else math.inf
            if elapsed > tail_from:
                steeper = share + FOLLOWING_TAIL_SHARE / FOLLOWING_TAIL
                elapsed = (needed + FOLLOWING_TAIL_SHARE * tail_from / FOLLOWING_TAIL) / steeper
            return min((index + 1) * self.window_seconds, max(at, (index + elapsed) * self.window_seconds))
        return at

    def _reach(self, now: float) -> tuple[int, int]:
        """The windows an order let out at ``now`` may arrive in (the clock's guard)."""
        return self.index(now - self.guard_seconds), self.index(now + self.guard_seconds)

    def _window(self, index: int) -> _Window:
        window = self._windows.get(index)
        if window is None:
            window = self._windows[index] = _Window()
            oldest = self.index(self.now()) - _WINDOWS_KEPT
            for old in [i for i in self._windows if i < oldest]:
                del self._windows[old]
        return window
