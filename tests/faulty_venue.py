"""A venue wrapper for tests that makes ``place_order`` fail on demand: the simulated venue
itself carries no fault injection."""

from __future__ import annotations

from collections import deque
from typing import Any

from genesis.domain.orders import OrderReport, OrderRequest
from genesis.venue.base import VenueError


class FaultyVenue:
    """Everything is the wrapped venue's, except that the next ``place_order`` calls can be made
    to raise (``fail_next``)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self._faults: deque[tuple[VenueError, bool]] = deque()

    def fail_next(self, n: int, error: VenueError, after_accept: bool = False) -> None:
        """Make the next ``n`` ``place_order`` calls raise ``error``; with ``after_accept`` the
        order is first accepted (and filled as usual), as after a timeout on the response."""
        self._faults.extend((error, after_accept) for _ in range(n))

    async def place_order(self, request: OrderRequest) -> OrderReport:
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and not fault[1]:
            raise fault[0]
        report = await self.inner.place_order(request)
        if fault is not None:
            raise fault[0]
        return report

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
