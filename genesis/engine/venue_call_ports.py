"""The ports a ``VenueCaller`` (``genesis.engine.venue_calls``) reports to: the slicing hold
while market data is unavailable, and the alarm for an order whose outcome stays unknown."""

from __future__ import annotations

from typing import Protocol

from genesis.domain.orders import OrderRequest
from genesis.venue.base import MarketDataUnavailable


class SlicingHold(Protocol):
    """Where a ``VenueCaller`` reports market data unavailable and back
    (``genesis.engine.market_hold.MarketHold``)."""

    held: bool

    async def hold(self, error: MarketDataUnavailable) -> None: ...

    async def release(self) -> None: ...

    def interrupts(self) -> bool: ...

    async def wait(self, seconds: float) -> None:
        """Wait ``seconds`` before the next try, less when something interrupts the hold."""
        ...


class UnknownOutcomeAlarm(Protocol):
    """Where a ``VenueCaller`` reports an order still unknown well past its deadline, and the
    venue showing it at last (``genesis.engine.outcome_alarm.OutcomeAlarm``)."""

    async def raise_alarm(self, request: OrderRequest, past_deadline_seconds: float, lookups: int,
                          lookup_every_seconds: float) -> None: ...

    async def clear(self, request: OrderRequest) -> None: ...
