"""The narrow ports the slice executor and reconciliation work through (never the runner).

The runner builds them: ``VenuePort`` is its ``VenueCaller`` (retries, unknown outcomes
resolved by client order id), ``Append`` its durable append (returns the folded aggregate),
``KillPointPort`` the kill points of the injected ``engine.hooks.EngineHooks`` (none armed by
default).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Awaitable, Callable, ContextManager, Protocol, Sequence, TypeVar

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.orders import BookTop, OrderReport, OrderRequest

T = TypeVar("T")


class VenuePort(Protocol):
    """Venue calls, retried and made safe (``engine.venue_calls.VenueCaller`` satisfies it)."""

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A read (market data, sizing on market data), retried until it answers."""
        ...

    async def book_top(self, symbol: str) -> BookTop:
        """Best bid and ask now."""
        ...

    @property
    def measures_traded_volume(self) -> bool:
        """Whether ``traded_volume`` can answer (the venue has the capability)."""
        ...

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Base volume the market traded in ``[start, min(end, now))``; None: unknown."""
        ...

    def traded_volume_waiter(self, symbol: str, start: datetime,
                             volume: Decimal) -> ContextManager[asyncio.Event | None]:
        """An event set once ``volume`` has traded since ``start`` (None: the venue cannot
        tell, look on a timer)."""
        ...

    async def place(self, request: OrderRequest, intended_at: datetime,
                    deadline: datetime | None = None) -> OrderReport:
        """Place an intended order exactly once (``ForeignOrderError``: its id is taken), never
        sending it at or after ``deadline``."""
        ...

    async def finish(self, request: OrderRequest, report: OrderReport) -> OrderReport:
        """Make the order final: cancel what still rests."""
        ...

    async def lookup_intended(self, request: OrderRequest, intended_at: datetime) -> OrderReport:
        """The order held under the request's client id, if it is the one intended."""
        ...

    def sent_by_ms(self) -> int | None:
        """The venue's request clock now: a bound on any request sent before (None: unstamped)."""
        ...

    async def settled_lookup(self, request: OrderRequest, intended_at: datetime,
                             sent_by_ms: int | None = None) -> OrderReport:
        """``lookup_intended`` once no earlier request under the id can still be accepted."""
        ...


class Append(Protocol):
    """Append events durably (retrying storage faults), then return the folded aggregate."""

    async def __call__(self, events: list[ev.Event]) -> Execution: ...


class Benchmark(Protocol):
    """Market VWAP over the window so far and our average against it (bps, + = worse),
    counting ``extra_fills`` about to be appended."""

    async def __call__(self, agg: Execution, extra_fills: Sequence[ev.FillRecorded] = ()
                       ) -> tuple[Decimal | None, Decimal | None]: ...


class KillPointPort(Protocol):
    """Named points a test or chaos run may act at: ``engine.killpoints.KillPoints`` satisfies
    it (the runner passes its ``EngineHooks.kill_points``; ``NO_KILL_POINTS`` does nothing)."""

    def reach(self, name: str) -> None: ...

    def armed(self, name: str) -> bool: ...
