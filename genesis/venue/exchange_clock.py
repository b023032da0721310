"""The exchange's clock as the host reads it: host time less ccxt's measured ``timeDifference``.

Binance counts new orders in fixed windows of ITS clock (``genesis.venue.order_budget``); a host
clock off by more than the budget's guard (0.25 s) would put orders in the wrong window. ccxt
measures the difference (``load_time_difference``: ``options['timeDifference']``, host minus
exchange, in ms; with ``adjustForTimeDifference`` on every ``load_markets``) and signs requests
with it. ``ExchangeClock`` reads it at every ``now()``, so a resync (after a -1021) moves the
windows with it. Only the live wall clock is wrapped (``exchange_time``): a paper exchange's
simulated clock (``ScaledClock``, ``VirtualClock``) already is the exchange's time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, AsyncContextManager, Callable

from genesis.clock import Clock, WallClock


class ExchangeClock:
    """``base`` shifted to the exchange's time: ``now() = base.now() - difference()``, with
    ``difference`` the host's lead over the exchange in milliseconds (0 until measured)."""

    def __init__(self, base: Clock, difference: Callable[[], Any]):
        self.base, self._difference = base, difference
        self._read: Any = 0
        self._shift = timedelta(0)  # of the last difference read (read at every look)

    def _lead(self) -> timedelta:
        difference = self._difference()
        if difference != self._read:
            self._read = difference
            try:
                self._shift = timedelta(milliseconds=float(difference or 0))
            except (TypeError, ValueError):
                self._shift = timedelta(0)
        return self._shift

    def now(self) -> datetime:
        """The exchange's time now."""
        return self.base.now() - self._lead()

    async def sleep_until(self, when: datetime) -> None:
        """Return once the exchange's time is ``when``."""
        await self.base.sleep_until(when + self._lead())

    async def wait_event(self, event: asyncio.Event, until: datetime | None = None) -> bool:
        """Wait for ``event`` or for the exchange's time ``until``."""
        return await self.base.wait_event(event, None if until is None else until + self._lead())

    def actor(self) -> AsyncContextManager[None]:
        """The base clock's actor context."""
        return self.base.actor()


def exchange_time(clock: Clock, exchange: Any) -> Clock:
    """The clock an exchange's order windows are on: the wall clock less ccxt's measured
    ``timeDifference`` of ``exchange``; any other clock (a paper exchange's) as it is."""
    if type(clock) is not WallClock:
        return clock
    return ExchangeClock(clock, lambda: exchange.options.get("timeDifference"))
