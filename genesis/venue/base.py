"""The venue contract the engine relies on, and the error classes every venue maps onto.

Error classes tell the engine what it may do next:

* ``RetryableVenueError``: the request certainly did not take effect (rate limit before
  send, ...). Retrying with the same client order id is safe.
* ``MarketDataUnavailable`` (a ``RetryableVenueError``): the venue has no market data for the
  symbol it can trust (its stream has been down past its limit). The engine holds new slices
  of the executions on that symbol, records the hold (``SlicingHeld``) and retries.
* ``UnknownOutcomeError``: the request may have reached the venue (timeout, dropped
  connection, 5xx). The engine must look the order up by client order id before anything else.
* ``DuplicateOrderError``: the venue already has an order with this client id: fetch it.
* ``PermanentVenueError``: the venue refused the order for good (insufficient funds,
  invalid order, unknown symbol, auth). The slice fails with the reason recorded.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ContextManager, Protocol, runtime_checkable

from genesis.domain.instrument import Instrument
from genesis.domain.orders import BookTop, OrderReport, OrderRequest


class VenueError(Exception):
    """Base of every error a venue raises towards the engine."""


class RetryableVenueError(VenueError):
    """Nothing happened on the venue; the same request may be retried after ``retry_after_seconds``."""

    def __init__(self, message: str, retry_after_seconds: float = 1.0):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class MarketDataUnavailable(RetryableVenueError):
    """No market data for ``symbol`` the venue can trust: its stream has been down for
    ``down_seconds`` (wall time), past the venue's limit. Nothing was sent; retry later."""

    def __init__(self, message: str, symbol: str, down_seconds: float, retry_after_seconds: float = 1.0):
        super().__init__(message, retry_after_seconds)
        self.symbol = symbol
        self.down_seconds = down_seconds


class UnknownOutcomeError(VenueError):
    """The request may or may not have taken effect: resolve by client order id first."""


class AcceptedUnreportedError(UnknownOutcomeError):
    """The venue accepted the order, but its report could not be completed: it exists, so it
    is only looked up (never sent again, never taken as not found)."""


class DuplicateOrderError(VenueError):
    """An order with this client order id already exists on the venue."""


class PermanentVenueError(VenueError):
    """The venue refused the request; retrying it unchanged cannot succeed."""


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar. ``open_time`` is the bar's start (UTC); ``volume`` is in base currency."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def typical_price(self) -> Decimal:
        return (self.high + self.low + self.close) / 3


@runtime_checkable
class Venue(Protocol):
    """What the engine needs from an exchange. All prices and quantities are ``Decimal``."""

    name: str

    async def instruments(self) -> dict[str, Instrument]:
        """Trading rules of every symbol the venue lists, keyed by unified symbol (``BTC/USDT``)."""
        ...

    async def book_top(self, symbol: str) -> BookTop:
        """Best bid/ask now."""
        ...

    async def place_order(self, request: OrderRequest) -> OrderReport:
        """Place a child order. Raises a ``VenueError`` subclass on failure."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """Cancel an open order; returns its final report (fills included)."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """Look an order up by client order id; status ``NOT_FOUND`` when the venue never saw it."""
        ...

    async def equity_usdt(self) -> Decimal:
        """Account equity valued in USDT (used by the tier gate)."""
        ...

    async def candles(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        """1-minute candles with ``start <= open_time < end`` that have closed by now."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class MeasuresTradedVolume(Protocol):
    """An optional venue capability: the volume the market has actually traded, which the
    participation cap is enforced against (``docs/vwap.md``, "The cap against traded volume").
    The simulated venue implements it exactly; a live venue may from its trade stream or
    candles. A venue without it: the cap holds against the forecast only."""

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Base volume traded in ``[start, min(end, now))``; None when unknown."""
        ...


@runtime_checkable
class WakesOnTradedVolume(Protocol):
    """An optional venue capability beside ``MeasuresTradedVolume``: a venue that counts the
    tape as it trades (the streaming ccxt venue's trade stream) can wake a slice waiting for
    room under the participation cap the moment enough has traded, instead of at its next timed
    look (``genesis.engine.cap_room``). A wake is only a hint to read ``traded_volume`` again."""

    def traded_volume_waiter(self, symbol: str, start: datetime,
                             volume: Decimal) -> ContextManager[asyncio.Event]:
        """An event set, while the ``with`` block lasts, once the volume counted in
        ``[start, now)`` reaches ``volume`` (it may never be: keep a timed look beside it)."""
        ...


@runtime_checkable
class FencesResends(Protocol):
    """An optional venue capability: its order requests are stamped on the exchange's clock and
    refused by the exchange once older than their receive window (``genesis.venue.send_fence``),
    so the engine can know when an earlier request under a client order id can no longer
    become an order (``CcxtVenue`` on a Binance-family exchange: the only one sent the stamp)."""

    def request_clock_ms(self) -> int:
        """The exchange's request clock now (milliseconds since the epoch)."""
        ...

    async def settle_sends(self, client_order_id: str, sent_by_ms: int | None = None) -> None:
        """Return once no request under ``client_order_id`` sent by this venue, or by another
        process stamping no later than ``sent_by_ms``, can still be accepted by the exchange."""
        ...


@runtime_checkable
class RefusesSeenClientIds(Protocol):
    """An optional venue capability: the venue refuses every client order id it has ever seen,
    open or final (``DuplicateOrderError``; the simulated venue), so a re-send under the same id
    can never become a second order and needs no wait. A venue with neither this nor
    ``FencesResends`` (most real exchanges refuse an id among open orders only) may still take,
    or show, an earlier request late: an order of unknown outcome is only looked up there
    (``genesis.engine.venue_calls``)."""

    refuses_seen_client_ids: bool  # declared True by the venue (``refuses_seen_ids``)


# what ``capable`` found, per venue object and capability: a protocol ``isinstance`` walks the
# protocol's members every time (~10 us each on 3.11), and it is asked per execution and per slice
_CAPABILITIES: "weakref.WeakKeyDictionary[object, dict[type, bool]]" = weakref.WeakKeyDictionary()


def refuses_seen_ids(venue: object) -> bool:
    """Whether ``venue`` declares ``RefusesSeenClientIds`` (the attribute present and True)."""
    found = capable(venue, RefusesSeenClientIds)
    return found is not None and found.refuses_seen_client_ids is True


def capable(venue: object, capability: type) -> Any:
    """``venue`` when it has ``capability`` (one of the optional capabilities above), else None.
    A wrapper that forwards the venue's calls (``WatchedVenue``: its ``wrapped`` venue) has the
    capabilities of the venue it wraps: from Python 3.12, ``isinstance`` against a protocol
    looks attributes up statically and no longer sees what a wrapper's ``__getattr__`` forwards.
    The wrapper itself is returned, so calls through it are still watched. A venue's
    capabilities are looked up once per venue object (its methods do not come and go); one
    that cannot be weakly referenced is looked up every time."""
    try:
        known = _CAPABILITIES.get(venue)
        if known is None:
            known = _CAPABILITIES[venue] = {}
    except TypeError:  # not hashable, or not weakly referenceable
        return venue if _has_capability(venue, capability) else None
    has = known.get(capability)
    if has is None:
        has = known[capability] = _has_capability(venue, capability)
    return venue if has else None


def _has_capability(venue: object, capability: type) -> bool:
    return isinstance(venue, capability) or isinstance(getattr(venue, "wrapped", None), capability)
