"""What the venue tells the operator: its errors (by class) and its usage of the exchange's limits.

``WatchedVenue`` wraps a venue and reports every call's outcome to its listeners (metrics count
errors by class; alerts notice a venue that stopped answering). It changes nothing else: the
engine sees the same results and the same exceptions.

``read_venue_usage`` reads what the venue exposes about its limits today: the ccxt venue's
order budget (``venue.budget``, an ``OrderBudget``). Request weight is a hook: a venue that
tracks it exposes ``request_weight() -> tuple[float, float | None]`` (weight used in the
exchange's current window, and that window's limit when known) and it is exported as
``genesis_request_weight_used`` / ``genesis_request_weight_limit``; a venue with a
``RequestWeight`` (``venue.weight``) adds the exchange's order counts per 10 s and per day, their
limits, and the published weight of every call since the start.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from genesis.venue.base import DuplicateOrderError, PermanentVenueError, Venue, VenueError

VENUE_CALLS = frozenset({"instruments", "book_top", "place_order", "cancel_order", "fetch_order", "equity_usdt",
                         "candles", "traded_volume"})


class VenueListener(Protocol):
    def on_venue_ok(self, venue: str, call: str) -> None: ...

    def on_venue_error(self, call: str, error: BaseException) -> None: ...


def venue_answered(error: BaseException) -> bool:
    """True when the error proves the venue is up (it refused the request or already had it)."""
    return isinstance(error, (PermanentVenueError, DuplicateOrderError))


class WatchedVenue:
    """A venue whose calls are reported to ``listeners``; everything else passes through."""

    def __init__(self, venue: Venue, listeners: list[Any]):
        self._venue = venue
        self._listeners = listeners

    @property
    def wrapped(self) -> Venue:
        return self._venue

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._venue, name)
        if name in VENUE_CALLS:
            return functools.partial(self._call, name, attr)
        return attr

    async def _call(self, call: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        try:
            result = await fn(*args, **kwargs)
        except VenueError as exc:
            for listener in self._listeners:
                listener.on_venue_error(call, exc)
            raise
        for listener in self._listeners:
            listener.on_venue_ok(self._venue.name, call)
        return result


class VenueTracker:
    """Whether the venue answers: down after ``down_after_errors`` consecutive calls that failed
    without an answer (refusals prove it is up). ``on_change(down, venue, detail)`` is called
    when that flips."""

    def __init__(self, name: str, down_after_errors: int = 3,
                 on_change: Callable[[bool, str, str], None] | None = None):
        self.name, self.down_after_errors, self._on_change = name, down_after_errors, on_change
        self.consecutive_errors = 0
        self.last_error = ""
        self.down = False

    def on_venue_ok(self, venue: str, call: str) -> None:
        self.consecutive_errors = 0
        if self.down:
            self.down = False
            if self._on_change is not None:
                self._on_change(False, self.name, f"{call} answered")

    def on_venue_error(self, call: str, error: BaseException) -> None:
        if venue_answered(error):
            self.on_venue_ok(self.name, call)
            return
        self.consecutive_errors += 1
        self.last_error = f"{call}: {type(error).__name__}: {error}"
        if not self.down and self.consecutive_errors >= self.down_after_errors:
            self.down = True
            if self._on_change is not None:
                self._on_change(True, self.name, self.last_error)


@dataclass(frozen=True, slots=True)
class VenueUsage:
    """The venue's use of the exchange's limits; None where the venue does not know."""

    order_budget_capacity: float | None = None
    order_budget_available: float | None = None
    order_budget_waited_seconds: float | None = None
    request_weight_used: float | None = None
    request_weight_limit: float | None = None
    order_count_10s: int | None = None  # the exchange's counts (its X-MBX-ORDER-COUNT-* headers)
    order_limit_10s: int | None = None
    order_count_1d: int | None = None
    order_limit_1d: int | None = None
    request_weight_published: float | None = None  # published weight of every call since start
    orders_refused_daily_limit: int | None = None  # refused unsent at the account's daily limit

    def metrics(self) -> Iterator[Metric]:
        gauges = (("genesis_order_budget_capacity", "Orders the venue's order budget lets out per exchange window",
                   self.order_budget_capacity),
                  ("genesis_order_budget_available", "Order slots left in the current exchange window of the venue's order budget",
                   self.order_budget_available),
                  ("genesis_request_weight_used", "Request weight used in the exchange's current window",
                   self.request_weight_used),
                  ("genesis_request_weight_limit", "Request weight the exchange allows per window",
                   self.request_weight_limit),
                  ("genesis_order_count_10s", "Orders the account placed in the exchange's current 10 s",
                   self.order_count_10s),
                  ("genesis_order_limit_10s", "Orders the exchange allows per 10 s", self.order_limit_10s),
                  ("genesis_order_count_1d", "Orders the account placed in the exchange's current day",
                   self.order_count_1d),
                  ("genesis_order_limit_1d", "Orders the exchange allows per day", self.order_limit_1d))
        for name, help_text, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)
        if self.request_weight_published is not None:
            yield CounterMetricFamily("genesis_request_weight_published", "Published request weight of the "
                                      "calls made since the daemon started", value=self.request_weight_published)
        if self.orders_refused_daily_limit is not None:
            yield CounterMetricFamily("genesis_orders_refused_daily_limit", "New orders refused unsent at the "
                                      "account's daily order limit less its margin", value=self.orders_refused_daily_limit)
        if self.order_budget_waited_seconds is not None:
            yield CounterMetricFamily("genesis_order_budget_wait_seconds", "Time child orders waited for the order "
                                      "budget, seconds of the exchange's clock", value=self.order_budget_waited_seconds)


def read_venue_usage(venue: object) -> VenueUsage:
    """What ``venue`` exposes about its limits (see the module docstring for the hooks)."""
    budget = getattr(venue, "budget", None)
    weight = getattr(venue, "request_weight", None)
    used, limit = weight() if callable(weight) else (None, None)
    counts = getattr(venue, "weight", None)  # a RequestWeight: the exchange's order counts
    orders = {} if counts is None else dict(
        order_count_10s=counts.order_count_10s, order_limit_10s=counts.order_limit_10s,
        order_count_1d=counts.order_count_1d, order_limit_1d=counts.order_limit_1d,
        request_weight_published=counts.published_since_start)
    if budget is None:
        return VenueUsage(request_weight_used=used, request_weight_limit=limit, **orders)
    daily = getattr(budget, "daily", None)
    return VenueUsage(budget.capacity, budget.available(), budget.waited_seconds, used, limit, **orders,
                      orders_refused_daily_limit=None if daily is None else daily.refused)
