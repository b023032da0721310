"""One ccxt request, its errors mapped (``genesis.venue.ccxt_errors``) and its weight counted.

``CcxtCalls`` is the plumbing every REST request of a ``CcxtVenue`` goes through: a private
decimal context, the mapping of ccxt's exceptions onto the engine's venue errors (logged), a
time resync on a timestamp error, the account's request weight read from each answer's headers,
and the retried steps of a longer read (``read_step``).
"""

from __future__ import annotations

import asyncio
import decimal
from typing import Any, Awaitable, Callable, TypeVar

import ccxt.async_support as ccxt
import structlog

from genesis.venue.base import RetryableVenueError
from genesis.venue.ccxt_errors import RATE_LIMITED, describe, map_ccxt_error
from genesis.venue.request_weight import RequestWeight

T = TypeVar("T")

READ_STEP_ATTEMPTS = 6
READ_STEP_BACKOFF_SECONDS = 0.25


class CcxtCalls:
    """Requests on ``ex`` (a ccxt exchange), counted in ``weight``; ``time_scale``: the
    exchange's clock runs this many times faster than the wall clock (its retry waits are in
    its own seconds)."""

    def __init__(self, ex: ccxt.Exchange, weight: RequestWeight, time_scale: float,
                 log: structlog.typing.FilteringBoundLogger):
        self.ex, self.weight, self.time_scale, self.log = ex, weight, time_scale, log

    def headers(self) -> Any:
        """The headers of the exchange's last answer (None before the first)."""
        return getattr(self.ex, "last_response_headers", None)

    async def call(self, what: str, fn: Callable[[], Awaitable[T]], *,
                   changes_state: bool = False, raw: bool = False) -> T:
        """Run one ccxt call. ``raw``: let ccxt errors through (the caller handles specific
        classes first, then ``mapped``); otherwise map them. Timestamp errors resync first.

        ccxt runs in a private decimal context: its ``decimal_to_precision`` sets the current
        context's rounding to ROUND_HALF_UP (and traps Underflow), which would otherwise change
        genesis's own Decimal rounding (ROUND_HALF_EVEN) for the rest of the process."""
        with decimal.localcontext():
            try:
                return await fn()
            except ccxt.InvalidNonce as exc:
                await self._resync_time(exc)
                raise self.mapped(exc, changes_state) from exc
            except ccxt.BaseError as exc:
                if isinstance(exc, RATE_LIMITED):
                    self.weight.rate_limited += 1
                if raw:
                    raise
                raise self.mapped(exc, changes_state) from exc
            finally:
                self.weight.observe(what, self.headers())

    async def read_step(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """One request of a longer read (a page of klines, the markets), retried a few times on a
        transient error (honouring Retry-After): one lost page must not fail, and restart, a
        read of 30 pages, which under a 20 % error rate would almost never succeed whole."""
        for attempt in range(READ_STEP_ATTEMPTS):
            try:
                return await self.call(what, fn)
            except RetryableVenueError as exc:
                if attempt + 1 == READ_STEP_ATTEMPTS:
                    raise
                wait = max(exc.retry_after_seconds, READ_STEP_BACKOFF_SECONDS * 2 ** attempt)
                await asyncio.sleep(wait / self.time_scale)  # the exchange's seconds, as its limits
        raise AssertionError("unreachable")

    def mapped(self, exc: Exception, changes_state: bool) -> Exception:
        """``exc`` as the engine's venue error (``map_ccxt_error``), logged."""
        headers = self.headers()
        mapped = map_ccxt_error(exc, changes_state=changes_state,
                                headers=headers if isinstance(exc, RATE_LIMITED) else None)
        self.log.warning("venue_error", error=describe(exc), mapped=type(mapped).__name__)
        return mapped

    async def _resync_time(self, exc: Exception) -> None:
        try:
            offset = await self.ex.load_time_difference()
            self.log.warning("venue_time_resynced", time_difference_ms=offset, error=describe(exc))
        except ccxt.BaseError as again:
            self.log.warning("venue_time_resync_failed", error=describe(again))
