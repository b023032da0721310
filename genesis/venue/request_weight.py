"""Binance request weight and order counts, per account, shared by every execution.

Binance answers every REST request with the weight the IP used in the current minute
(``X-MBX-USED-WEIGHT-1M``) and, on orders, the account's order counts
(``X-MBX-ORDER-COUNT-10S``, ``X-MBX-ORDER-COUNT-1D``). ``RequestWeight`` keeps the latest of
each (the exchange's own count, which includes every other client on the IP). When an exchange
sends no such header, the published weight of each call made in the last minute is summed
instead (``PUBLISHED_WEIGHTS``, Binance spot's).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Mapping

# Binance spot's published weights of the calls CcxtVenue makes (ccxt method name; myTrades
# with an orderId, or from a trade id: ``fetch_my_trades_from_id``; fetch_trades: aggTrades)
PUBLISHED_WEIGHTS: dict[str, int] = {
    "load_markets": 20, "fetch_order_book": 5, "fetch_ohlcv": 2, "create_order": 1,
    "cancel_order": 1, "fetch_order": 4, "fetch_my_trades": 5, "fetch_open_orders": 6,
    "fetch_balance": 20, "fetch_tickers": 2, "fetch_trades": 2, "fetch_my_trades_from_id": 20,
}
DEFAULT_WEIGHT_LIMIT_1M = 6000.0
DEFAULT_ORDER_LIMIT_10S = 100
DEFAULT_ORDER_LIMIT_1D = 200_000
_WINDOW_SECONDS = 60.0


@dataclass
class RequestWeight:
    """The account's request weight and order counts (see module docstring)."""

    weight_limit_1m: float = DEFAULT_WEIGHT_LIMIT_1M
    order_limit_10s: int = DEFAULT_ORDER_LIMIT_10S
    order_limit_1d: int = DEFAULT_ORDER_LIMIT_1D
    used_weight_1m: float | None = None  # the exchange's figure, from the last response
    order_count_10s: int | None = None
    order_count_1d: int | None = None
    requests: int = 0
    rate_limited: int = 0  # 429/418 answers seen
    published_since_start: float = 0.0  # published weight of every call this process made
    _published: deque = field(default_factory=deque)  # (monotonic seconds, weight)

    def observe(self, call: str, headers: Mapping[str, str] | None) -> None:
        """Record one REST call and the exchange's counters in its response headers."""
        self.requests += 1
        now = time.monotonic()
        weight = PUBLISHED_WEIGHTS.get(call, 1)
        self.published_since_start += weight
        self._published.append((now, weight))
        while self._published and self._published[0][0] < now - _WINDOW_SECONDS:
            self._published.popleft()
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        for name, attr, kind in (("x-mbx-used-weight-1m", "used_weight_1m", float),
                                 ("x-mbx-order-count-10s", "order_count_10s", int),
                                 ("x-mbx-order-count-1d", "order_count_1d", int)):
            if name in lowered:
                try:
                    setattr(self, attr, kind(lowered[name]))
                except ValueError:
                    pass

    def published_weight_1m(self) -> float:
        """Sum of the published weights of this process's calls in the last minute."""
        cutoff = time.monotonic() - _WINDOW_SECONDS
        return float(sum(w for t, w in self._published if t >= cutoff))

    @property
    def source(self) -> str:
        """Where ``used`` comes from: ``exchange`` (its header) or ``published`` (our sum)."""
        return "exchange" if self.used_weight_1m is not None else "published"

    def used(self) -> tuple[float, float]:
        """(weight used in the current minute, limit): the exchange's figure when it sent one."""
        used = self.used_weight_1m if self.used_weight_1m is not None else self.published_weight_1m()
        return used, self.weight_limit_1m


def order_count_10s(headers: Mapping[str, str] | None) -> int | None:
    """The account's new orders in the exchange's current 10-second window, from an order
    answer's ``X-MBX-ORDER-COUNT-10S`` header (None when absent or unreadable)."""
    return _header_count(headers, "x-mbx-order-count-10s")


def order_count_1d(headers: Mapping[str, str] | None) -> int | None:
    """The account's new orders in the exchange's current UTC day, from an order answer's
    ``X-MBX-ORDER-COUNT-1D`` header (None when absent or unreadable)."""
    return _header_count(headers, "x-mbx-order-count-1d")


def _header_count(headers: Mapping[str, str] | None, wanted: str) -> int | None:
    for name, value in (headers or {}).items():
        if name.lower() == wanted:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


_SHARED: dict[tuple[str, str | None], RequestWeight] = {}


def shared_weight(exchange_id: str, api_key: str | None) -> RequestWeight:
    """The process-wide ``RequestWeight`` of one account (every venue on it shares it)."""
    return _SHARED.setdefault((exchange_id, api_key), RequestWeight())
