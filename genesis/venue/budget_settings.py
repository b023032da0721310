"""The account order budget's settings (``ccxt.order_budget`` in the runtime config) and the
budget they make: the 10 s windows' ``OrderBudget`` and its ``DailyOrders``, on the exchange's
clock (``exchange_time``)."""

from __future__ import annotations

from dataclasses import dataclass

from genesis.clock import Clock
from genesis.venue.daily_orders import DEFAULT_DAILY_LIMIT, DEFAULT_DAILY_MARGIN
from genesis.venue.order_budget import (DEFAULT_FOLLOWING_SHARE, DEFAULT_GUARD_SECONDS, DEFAULT_LIMIT,
                                        DEFAULT_WINDOW_SECONDS, OrderBudget, shared_budget)


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """``limit`` new orders per ``window_seconds`` fixed window, ``following_share`` of it for
    following orders, ``guard_seconds`` of clock error (``genesis.venue.order_budget``);
    ``daily_limit`` new orders per UTC day, of which ``daily_margin`` are left unused
    (``genesis.venue.daily_orders``)."""

    limit: int = DEFAULT_LIMIT
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    following_share: float = DEFAULT_FOLLOWING_SHARE
    guard_seconds: float = DEFAULT_GUARD_SECONDS
    daily_limit: int = DEFAULT_DAILY_LIMIT
    daily_margin: int = DEFAULT_DAILY_MARGIN

    def shared(self, exchange_id: str, api_key: str | None, clock: Clock) -> OrderBudget:
        """The account's process-wide budget on ``clock`` (made with these settings on first
        use; a later venue of the same account shares the first one's)."""
        return shared_budget(exchange_id, api_key, clock, self.limit, self.window_seconds,
                             self.following_share, self.guard_seconds, self.daily_limit, self.daily_margin)
