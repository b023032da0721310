"""One slice: size it, check risk, work it maker-first, record every step.

Maker-first (the router's routing settings): a post-only limit at the touch waits up to the
maker timeout, is cancelled, and the remainder is taken as taker. Each child order's intent
is a durable event before the venue sees it; the slice closes with the event its algorithm
names (``SliceAlgorithm.slice_event``). The requests and events are built by its
``SliceRecords`` (``engine.slice_records``). The executor works through ports (``engine.ports``),
never the runner.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Awaitable, Callable, Sequence

import structlog

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution, SliceState
from genesis.domain.instrument import Instrument
from genesis.domain.orders import BookTop, OrderReport, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from genesis.domain.risk import RiskEngine, SliceRiskInput
from genesis.algorithms.base import SliceSizing
from genesis.engine.account_cap import ACCOUNT_CAP_REASON, NO_ACCOUNT_CAP, AccountRoom
from genesis.engine.cap_room import room_under_cap
from genesis.engine.killpoints import NO_KILL_POINTS
from genesis.engine.ports import Append, Benchmark, KillPointPort, VenuePort
from genesis.engine.positions import PositionBook
from genesis.engine.slice_algorithm import SliceAlgorithm
from genesis.engine.slice_interval import Interval, SliceInterval, maker_deadline, taker_by
from genesis.engine.slice_records import SliceRecords
from genesis.engine.venue_calls import ForeignOrderError

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    maker_first: bool = True
    maker_timeout_seconds: float = 5.0


def passive_price(top: BookTop, side: Side, limit: Decimal | None) -> Decimal:
    """At the touch, never through the parent's limit price."""
    price = top.touch(side)
    if limit is None:
        return price
    return min(price, limit) if side is Side.BUY else max(price, limit)


async def _no_pause() -> None:
    return None


