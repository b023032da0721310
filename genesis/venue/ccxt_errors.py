"""ccxt exceptions mapped onto the engine's venue error classes (``genesis.venue.base``).

The rules:

* ``DDoSProtection`` and ``RateLimitExceeded`` (Binance HTTP 429 and 418, -1003): nothing
  happened -> ``RetryableVenueError`` with the server's ``Retry-After`` (or the ban end of a
  418) as ``retry_after_seconds``.
  Binance -1015 "Too many new orders" (per 10 s) is one of them (``is_window_order_limit``): the
  venue first asks its order budget for a later window itself.
* ``InvalidNonce`` (Binance -1021, timestamp outside recvWindow): nothing happened; the venue
  resynchronises its time offset first -> ``RetryableVenueError``.
* ``RequestTimeout``, ``ExchangeNotAvailable``, any other ``NetworkError`` or
  ``OperationFailed`` (HTTP 5xx, dropped connection, "execution status unknown"): when the
  request may have reached the exchange and changes state (placing, cancelling) ->
  ``UnknownOutcomeError`` (resolve by client order id); when the TCP connection was never
  established, or for a read -> ``RetryableVenueError``.
* ``InvalidOrder`` whose text carries Binance ``-2010 Duplicate order sent.`` ->
  ``DuplicateOrderError``: the order exists and must be fetched, never re-sent.
* ``InsufficientFunds``, ``InvalidOrder``, ``BadSymbol``, ``BadRequest``,
  ``AuthenticationError`` (``PermissionDenied``...), ``NotSupported``, other
  ``ExchangeError`` -> ``PermanentVenueError``. (An unclassified ``ExchangeError`` on an order
  placement is ``UnknownOutcomeError`` instead: the engine then looks the order up.)

``OrderNotFound`` is handled by the venue itself (``NOT_FOUND`` report), not here.
"""

from __future__ import annotations

import re
import time
from typing import Mapping

import aiohttp
import ccxt.async_support as ccxt

from genesis.venue.base import (DuplicateOrderError, PermanentVenueError, RetryableVenueError,
                                UnknownOutcomeError, VenueError)
from genesis.venue.credentials import redact_text

DEFAULT_RETRY_AFTER_SECONDS = 1.0
BAN_RETRY_AFTER_SECONDS = 60.0  # 418 without a usable ban end
_BANNED_UNTIL_RE = re.compile(r"banned until (\d{13})")
_HTTP_STATUS_RE = re.compile(r"\b(418|429)\b")
DUPLICATE_MARKERS = ("Duplicate order sent",)
ORDER_LIMIT_MARKER = "Too many new orders"
# not related by inheritance in ccxt 4.5: both derive from NetworkError
RATE_LIMITED = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)


def describe(exc: BaseException) -> str:
    """``ClassName: message`` with signatures and registered secrets masked."""
    return f"{type(exc).__name__}: {redact_text(str(exc))}"


def is_duplicate_order(exc: BaseException) -> bool:
    """ccxt raises plain ``InvalidOrder`` for Binance ``-2010 Duplicate order sent.``."""
    return isinstance(exc, ccxt.InvalidOrder) and any(m in str(exc) for m in DUPLICATE_MARKERS)


def is_window_order_limit(exc: BaseException) -> bool:
    """Binance -1015 "Too many new orders; current limit is N orders per 10 SECOND." (HTTP
    429, raised by ccxt as ``DDoSProtection`` or ``RateLimitExceeded``): the order was not
    placed; the next window has room again. The daily count's -1015 ("per 1 DAY") is not."""
    return isinstance(exc, RATE_LIMITED) and _new_order_limit(str(exc)) and "DAY" not in str(exc)


def is_daily_order_limit(exc: BaseException) -> bool:
    """Binance -1015 "Too many new orders; current limit is N orders per 1 DAY." (not placed)."""
    return _new_order_limit(str(exc)) and "DAY" in str(exc)


def _new_order_limit(text: str) -> bool:
    """A -1015: the account's new orders are at one of their limits (the order was not placed)."""
    return "-1015" in text or ORDER_LIMIT_MARKER in text


def retry_after_seconds(exc: BaseException, headers: Mapping[str, str] | None,
                        now_ms: int | None = None) -> float:
    """How long to wait after a 429/418: ``Retry-After`` header, else the ban end in a 418
    body, else a default (1 s for 429, 60 s for 418)."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    text = str(exc)
    banned = _BANNED_UNTIL_RE.search(text)
    if banned:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return max(0.0, (int(banned.group(1)) - now_ms) / 1000)
    status = _HTTP_STATUS_RE.search(text)
    if status and status.group(1) == "418":
        return BAN_RETRY_AFTER_SECONDS
    return DEFAULT_RETRY_AFTER_SECONDS


def map_ccxt_error(exc: Exception, *, changes_state: bool,
                   headers: Mapping[str, str] | None = None) -> VenueError:
    """The engine error for a ccxt exception (see module docstring). ``changes_state``: the
    call places or cancels an order, so a lost response leaves its outcome unknown."""
    text = describe(exc)
    if isinstance(exc, RATE_LIMITED):
        return RetryableVenueError(text, retry_after_seconds(exc, headers))
    if isinstance(exc, ccxt.InvalidNonce):
        return RetryableVenueError(text, 0.0)
    if isinstance(exc, (ccxt.NetworkError, ccxt.OperationFailed)):
        if changes_state and not _never_connected(exc):
            return UnknownOutcomeError(text)
        return RetryableVenueError(text, DEFAULT_RETRY_AFTER_SECONDS)
    if is_duplicate_order(exc):
        return DuplicateOrderError(text)
    if type(exc) is ccxt.ExchangeError and changes_state:
        return UnknownOutcomeError(text)
    if isinstance(exc, ccxt.BaseError):
        return PermanentVenueError(text)
    raise TypeError(f"not a ccxt error: {exc!r}")


def _never_connected(exc: BaseException) -> bool:
    """True when the TCP connection could not be opened: the request was certainly not sent."""
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientConnectorError)
