"""Calling a venue safely: retries, unknown outcomes resolved by client order id.

The rules (see ``genesis.venue.base``): retry only what certainly did not happen; after an
unknown outcome look the order up before anything else and re-send with the *same* client
order id only when the venue says it never saw it; never guess when the venue is unreachable.
By kind of venue (``_may_resend``): one that refuses every client order id it has seen
(``RefusesSeenClientIds``: the simulated venue) takes a re-send at once. One that stamps its
requests (``FencesResends``: ccxt on Binance, which takes a filled order's id again) has the id
sent again only once the earlier request can no longer be accepted (its ``timestamp +
recvWindow`` and a clock margin are past, ``settle_sends``) and a second lookup, made then,
still does not find it (``genesis.venue.send_fence``); past the order's deadline such an order
is recorded as never sent. Any other (ccxt on another exchange) may take or show an earlier
request late: the order is never sent again, only looked up until shown (``_resolve_by_lookup``).
An order found by client order id is adopted only if it is the order intended (same terms,
not created before the intent): otherwise ``ForeignOrderError``, and its fills are not ours.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Awaitable, Callable, ContextManager, TypeVar

import structlog

from genesis.clock import Clock
from genesis.domain.orders import BookTop, OrderReport, OrderRequest, OrderStatus, foreign_order_reason
from genesis.engine.venue_call_ports import SlicingHold, UnknownOutcomeAlarm
from genesis.venue.base import (AcceptedUnreportedError, Candle, capable, DuplicateOrderError, FencesResends,
                                MarketDataUnavailable, MeasuresTradedVolume, PermanentVenueError, RetryableVenueError,
                                UnknownOutcomeError, Venue, VenueError, WakesOnTradedVolume, refuses_seen_ids)

T = TypeVar("T")
# how much earlier than our intent the venue may date an order that is ours: its clock against
# ours (a real exchange's after the time-difference correction; a paper exchange's at --speed N)
CREATION_CLOCK_TOLERANCE = timedelta(seconds=60)
# an order refused for its window: the deadline came before the venue accepted it (not sent)
WINDOW_ENDED_REASON = "window ended before the venue accepted it"
MARKET_READ = "book_top"  # the read whose answer proves the market data is back (ends a hold)


class VenueUnavailable(Exception):
    """Gave up waiting for the venue because the runner was asked to stop."""


class HoldInterrupted(Exception):
    """A wait for market data ended before it came back (a user pause, the window's end): the
    runner decides again. Raised only from reads made before anything was sent."""


class ForeignOrderError(Exception):
    """The venue holds an order under our client order id that is not the order this database
    intended (another database, or a copy of this one, sent it): its fills are not ours."""

    def __init__(self, client_order_id: str, detail: str):
        super().__init__(f"client order id {client_order_id} is taken on the venue by an order this "
                         f"database did not intend: {detail}; its fills are not adopted")
        self.client_order_id = client_order_id


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Back-off between tries (``base_seconds`` doubling up to ``max_seconds``);
    ``outcome_alarm_seconds``: how long past its deadline an order of unknown outcome is looked
    up before the alarm is raised (the lookups go on after it)."""

    base_seconds: float = 1.0
    max_seconds: float = 30.0
    outcome_alarm_seconds: float = 120.0

    def delay(self, attempt: int) -> float:
        return min(self.max_seconds, self.base_seconds * (2 ** min(attempt, 16)))


class VenueCaller:
    """Wraps one venue for one runner; ``should_stop`` lets a shutdown end the waiting."""

    def __init__(self, venue: Venue, clock: Clock, policy: RetryPolicy,
                 should_stop: Callable[[], bool], log: structlog.typing.FilteringBoundLogger,
                 pace: Callable[[], Awaitable[None]] | None = None, hold: SlicingHold | None = None,
                 alarm: UnknownOutcomeAlarm | None = None):
        self.venue, self.clock, self.policy = venue, clock, policy
        self._should_stop, self._log = should_stop, log
        self._pace = pace  # awaited after a back-off, before calling again (genesis.tuning.LoopPacer)
        self.hold = hold  # told when market data is unavailable, and when it is back
        self.alarm = alarm  # told when an order's outcome stays unknown past its deadline

    async def _backoff(self, attempt: int, at_least: float = 0.0,
                       wait: Callable[[float], Awaitable[None]] | None = None) -> None:
        if self._should_stop():
            raise VenueUnavailable("stopping while the venue was unavailable")
        delay = max(at_least, self.policy.delay(attempt))
        if wait is not None:
            await wait(delay)
        else:
            await self.clock.sleep_until(self.clock.now() + timedelta(seconds=delay))
        if self._pace is not None:
            await self._pace()

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A read-only call (book, lookup): retried until it answers; permanent errors raise.
        ``MarketDataUnavailable`` is reported to ``hold`` (slicing held) before the wait, and
        the answer that ends it (this call's, or a ``MARKET_READ``'s) before it is returned;
        ``HoldInterrupted`` when the hold says the wait must end first."""
        attempt, held_here = 0, False
        while True:
            try:
                result = await fn()
            except PermanentVenueError:
                raise
            except MarketDataUnavailable as exc:
                self._log.warning("market_data_unavailable", call=what, error=str(exc), attempt=attempt)
                if self.hold is not None:
                    await self.hold.hold(exc)
                    held_here = True
                    self._interrupt_hold()
                await self._backoff(attempt, exc.retry_after_seconds, self.hold.wait if self.hold else None)
                self._interrupt_hold()
            except RetryableVenueError as exc:
                self._log.warning("venue_retry", call=what, error=str(exc), attempt=attempt)
                await self._backoff(attempt, exc.retry_after_seconds)
            except VenueError as exc:
                self._log.warning("venue_unavailable", call=what, error=str(exc), attempt=attempt)
                await self._backoff(attempt)
            else:
                if self.hold is not None and self.hold.held and (held_here or what == MARKET_READ):
                    await self.hold.release()
                return result
            attempt += 1

    def _interrupt_hold(self) -> None:
        if self.hold is not None and self.hold.held and self.hold.interrupts():
            raise HoldInterrupted("the wait for market data ends first (a pause, or the window's end)")

    async def book_top(self, symbol: str) -> BookTop:
        """Best bid and ask now, retried like any read."""
        return await self.call(MARKET_READ, lambda: self.venue.book_top(symbol))

    async def candles(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        """The closed one-minute candles in ``[start, end)``, retried like any read."""
        return await self.call("candles", lambda: self.venue.candles(symbol, start, end))

    @property
    def measures_traded_volume(self) -> bool:
        """Whether the venue reports the volume actually traded (``MeasuresTradedVolume``)."""
        return capable(self.venue, MeasuresTradedVolume) is not None

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Base volume traded in ``[start, min(end, now))``, retried like any read; None when
        the venue does not know it (or cannot report it at all)."""
        venue = capable(self.venue, MeasuresTradedVolume)
        if venue is None:
            return None
        return await self.call("traded_volume", lambda: venue.traded_volume(symbol, start, end))

    def traded_volume_waiter(self, symbol: str, start: datetime,
                             volume: Decimal) -> ContextManager[asyncio.Event | None]:
        """An event set once the venue has counted ``volume`` traded since ``start``
        (``WakesOnTradedVolume``); None inside the block when the venue cannot tell."""
        venue = capable(self.venue, WakesOnTradedVolume)
        if venue is None:
            return nullcontext(None)
        return venue.traded_volume_waiter(symbol, start, volume)

    async def lookup(self, symbol: str, client_order_id: str) -> OrderReport:
        return await self.call("fetch_order", lambda: self.venue.fetch_order(symbol, client_order_id))

    async def lookup_intended(self, request: OrderRequest, intended_at: datetime) -> OrderReport:
        """The order the venue holds under ``request``'s client order id (``NOT_FOUND`` when
        none), provided it is the order intended at ``intended_at``: ``ForeignOrderError``
        otherwise (see ``foreign_order_reason``)."""
        report = await self.lookup(request.symbol, request.client_order_id)
        if report.status is OrderStatus.NOT_FOUND or report.terms is None:
            return report
        detail = foreign_order_reason(request, report.terms, intended_at, CREATION_CLOCK_TOLERANCE)
        if detail is not None:
            self._log.error("foreign_order", client_order_id=request.client_order_id, detail=detail,
                            venue_order_id=report.venue_order_id, venue_filled=str(report.filled_qty))
            raise ForeignOrderError(request.client_order_id, detail)
        return report

    def sent_by_ms(self) -> int | None:
        """The venue's request clock now (``FencesResends``): a bound on the stamp of any order
        request another process sent before now; None when the venue does not stamp."""
        venue = capable(self.venue, FencesResends)
        return venue.request_clock_ms() if venue is not None else None

    async def settled_lookup(self, request: OrderRequest, intended_at: datetime,
                             sent_by_ms: int | None = None) -> OrderReport:
        """The order under ``request``'s client order id once no earlier request under it (this
        process's, or another's stamped no later than ``sent_by_ms``) can still be accepted by
        the venue (``FencesResends.settle_sends``): ``NOT_FOUND`` then means it never will be,
        and the id may be sent again. At once on a venue that refuses every id it has seen; on a
        venue that can do neither (``_may_resend``) never ``NOT_FOUND``: looked up until shown."""
        venue = capable(self.venue, FencesResends)
        if venue is not None:
            await venue.settle_sends(request.client_order_id, sent_by_ms)
        elif not self._may_resend():
            return await self._resolve_by_lookup(request, intended_at, 0, None)
        return await self.lookup_intended(request, intended_at)

    def _may_resend(self) -> bool:
        """Whether an order of unknown outcome that a settled lookup does not find may be sent
        again under its id: the venue refuses every id it has seen, or fences its re-sends."""
        return refuses_seen_ids(self.venue) or capable(self.venue, FencesResends) is not None

    async def place(self, request: OrderRequest, intended_at: datetime,
                    deadline: datetime | None = None) -> OrderReport:
        """Place ``request`` (intended at ``intended_at``) exactly once. Returns the venue's
        report; a permanent refusal is a ``REJECTED`` report with the reason, not an exception;
        an order the venue already holds under this client id that is not this intent raises
        ``ForeignOrderError``. Nothing is sent at or after ``deadline`` (a window's end less
        ``ORDER_CUTOFF``): an order the venue certainly did not take by then is ``REJECTED``
        (``WINDOW_ENDED_REASON``), among them one whose settled lookup said ``NOT_FOUND`` on a
        venue that fences its re-sends (``_proven_never_accepted``); one whose outcome is
        unknown is only looked up from then on, until the venue shows it (never given up as not
        found: a late fill would be lost; see ``_resolve_by_lookup`` for the alarm). After an
        unknown outcome the order is sent again (same id) only when a lookup made once the
        earlier request can no longer be accepted (``settled_lookup``) does not find it, and
        never on a venue that neither refuses seen ids nor fences re-sends (only looked up)."""
        attempt, claimed = 0, False  # claimed: the venue said it holds the order (any attempt)
        if deadline is not None:  # the venue's own waits (its order budget) end there too
            request = replace(request, send_by=deadline)
        while True:
            if self._past(deadline):
                return OrderReport(request.client_order_id, None, OrderStatus.REJECTED, Decimal(0),
                                   reason=WINDOW_ENDED_REASON)
            try:
                return await self.venue.place_order(request)
            except PermanentVenueError as exc:
                return OrderReport(request.client_order_id, None, OrderStatus.REJECTED, Decimal(0),
                                   reason=str(exc))
            except RetryableVenueError as exc:
                self._log.warning("order_retry_before_send", client_order_id=request.client_order_id,
                                  error=str(exc), attempt=attempt)
                if not self._past(deadline):
                    await self._backoff(attempt, exc.retry_after_seconds)
            except (UnknownOutcomeError, DuplicateOrderError, VenueError) as exc:
                # any other venue error may have reached the venue: treat it as unknown
                self._log.warning("order_outcome_unknown", client_order_id=request.client_order_id,
                                  error=f"{type(exc).__name__}: {exc}", attempt=attempt)
                claimed = claimed or isinstance(exc, (DuplicateOrderError, AcceptedUnreportedError))
                if claimed or not self._may_resend():
                    # the venue holds it but cannot show it yet, or an earlier request may be
                    # taken or shown late: looked up only, never sent again
                    return await self._resolve_by_lookup(request, intended_at, attempt + 1, deadline)
                report = await self.lookup_intended(request, intended_at)
                if report.status is not OrderStatus.NOT_FOUND:
                    return report
                # the first request may still reach the matching engine: look again once it cannot
                report = await self.settled_lookup(request, intended_at)
                if report.status is not OrderStatus.NOT_FOUND:
                    return report
                if not self._past(deadline):
                    await self._backoff(attempt)
                if self._past(deadline) and not self._proven_never_accepted():
                    return await self._resolve_by_lookup(request, intended_at, attempt + 1, deadline)
                # sent again (same id) before the deadline; past it, proven never accepted: not sent
            attempt += 1

    def _proven_never_accepted(self) -> bool:
        """Whether a settled lookup's ``NOT_FOUND`` proves that the venue never took the order
        (the venue never said it holds it: ``place`` looks those up only): it fences its
        re-sends, so no earlier request under the id can be accepted any more. A venue that
        refuses seen ids but does not fence may show a taken order late: it is only looked up."""
        return capable(self.venue, FencesResends) is not None

    def _past(self, deadline: datetime | None) -> bool:
        return deadline is not None and self.clock.now() >= deadline

    async def _resolve_by_lookup(self, request: OrderRequest, intended_at: datetime, attempt: int,
                                 deadline: datetime | None) -> OrderReport:
        """An order of unknown outcome that may not be sent (again): looked up (with back-off)
        until the venue shows it. Still not shown ``policy.outcome_alarm_seconds`` after
        ``deadline`` (None, or a venue where it may never be sent again: after the first
        lookup): the alarm is raised once (recorded on the
        execution, naming the order and what to check) and the lookups go on; when the venue
        shows it, the alarm is cleared before the report is returned (its fills are recorded as
        usual). Never sent again; a stop or cancel request ends the waiting (``VenueUnavailable``)."""
        # the alarm counts from the deadline where the order could have been sent again until
        # then; on a venue where it never may (``_may_resend``), from the first lookup
        from_deadline = deadline is not None and self._may_resend()
        lookups, alarmed, alarm_from = 0, False, deadline if from_deadline else self.clock.now()
        while True:
            report = await self.lookup_intended(request, intended_at)
            lookups += 1
            if report.status is not OrderStatus.NOT_FOUND:
                if alarmed and self.alarm is not None:
                    await self.alarm.clear(request)
                return report
            self._log.warning("order_unknown_looked_up_only", client_order_id=request.client_order_id,
                              attempt=attempt, past_deadline=self._past(deadline))
            past = (self.clock.now() - alarm_from).total_seconds()
            if not alarmed and past >= self.policy.outcome_alarm_seconds:
                alarmed = True
                if self.alarm is not None:
                    await self.alarm.raise_alarm(request, round(past, 3), lookups, self.policy.max_seconds)
            await self._backoff(attempt)
            attempt += 1

    async def finish(self, request: OrderRequest, report: OrderReport) -> OrderReport:
        """Make sure the order is over: cancel what still rests, return the final report."""
        if report.status.is_final:
            return report
        return await self.call("cancel_order",
                               lambda: self.venue.cancel_order(request.symbol, request.client_order_id))