class SliceExecutor:
    """Executes the slices of one execution through its ports."""

    def __init__(self, execution_id: str, *, algorithm: SliceAlgorithm, venue: VenuePort, append: Append,
                 namespace: Callable[[], Awaitable[str]], clock: Clock, instrument: Instrument, risk: RiskEngine,
                 positions: PositionBook, benchmark: Benchmark, log: structlog.typing.FilteringBoundLogger,
                 routing: RoutingSettings = RoutingSettings(), hooks: KillPointPort = NO_KILL_POINTS,
                 decision_timer: Callable[[float], None] | None = None,
                 pace: Callable[[], Awaitable[None]] = _no_pause, account: AccountRoom = NO_ACCOUNT_CAP):
        """``namespace``: the store's client-id namespace; ``decision_timer``: called with the
        seconds each child decision took (sizing + risk check); ``pace``: awaited after the
        maker leg's wait, before the venue is called again; ``account``: the account's room on
        the symbol (``engine.account_cap``: every capped leg takes no more than it grants)."""
        self.execution_id, self.algorithm, self.venue, self.append = execution_id, algorithm, venue, append
        self.namespace, self.clock, self.instrument, self.risk = namespace, clock, instrument, risk
        self.positions, self.benchmark, self.log, self.routing = positions, benchmark, log, routing
        self.hooks, self.decision_timer, self.pace, self.account = hooks, decision_timer, pace, account
        self.records = SliceRecords(execution_id, clock, algorithm.slice_event, log)  # requests and events

    async def execute(self, agg: Execution, s: SliceState, slices_left: int, interval_seconds: float) -> None:
        """Run slice ``s`` now, sized for the next ``interval_seconds``, and close it."""
        started = time.perf_counter()
        at = self.clock.now()
        span = SliceInterval(at, at + timedelta(seconds=interval_seconds))  # what it is sized for
        interval = span.sized
        top = await self.venue.book_top(agg.symbol)
        ref = top.mid
        # sizing reads market data (candles): a venue read, retried like any other
        sizing = await self.venue.call("size", lambda: self.algorithm.size(
            agg, s, slices_left, ref, interval_seconds, self.clock.now()))
        if agg.orders_closed(self.clock.now()):
            return  # stalled into the window's last second: nothing is sent, the runner expires it
        if sizing.volume_anomaly:
            self.log.warning("volume_anomaly", slice_index=s.index, participation_reduced=True)
        if sizing.qty <= 0:
            reason = ("participation cap: interval volume too small" if sizing.cap_bound
                      else "share below the instrument minimum; carried forward")
            await self.append([self.records.closed(agg, s, "skipped", ref, sizing, reason, interval=interval)])
            return
        order_price = agg.limit_price if agg.limit_price is not None else top.far(agg.side)
        decision = self.risk.check_slice(SliceRiskInput(
            agg.symbol, agg.side, sizing.qty, ref, order_price, agg.qty, self.positions.get(agg.symbol)))
        if self.decision_timer is not None:
            self.decision_timer(time.perf_counter() - started)
        if not decision.approved:
            self.log.warning("risk_denied", slice_index=s.index, reason=decision.reason)
            await self.append([
                ev.RiskDenied(self.execution_id, self.clock.now(), s.index, sizing.qty, ref, decision.reason or ""),
                self.records.closed(agg, s, "denied", ref, sizing, decision.reason, interval=interval)])
            return
        await self._work(agg, s, top, sizing, span)

    async def _work(self, agg: Execution, s: SliceState, top: BookTop, sizing: SliceSizing,
                    span: SliceInterval) -> None:
        """The child orders of an approved slice (maker leg, then taker remainder), then its close
        with the interval its cap counted (``SliceInterval.recorded``)."""
        ref, remaining = top.mid, sizing.qty
        namespace = await self.namespace()
        pending: list[ev.Event] = []  # an order's outcome, appended with the next intent or the close
        maker_first = self.routing.maker_first and sizing.maker_first
        capped = self._capped_by_traded_volume(sizing)
        maker_qty, held, room = remaining, None, None
        if maker_first and capped:  # rests only what the market has already traded room for
            maker_by = self._maker_by(agg, span.sized)
            room = await self.account.reserve(await self._allowance(agg, s, remaining, sizing, span, by=maker_by),
                                              by=maker_by)
            maker_qty, held = room.qty, ACCOUNT_CAP_REASON if room.held_back else None
            top = await self.venue.book_top(agg.symbol)
        if maker_first and maker_qty >= self.instrument.min_qty_at(ref) and not agg.orders_closed(self.clock.now()):
            price = passive_price(top, agg.side, agg.limit_price)
            request = self.records.request(namespace, agg, s, OrderType.LIMIT, maker_qty, price, TimeInForce.POST_ONLY)
            agg = await self._intend(agg, s, request, ref)
            self.hooks.reach("after_intent")
            report = await self._send(agg, s, request, ref, sizing)
            if report is None:
                return
            self.hooks.reach("after_send")
            if not report.status.is_final:
                deadline = maker_deadline(agg, self.clock.now(), self.routing.maker_timeout_seconds)
                await self.clock.sleep_until(deadline if room is None else self.account.rest_until(deadline))
                await self.pace()
            report = await self.venue.finish(request, report)
            self.account.settle(room, report.fills)
            pending = self.records.outcome(agg, s, request, report)
            remaining -= report.filled_qty
        self.account.settle(room, ())  # not sent: the room goes back
        take = sizing.taker_fallback or not maker_first
        if take and remaining >= self.instrument.min_qty_at(ref) and capped:
            if pending:  # the maker leg's outcome, recorded before the wait
                agg, pending = await self._commit(pending), []
            by = taker_by(agg, span.sized_end)
            room = await self.account.reserve(await self._allowance(agg, s, remaining, sizing, span, by=by), by=by)
            allowed, held = room.qty, ACCOUNT_CAP_REASON if room.held_back else None
            if allowed < remaining:
                sizing = dataclasses.replace(sizing, cap_bound=True)
                self.log.info("participation_cap_held_back", slice_index=s.index, held_back=str(remaining - allowed))
            remaining = allowed
        if (take and remaining > 0 and remaining >= self.instrument.min_qty_at(ref)
                and not agg.orders_closed(self.clock.now())):
            if agg.limit_price is not None:
                request = self.records.request(namespace, agg, s, OrderType.LIMIT, remaining, agg.limit_price,
                                        TimeInForce.IOC)
            else:
                request = self.records.request(namespace, agg, s, OrderType.MARKET, remaining, None, TimeInForce.GTC)
            agg = await self._intend(agg, s, request, ref, before=pending)
            self.hooks.reach("after_intent")
            report = await self._send(agg, s, request, ref, sizing)
            if report is None:
                return
            self.hooks.reach("after_send")
            report = await self.venue.finish(request, report)
            self.account.settle(room, report.fills)
            pending = self.records.outcome(agg, s, request, report)
        self.account.settle(room, ())
        await self.close(agg, s, ref, sizing, before=pending, interval=span.recorded(), reason=held)

    def _capped_by_traded_volume(self, sizing: SliceSizing) -> bool:
        """The taker leg is held to the cap of the volume actually traded (the venue can say)."""
        return sizing.participation_cap is not None and self.venue.measures_traded_volume

    def _maker_by(self, agg: Execution, interval: Interval) -> datetime:
        """The latest the maker leg is placed: its timeout before the taker's latest."""
        return taker_by(agg, interval[1]) - timedelta(seconds=self.routing.maker_timeout_seconds)

    async def _allowance(self, agg: Execution, s: SliceState, remaining: Decimal, sizing: SliceSizing,
                         span: SliceInterval, by: datetime) -> Decimal:
        """How much of ``remaining`` may be sent now: the cap of the volume the market traded
        in the slice's interval so far, less what the slice already filled
        (``engine.cap_room``). While that is short of ``remaining`` it waits for the market to
        trade more, until ``by`` at the latest; the rest then carries forward. ``span`` notes
        how far the volume it counted reaches (a late look: past the sized end)."""
        assert sizing.participation_cap is not None
        return await room_under_cap(
            traded_volume=span.counting(lambda start, end: self.venue.traded_volume(agg.symbol, start, end)),
            clock=self.clock,
            pace=self.pace, cap=sizing.participation_cap, filled=agg.slices[s.index].filled_qty, wanted=remaining,
            instrument=self.instrument, interval=span.sized, by=by, forecast_volume=sizing.market_volume,
            waiter=lambda start, volume: self.venue.traded_volume_waiter(agg.symbol, start, volume))

    async def _intend(self, agg: Execution, s: SliceState, request: OrderRequest, ref: Decimal,
                      before: Sequence[ev.Event] = ()) -> Execution:
        """The durable intent: after this returns, and only then, may the venue see the order.
        ``before``: a previous order's outcome, committed in the same transaction."""
        return await self.append([*before, self.records.intended(agg, s, request, ref)])

    async def _send(self, agg: Execution, s: SliceState, request: OrderRequest, ref: Decimal | None,
                    sizing: SliceSizing | None) -> OrderReport | None:
        """Place an intended order. ``None`` when the venue holds a foreign order under its
        client id: that is recorded and the execution has failed (``refuse_foreign``)."""
        intended_at = agg.orders[request.client_order_id].intended_at
        assert intended_at is not None
        try:
            return await self.venue.place(request, intended_at, agg.order_deadline())
        except ForeignOrderError as exc:
            await self.refuse_foreign(agg, s, exc, ref, sizing)
            return None

    async def refuse_foreign(self, agg: Execution, s: SliceState, exc: ForeignOrderError,
                             ref: Decimal | None = None, sizing: SliceSizing | None = None) -> None:
        """Our child order is ``rejected`` with the reason (none of the foreign order's fills
        recorded), its slice closes and the execution fails, in one transaction: the client id
        space is shared with another database, so nothing more is sent."""
        now, reason = self.clock.now(), str(exc)
        st = agg.slices[s.index]
        events: list[ev.Event] = [ev.OrderClosed(self.execution_id, now, exc.client_order_id,
                                                 OrderStatus.REJECTED.value, ZERO, reason)]
        if not st.closed:
            events.append(self.records.closed(agg, st, "partial" if st.filled_qty > 0 else "failed", ref, sizing, reason))
        events.append(ev.ExecutionFailed(self.execution_id, now, reason))
        await self._commit(events)

    async def record(self, agg: Execution, s: SliceState, request: OrderRequest, report: OrderReport) -> Execution:
        """Make the order final (cancel what rests) and record its fills and end."""
        report = await self.venue.finish(request, report)
        return await self._commit(self.records.outcome(agg, s, request, report))

    async def _commit(self, events: list[ev.Event]) -> Execution:
        """Append, then count the new fills in the position book (only once they are durable)."""
        fills = [e for e in events if isinstance(e, ev.FillRecorded)]
        if self.hooks.armed("between_fills") and len(fills) > 1:
            # chaos only: the first fill alone, then die before the others are recorded
            first = await self.append([fills[0]])
            self.positions.add(first.symbol, first.side, fills[0].qty)
            self.hooks.reach("between_fills")
            events = [e for e in events if e is not fills[0]]
        agg = await self.append(events)
        filled = sum((e.qty for e in events if isinstance(e, ev.FillRecorded)), ZERO)
        self.positions.add(agg.symbol, agg.side, filled)
        return agg

    async def close(self, agg: Execution, s: SliceState, ref: Decimal | None, sizing: SliceSizing | None,
                    before: Sequence[ev.Event] = (), interval: Interval | None = None,
                    reason: str | None = None) -> None:
        """Close the slice with its figures, in one transaction with ``before`` (the last order's
        outcome, whose fills the figures already include). ``interval``: the one it records
        (``SliceInterval.recorded``; its realised participation is measured over it later);
        None after a restart. ``reason``: why it was held back, unless an order's rejection
        says more."""
        counted, status, reasons = self.records.closing(agg, s, sizing, before, reason)
        bench = await self.benchmark(agg, [e for e in before if isinstance(e, ev.FillRecorded)])
        await self._commit([*before, self.records.closed(agg, counted, status, ref, sizing, reasons, bench,
                                                         interval)])
