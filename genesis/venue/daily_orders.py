"""The account's new orders in the exchange's UTC day, against its daily limit.

**The rule.** Binance spot also counts an account's new orders per day (the ``ORDERS`` limit of
interval ``DAY``: 200,000 in the recorded exchangeInfo); once the day's count reaches it, every
new order is refused (HTTP 429, -1015) until the UTC day rolls. The paper exchange
(``genesis.paper.limits``, ``orders_per_day``) does the same on its clock.

**What is counted.** Every order answer carries the day's count (``X-MBX-ORDER-COUNT-1D``, orders
another process or a person sent included); ``DailyOrders`` keeps the highest heard in the
current day of the exchange's clock, plus one for each order let out since (an answer that
counts it replaces that guess, never lowers the count). A new day starts from zero.

**What happens at the limit.** When the count is at ``limit - margin`` the order is refused
unsent, at once, with a reason that names the daily limit, the count and when the day rolls
(``claim``): the venue raises it as a permanent error, so the order is recorded as rejected
with that reason, exactly as an order whose deadline passed in the 10 s budget. Holding the
order for hours until the day rolls would be a silent guess about whether it is still wanted;
a refusal is never sent, so it can never be sent twice. ``margin`` absorbs orders in flight
and orders sent by hand. An exchange's -1015 for the day (``ccxt_errors.is_daily_order_limit``: a count
this process did not know of, or a ``daily_limit`` set above the account's) makes the day full
(``reached``): the next orders are refused unsent until the day rolls.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Callable

DEFAULT_DAILY_LIMIT = 200_000  # Binance spot's new orders per account per UTC day
DEFAULT_DAILY_MARGIN = 100
DAY_SECONDS = 86_400


class DailyOrderLimitReached(Exception):
    """The account's new orders today are at the daily limit less the margin: not sent."""


class DailyOrders:
    """New orders of one account in the exchange's current UTC day (module docstring).
    ``now``: the exchange's time in seconds since the epoch (the order budget's clock)."""

    def __init__(self, now: Callable[[], float], limit: int = DEFAULT_DAILY_LIMIT,
                 margin: int = DEFAULT_DAILY_MARGIN):
        if not limit >= 1 or not 0 <= margin < limit:
            raise ValueError("a daily order limit needs limit >= 1 and 0 <= margin < limit")
        self.limit, self.margin, self._now = int(limit), int(margin), now
        self.day: int | None = None
        self.count = 0  # the day's orders: the highest count heard, plus ours let out since
        self.refused = 0  # orders refused unsent for the daily limit (observability)

    @staticmethod
    def day_of(at_seconds: float) -> int:
        """The UTC day an instant of the exchange's clock falls in."""
        return math.floor(at_seconds / DAY_SECONDS)

    @property
    def allowed(self) -> int:
        """Orders let out a day: the limit less the margin."""
        return self.limit - self.margin

    def claim(self) -> None:
        """Count one new order about to be sent, or raise ``DailyOrderLimitReached`` (with the
        reason to record) when the day's count is at the limit less the margin."""
        now = self._now()
        self._roll(self.day_of(now))
        if self.count >= self.allowed:
            self.refused += 1
            rolls = datetime.fromtimestamp((self.day_of(now) + 1) * DAY_SECONDS, timezone.utc)
            raise DailyOrderLimitReached(
                f"the account's daily order limit is reached: {self.count} new orders today "
                f"(exchange's UTC day), limit {self.limit} less a margin of {self.margin}; "
                f"not sent; new orders are let out again when the day rolls at "
                f"{rolls.isoformat().replace('+00:00', 'Z')}")
        self.count += 1

    def observe(self, count: int | None, at_seconds: float | None = None) -> None:
        """An order answer's ``X-MBX-ORDER-COUNT-1D`` (None: absent); ``at_seconds``: the
        order's time on the exchange's clock (None: now)."""
        if count is None:
            return
        day = self.day_of(self._now() if at_seconds is None else at_seconds)
        self._roll(day)
        if day == self.day:
            self.count = max(self.count, int(count))

    def unclaim(self) -> None:
        """An order claimed but not sent (no budget slot before its deadline, its caller gone,
        refused for its window's count and not sent again): it does not count."""
        self.count = max(0, self.count - 1)

    def reached(self) -> None:
        """The exchange refused an order for the day's count: no more new orders today."""
        self._roll(self.day_of(self._now()))
        self.count = max(self.count, self.allowed)

    def _roll(self, day: int) -> None:
        if self.day is None or day > self.day:
            self.day, self.count = day, 0
