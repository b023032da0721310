"""One slice: size it, check risk, work it maker-first, record every step.

Maker-first (patch v7.4_C1): a post-only limit at the touch waits up to the maker timeout,
is cancelled, and the remainder is taken as taker. Each child order's intent is a durable
event before the venue sees it; the slice closes with ``TwapSliceExecuted``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from genesis.domain import events as ev
from genesis.domain.execution import ORDER_CUTOFF, Execution, SliceState, slippage_bps
from genesis.domain.ids import client_order_id, parse_client_order_id
from genesis.domain.orders import BookTop, OrderReport, OrderRequest, OrderType, Side, TimeInForce
from genesis.domain.risk import SliceRiskInput
from genesis.engine.algos import SliceSizing
from genesis.engine.venue_calls import ForeignOrderError

if TYPE_CHECKING:
    from genesis.engine.runner import ExecutionRunner

ZERO = Decimal(0)
TAKER_LEAD = ORDER_CUTOFF * 2  # a maker leg near the window end gives up this long before it


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


def with_fills(st: SliceState, fills: list[ev.FillRecorded]) -> SliceState:
    """A copy of ``st`` with ``fills`` counted (the fold of those fills, ahead of the append)."""
    out = dataclasses.replace(st)
    for f in fills:
        out.filled_qty += f.qty
        out.filled_notional += f.qty * f.price
        out.fees += f.fee
        if f.liquidity == "maker":
            out.maker_qty += f.qty
    return out


class SliceWorker:
    """Executes slices for one runner (shares its store, venue, clock and logger)."""

    def __init__(self, runner: "ExecutionRunner", routing: RoutingSettings):
        self.r, self.routing = runner, routing

    async def execute(self, agg: Execution, s: SliceState, slices_left: int, interval_seconds: float) -> None:
        r = self.r
        started = time.perf_counter()
        at = r.clock.now()
        interval = (at, at + timedelta(seconds=interval_seconds))  # what it is sized for
        top = await r.calls.call("book_top", lambda: r.venue.book_top(agg.symbol))
        ref = top.mid
        policy = r.policy
        assert policy is not None
        # sizing reads market data (candles): a venue read, retried like any other
        sizing = await r.calls.call("size", lambda: policy.size(agg, s, slices_left, ref, interval_seconds,
                                                                 r.clock.now()))
        if agg.orders_closed(r.clock.now()):
            return  # stalled into the window's last second: nothing is sent, the runner expires it
        if sizing.volume_anomaly:
            r.log.warning("volume_anomaly", slice_index=s.index, participation_reduced=True)
        if sizing.qty <= 0:
            reason = ("participation cap: interval volume too small" if sizing.cap_bound
                      else "share below the instrument minimum; carried forward")
            await r.append([self._closed(agg, s, "skipped", ref, sizing, reason, interval=interval)])
            return
        order_price = agg.limit_price if agg.limit_price is not None else top.far(agg.side)
        decision = r.risk.check_slice(SliceRiskInput(
            agg.symbol, agg.side, sizing.qty, ref, order_price, agg.qty, r.positions.get(agg.symbol)))
        r.hooks.decision_seconds(time.perf_counter() - started)
        if not decision.approved:
            r.log.warning("risk_denied", slice_index=s.index, reason=decision.reason)
            await r.append([ev.RiskDenied(r.execution_id, r.clock.now(), s.index, sizing.qty, ref, decision.reason or ""),
                            self._closed(agg, s, "denied", ref, sizing, decision.reason, interval=interval)])
            return
        remaining = sizing.qty
        namespace = await r.store.namespace()
        pending: list[ev.Event] = []  # an order's outcome, appended with the next intent or the close
        if self.routing.maker_first and sizing.maker_first:
            price = passive_price(top, agg.side, agg.limit_price)
            request = self._request(namespace, agg, s, OrderType.LIMIT, remaining, price, TimeInForce.POST_ONLY)
            agg = await self.intend(agg, s, request, ref, sizing)
            r.hooks.kill_points.reach("after_intent")
            report = await self.send(agg, s, request, ref, sizing)
            if report is None:
                return
            r.hooks.kill_points.reach("after_send")
            if not report.status.is_final:
                await r.clock.sleep_until(self._maker_deadline(agg))
                await r.pacer.turn()
            report = await r.calls.finish(request, report)
            pending = self.outcome(agg, s, request, report)
            remaining -= report.filled_qty
        take = sizing.taker_fallback or not (self.routing.maker_first and sizing.maker_first)
        if take and remaining > 0 and remaining >= r.instrument.min_qty_at(ref) and not agg.orders_closed(r.clock.now()):
            if agg.limit_price is not None:
                request = self._request(namespace, agg, s, OrderType.LIMIT, remaining, agg.limit_price,
                                        TimeInForce.IOC)
            else:
                request = self._request(namespace, agg, s, OrderType.MARKET, remaining, None, TimeInForce.GTC)
            agg = await self.intend(agg, s, request, ref, sizing, before=pending)
            r.hooks.kill_points.reach("after_intent")
            report = await self.send(agg, s, request, ref, sizing)
            if report is None:
                return
            r.hooks.kill_points.reach("after_send")
            report = await r.calls.finish(request, report)
            pending = self.outcome(agg, s, request, report)
        await self.close(agg, s, ref, sizing, before=pending, interval=interval)

    def _maker_deadline(self, agg: Execution) -> datetime:
        """When the maker leg gives up: after the maker timeout, and inside a window early
        enough (``TAKER_LEAD``) for the taker remainder to go before the window ends."""
        deadline = self.r.clock.now() + timedelta(seconds=self.routing.maker_timeout_seconds)
        if agg.windowed and agg.end_at is not None:
            deadline = max(self.r.clock.now(), min(deadline, agg.end_at - TAKER_LEAD))
        return deadline

    def _request(self, namespace: str, agg: Execution, s: SliceState, order_type: OrderType, qty: Decimal,
                 price: Decimal | None, tif: TimeInForce) -> OrderRequest:
        coid = client_order_id(namespace, self.r.execution_id, s.index, agg.attempts_for(s.index))
        return OrderRequest(coid, agg.symbol, agg.side, order_type, qty, price, tif)

    async def intend(self, agg: Execution, s: SliceState, request: OrderRequest, ref: Decimal,
                     sizing: SliceSizing, before: list[ev.Event] = ()) -> Execution:  # type: ignore[assignment]
        """The durable intent: after this returns, and only then, may the venue see the order.
        ``before``: a previous order's outcome, committed in the same transaction."""
        r = self.r
        _, _, attempt = parse_client_order_id(request.client_order_id)
        return await r.append([*before, ev.OrderIntended(
            r.execution_id, r.clock.now(), s.index, attempt, request.client_order_id,
            request.order_type.value, request.time_in_force.value, request.qty, request.limit_price, ref,
            execution_style=agg.execution_style, slice_count=len(agg.slices),
            parent_gross_usd=(agg.qty * agg.arrival_price) if agg.arrival_price else None,
            twap_config=dict(agg.params))])

    async def send(self, agg: Execution, s: SliceState, request: OrderRequest, ref: Decimal | None,
                   sizing: SliceSizing | None) -> OrderReport | None:
        """Place an intended order. ``None`` when the venue holds a foreign order under its
        client id: that is recorded and the execution has failed (``refuse_foreign``)."""
        intended_at = agg.orders[request.client_order_id].intended_at
        assert intended_at is not None
        try:
            return await self.r.calls.place(request, intended_at)
        except ForeignOrderError as exc:
            await self.refuse_foreign(agg, s, exc, ref, sizing)
            return None

    async def refuse_foreign(self, agg: Execution, s: SliceState, exc: ForeignOrderError,
                             ref: Decimal | None = None, sizing: SliceSizing | None = None) -> None:
        """Our child order is ``rejected`` with the reason (none of the foreign order's fills
        recorded), its slice closes and the execution fails, in one transaction: the client id
        space is shared with another database, so nothing more is sent."""
        r, now, reason = self.r, self.r.clock.now(), str(exc)
        st = agg.slices[s.index]
        events: list[ev.Event] = [ev.OrderClosed(r.execution_id, now, exc.client_order_id, "rejected", ZERO, reason)]
        if not st.closed:
            events.append(self._closed(agg, st, "partial" if st.filled_qty > 0 else "failed", ref, sizing, reason))
        events.append(ev.ExecutionFailed(r.execution_id, now, reason))
        await self._commit(events)

    def outcome(self, agg: Execution, s: SliceState, request: OrderRequest, report: OrderReport) -> list[ev.Event]:
        """The events that record a final order: its new fills, acknowledgement and end."""
        r = self.r
        coid, now = request.client_order_id, r.clock.now()
        events: list[ev.Event] = [
            ev.FillRecorded(r.execution_id, now, f.client_order_id, s.index, f.trade_id, f.qty, f.price, f.fee,
                            f.fee_asset, f.liquidity.value, f.timestamp)
            for f in report.fills if f.trade_id not in agg.trade_ids]
        events.append(ev.OrderAcknowledged(r.execution_id, now, coid, report.venue_order_id, report.status.value))
        events.append(ev.OrderClosed(r.execution_id, now, coid, report.status.value, report.filled_qty, report.reason))
        r.log.info("child_order_done", slice_index=s.index, client_order_id=coid, type=request.order_type.value,
                   tif=request.time_in_force.value, qty=str(request.qty), filled=str(report.filled_qty),
                   avg_price=str(report.avg_price), status=report.status.value)
        return events

    async def record(self, agg: Execution, s: SliceState, request: OrderRequest, report: OrderReport) -> Execution:
        """Make the order final (cancel what rests) and record its fills and end."""
        report = await self.r.calls.finish(request, report)
        return await self._commit(self.outcome(agg, s, request, report))

    async def _commit(self, events: list[ev.Event]) -> Execution:
        """Append, then count the new fills in the position book (only once they are durable)."""
        fills = [e for e in events if isinstance(e, ev.FillRecorded)]
        if self.r.hooks.kill_points.armed("between_fills") and len(fills) > 1:
            # chaos only: the first fill alone, then die before the others are recorded
            first = await self.r.append([fills[0]])
            self.r.positions.add(first.symbol, first.side, fills[0].qty)
            self.r.hooks.kill_points.reach("between_fills")
            events = [e for e in events if e is not fills[0]]
        agg = await self.r.append(events)
        filled = sum((e.qty for e in events if isinstance(e, ev.FillRecorded)), ZERO)
        self.r.positions.add(agg.symbol, agg.side, filled)
        return agg

    async def close(self, agg: Execution, s: SliceState, ref: Decimal | None, sizing: SliceSizing | None,
                    before: list[ev.Event] = (),  # type: ignore[assignment]
                    interval: tuple[datetime, datetime] | None = None) -> None:
        """Close the slice with its figures, in one transaction with ``before`` (the last order's
        outcome, whose fills the figures already include). ``interval``: what it was sized for
        (its realised participation is measured over it later); None after a restart."""
        st = with_fills(agg.slices[s.index], [e for e in before if isinstance(e, ev.FillRecorded)])
        closing = {e.client_order_id: e for e in before if isinstance(e, ev.OrderClosed)}
        ended = [(o.status, o.reason) for o in agg.orders_of(s.index) if o.client_order_id not in closing]
        ended += [(e.status, e.reason) for e in closing.values()]
        wanted = sizing.qty if sizing else st.planned_qty
        status = ("filled" if st.filled_qty >= wanted and st.filled_qty > 0 else "partial" if st.filled_qty > 0
                  else "failed" if any(st_ == "rejected" for st_, _ in ended) else "unfilled")
        reasons = "; ".join(r for st_, r in ended if r and st_ == "rejected") or None
        bench = await self.r.benchmark(agg, extra_fills=[e for e in before if isinstance(e, ev.FillRecorded)])
        await self._commit([*before, self._closed(agg, st, status, ref, sizing, reasons, bench, interval)])

    def _closed(self, agg: Execution, s: SliceState, status: str, ref: Decimal | None, sizing: SliceSizing | None,
                reason: str | None, bench: tuple[Decimal | None, Decimal | None] = (None, None),
                interval: tuple[datetime, datetime] | None = None) -> ev.TwapSliceExecuted:
        avg = s.avg_price
        volume = sizing.market_volume if sizing else None  # the forecast the cap was computed on
        cls, extra = (ev.VwapSliceExecuted, {"urgency": agg.urgency}) if agg.algo == "vwap" else (ev.TwapSliceExecuted, {})
        return cls(
            self.r.execution_id, self.r.clock.now(), s.index, len(agg.slices), status, s.planned_qty, s.filled_qty,
            avg, ref, slippage_bps(agg.side, avg, ref), s.fees, forecast_volume=volume,
            forecast_participation=(s.filled_qty / volume).quantize(Decimal("0.000001")) if volume else None,
            execution_style=agg.execution_style, reason=reason, maker_qty=s.maker_qty,
            taker_qty=s.filled_qty - s.maker_qty, scheduled_at=s.scheduled_at,
            cap_bound=bool(sizing and sizing.cap_bound), volume_anomaly=bool(sizing and sizing.volume_anomaly),
            market_vwap=bench[0], slippage_vs_vwap_bps=bench[1],
            interval_start=interval[0] if interval else None, interval_end=interval[1] if interval else None,
            # emergency (Story 10.4.1 AC10) overrides the cap by design: kept out of participation statistics
            cap_overridden=agg.urgency == "emergency", **extra)
