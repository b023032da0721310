"""A venue wrapper for tests that makes ``place_order`` fail on demand, and can keep orders out
of lookups for a while: the simulated venue itself carries no fault injection."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

from genesis.clock import Clock
from genesis.domain.orders import OrderReport, OrderRequest, OrderStatus
from genesis.venue.base import VenueError


class FaultyVenue:
    """Everything is the wrapped venue's, except that the next ``place_order`` calls can be made
    to raise (``fail_next``)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self._faults: deque[tuple[VenueError, bool]] = deque()
        self._hidden: tuple[Clock, datetime | None] | None = None
        self.sends: list[tuple[str, datetime | None]] = []  # every place_order: client id, time (clock known)

    def hide_orders(self, clock: Clock, until: datetime | None) -> None:
        """``fetch_order`` answers ``NOT_FOUND`` before ``until`` (None: always), as a venue
        slow to show an order it took."""
        self._hidden = (clock, until)

    def fail_next(self, n: int, error: VenueError, after_accept: bool = False) -> None:
        """Make the next ``n`` ``place_order`` calls raise ``error``; with ``after_accept`` the
        order is first accepted (and filled as usual), as after a timeout on the response."""
        self._faults.extend((error, after_accept) for _ in range(n))

    async def place_order(self, request: OrderRequest) -> OrderReport:
        self.sends.append((request.client_order_id, self._hidden[0].now() if self._hidden else None))
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and not fault[1]:
            raise fault[0]
        report = await self.inner.place_order(request)
        if fault is not None:
            raise fault[0]
        return report

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        if self._hidden is not None:
            clock, until = self._hidden
            if until is None or clock.now() < until:
                return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, Decimal(0))
        return await self.inner.fetch_order(symbol, client_order_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
