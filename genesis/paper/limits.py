"""Binance's spot REST limits, enforced on the paper exchange's clock.

* **Request weight** per IP per minute (default 6,000): every ``/api/v3`` request adds its
  endpoint's published weight (``request_weight``) to the counter of the current minute; the
  response carries ``X-MBX-USED-WEIGHT-1M``. Over the limit: HTTP 429, -1003, ``Retry-After``
  = wall seconds to the next minute. An IP that sends ``ban_after_429s`` more requests while
  limited is banned: HTTP 418, -1003 ``IP banned until <ms>``, for ``ban_minutes`` (doubled for
  each further ban, as Binance scales repeat offenders from 2 minutes up to 3 days).
* **Orders** per account per 10 seconds (100) and per day (200,000): every ``POST
  /api/v3/order`` counts; over either, HTTP 429 -1015 ``Too many new orders; current limit is N
  orders per 10 SECOND.``; order responses carry ``X-MBX-ORDER-COUNT-10S`` and
  ``X-MBX-ORDER-COUNT-1D``.

Windows are fixed intervals of the exchange's (simulated) clock, like Binance's: a "minute of
weight" is a simulated minute, so at ``--speed N`` the wall-clock rates are N times Binance's.
Wall-clock durations in ``Retry-After`` are simulated durations divided by the speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from genesis.paper import binance_json as bj

MINUTE_MS, TEN_SECONDS_MS, DAY_MS = 60_000, 10_000, 86_400_000
MAX_BAN_MINUTES = 3 * 24 * 60


@dataclass(frozen=True, slots=True)
class Limits:
    """The numbers enforced (Binance's by default); ``enabled=False`` is ``--no-limits``."""

    weight_per_minute: int = 6_000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    ban_after_429s: int = 10
    ban_minutes: int = 2
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("weight_per_minute", "orders_per_10s", "orders_per_day", "ban_after_429s",
                     "ban_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def request_weight(method: str, path: str, params: dict[str, str]) -> int:
    """Binance's published weight of one spot REST request (the endpoints served here)."""
    endpoint = path.removeprefix("/api/v3")
    many = "symbol" not in params
    if endpoint == "/exchangeInfo":
        return 20
    if endpoint == "/depth":
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if endpoint == "/ticker/24hr":
        return 80 if many and "symbols" not in params else (
            40 if params.get("symbols", "").count(",") >= 20 else 2)
    if endpoint in ("/ticker/bookTicker", "/ticker/price"):
        return 4 if many else 2
    if endpoint == "/order":
        return 4 if method == "GET" else 1
    if endpoint == "/openOrders":
        return 80 if many else 6
    if endpoint == "/myTrades":
        return 5 if "orderId" in params else 20
    if endpoint == "/account":
        return 20
    return 2 if endpoint in ("/klines", "/aggTrades") else 1


@dataclass(slots=True)
class _Window:
    index: int = -1
    used: int = 0

    def add(self, index: int, amount: int) -> int:
        if index != self.index:
            self.index, self.used = index, 0
        self.used += amount
        return self.used


@dataclass(slots=True)
class _IpState:
    weight: _Window = field(default_factory=_Window)
    over_limit_requests: int = 0
    banned_until_ms: int = 0
    bans: int = 0


class RateLimiter:
    """Counts weight per IP and orders per account; raises ``BinanceError`` past the limits."""

    def __init__(self, limits: Limits | None = None, speed: float = 1.0):
        self.limits = limits or Limits()
        self.speed = speed or 1.0
        self._ips: dict[str, _IpState] = {}
        self._orders_10s: dict[str, _Window] = {}
        self._orders_day: dict[str, _Window] = {}

    def _wall_seconds(self, sim_ms: int) -> int:
        return max(1, math.ceil(sim_ms / 1000 / self.speed))

    def charge(self, ip: str, weight: int, sim_ms: int, wall_ms: int) -> dict[str, str]:
        """Add ``weight`` for ``ip``; the weight header, or 429/418 past the limit."""
        state = self._ips.setdefault(ip, _IpState())
        used = state.weight.add(sim_ms // MINUTE_MS, weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if not self.limits.enabled:
            return headers
        if state.banned_until_ms > sim_ms:
            raise self._banned(state, sim_ms, wall_ms, headers)
        if used <= self.limits.weight_per_minute:
            state.over_limit_requests = 0
            return headers
        state.over_limit_requests += 1
        if state.over_limit_requests > self.limits.ban_after_429s:
            minutes = min(self.limits.ban_minutes * 2 ** state.bans, MAX_BAN_MINUTES)
            state.bans += 1
            state.banned_until_ms = sim_ms + minutes * MINUTE_MS
            state.over_limit_requests = 0
            raise self._banned(state, sim_ms, wall_ms, headers)
        retry = self._wall_seconds(MINUTE_MS - sim_ms % MINUTE_MS)
        error = bj.too_many_requests(retry, self.limits.weight_per_minute)
        error.headers.update(headers)
        raise error

    def _banned(self, state: _IpState, sim_ms: int, wall_ms: int,
                headers: dict[str, str]) -> bj.BinanceError:
        left = self._wall_seconds(state.banned_until_ms - sim_ms)
        error = bj.ip_banned(wall_ms + left * 1000, left)
        error.headers.update(headers)
        return error

    def count_order(self, account: str, sim_ms: int) -> dict[str, str]:
        """Count one new order for ``account``; the order-count headers, or -1015."""
        in_10s = self._orders_10s.setdefault(account, _Window()).add(sim_ms // TEN_SECONDS_MS, 1)
        in_day = self._orders_day.setdefault(account, _Window()).add(sim_ms // DAY_MS, 1)
        headers = {"X-MBX-ORDER-COUNT-10S": str(in_10s), "X-MBX-ORDER-COUNT-1D": str(in_day)}
        if not self.limits.enabled:
            return headers
        for used, limit, unit in ((in_10s, self.limits.orders_per_10s, "10 SECOND"),
                                  (in_day, self.limits.orders_per_day, "1 DAY")):
            if used > limit:
                raise bj.BinanceError(429, -1015, f"Too many new orders; current limit is {limit} "
                                                  f"orders per {unit}.", headers)
        return headers
