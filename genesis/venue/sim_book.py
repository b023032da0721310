"""The simulated venue's resting limit orders and their lazy matching against the candles.

Every venue call first replays the time elapsed since the previous call against the resting
orders (``RestingBook.sync``): for each candle in between, an order whose limit the candle
traded strictly through fills up to its share of ``limit_fill_share`` of the candle's volume,
pro rata to the part of the minute replayed; the orders of a candle share its volume in
placement order. See ``docs/sim-venue.md``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Callable

from genesis.domain.instrument import Instrument
from genesis.domain.orders import Fill, Liquidity, OrderReport, OrderRequest, OrderStatus, Side, order_transition
from genesis.venue import fill_model as fm
from genesis.venue.base import Candle
from genesis.venue.candles import CandleSeries
from genesis.venue.fill_model import FillModel

def buy_lock(model: FillModel, qty: Decimal, limit_price: Decimal) -> Decimal:
    """Quote a limit buy needs (and locks while resting): notional plus the larger fee."""
    notional = qty * limit_price
    return notional + notional * model.max_fee_rate


Execute = Callable[["_SimOrder", Decimal, Decimal, Liquidity, datetime], None]


@dataclass(slots=True)
class _SimOrder:
    request: OrderRequest
    venue_order_id: str
    status: OrderStatus
    matched_until: datetime
    fills: list[Fill] = field(default_factory=list)
    reason: str | None = None
    trade_rows: list[int] = field(default_factory=list)  # where this venue logged its fills
    filled_qty: Decimal = field(init=False)  # the sum of the fills' quantities

    def __post_init__(self) -> None:
        self.filled_qty = sum((f.qty for f in self.fills), Decimal(0))

    def move_to(self, status: OrderStatus, reason: str | None = None) -> None:
        """Move by the child-order transition table (``orders.ORDER_TRANSITIONS``)."""
        self.status = order_transition(self.request.client_order_id, self.status, status)
        if reason is not None:
            self.reason = reason

    def add_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.filled_qty += fill.qty

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled_qty

    @property
    def resting(self) -> bool:
        return self.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)

    def report(self) -> OrderReport:
        return OrderReport(self.request.client_order_id, self.venue_order_id, self.status,
                           self.filled_qty, tuple(self.fills), self.reason)

    def final(self) -> "FinalOrder":
        """This order, over, as a plain tuple of values (see ``FinalOrder``)."""
        fills: tuple[int, ...] | tuple[Fill, ...] = tuple(self.trade_rows)
        if len(self.trade_rows) != len(self.fills):  # fills from before a restore: keep them
            fills = tuple(self.fills)
        return (self.request.symbol, self.venue_order_id, self.status.value, self.filled_qty,
                self.reason, fills)


# An order that is over, kept for lookups as an exact tuple of plain values: (symbol, venue
# order id, status, filled qty, reason, its fills as rows of the venue's trade log). The
# cyclic garbage collector stops tracking such tuples, so 10,000s of finished orders do not
# lengthen every full collection; a resting order is a ``_SimOrder``.
FinalOrder = tuple[str, str, str, Decimal, "str | None", "tuple[int, ...] | tuple[Fill, ...]"]


def order_symbol(order: "_SimOrder | FinalOrder") -> str:
    return order[0] if type(order) is tuple else order.request.symbol  # type: ignore[union-attr,index,return-value]


def order_report(client_order_id: str, order: "_SimOrder | FinalOrder", trades: list[Fill]) -> OrderReport:
    if type(order) is not tuple:
        return order.report()  # type: ignore[union-attr]
    _, venue_order_id, status, filled, reason, rows = order
    fills = tuple(trades[r] if type(r) is int else r for r in rows)  # type: ignore[index]
    return OrderReport(client_order_id, venue_order_id, OrderStatus(status), filled, fills, reason)


class RestingBook:
    """Resting orders of every symbol and their matching; ``execute`` books a fill.

    Whether a candle crosses a limit does not depend on the time within its minute. So after
    a full sweep in the candle the clock is in, and until the clock leaves that candle, only
    the orders the candle crosses are matched: the others could not fill, and the next full
    sweep replays this candle for them (at no fill) before the following ones. The fills are
    exactly those of matching every order on every call.
    """

    def __init__(self, series: dict[str, CandleSeries], instruments: dict[str, Instrument],
                 model: FillModel, rng: random.Random, execute: Execute):
        self._series, self._instruments, self._model = series, instruments, model
        self._rng, self._execute = rng, execute
        self._symbols = sorted(series)
        self.orders: dict[str, _SimOrder] = {}  # resting ones in placement order, pruned lazily
        self._known = 0  # len(orders) as this class left it: detects orders put in from outside
        self._swept: dict[str, tuple[datetime, datetime]] = {}  # symbol -> minute of its last full sweep
        self._crossing: dict[str, list[_SimOrder]] = {}  # ... and the orders that candle crosses
        self._synced_at: datetime | None = None
        self._maker_taken: dict[tuple[str, int], Decimal] = {}  # (symbol, candle) -> filled
        self._locked: dict[str, Decimal] = {}  # asset -> what the counted resting orders lock
        self._holding: set[str] = set()  # client order ids counted in _locked

    def add(self, order: _SimOrder, candle: Candle, now: datetime) -> None:
        """A new resting order placed at ``now`` (``candle``: the one ``now`` is in)."""
        symbol = order.request.symbol
        if len(self.orders) == self._known:
            self._known += 1
        self.orders[order.request.client_order_id] = order
        self.hold(order)
        swept = self._swept.get(symbol)
        if swept is not None and swept[0] <= now < swept[1]:
            assert order.request.limit_price is not None
            if fm.crosses(order.request.side, order.request.limit_price, candle):
                self._crossing[symbol].append(order)

    # -- funds locked by resting orders, kept as running totals ---------------------------
    def lock_of(self, order: _SimOrder) -> tuple[str, Decimal]:
        """(asset, amount) a resting order locks: a buy its quote notional plus the larger
        fee, a sell its base quantity."""
        inst = self._instruments[order.request.symbol]
        if order.request.side is Side.BUY:
            assert order.request.limit_price is not None
            return inst.quote, buy_lock(self._model, order.remaining, order.request.limit_price)
        return inst.base, order.remaining

    def locked(self, asset: str) -> Decimal:
        """What the resting orders lock of ``asset`` (as ``lock_of`` summed over them)."""
        if len(self.orders) != self._known:  # orders put in from outside: count them
            self._recount()
        return self._locked.get(asset, Decimal(0))

    def holds(self, order: _SimOrder) -> bool:
        return order.request.client_order_id in self._holding

    def hold(self, order: _SimOrder) -> None:
        asset, amount = self.lock_of(order)
        self._locked[asset] = self._locked.get(asset, Decimal(0)) + amount
        self._holding.add(order.request.client_order_id)

    def release(self, order: _SimOrder) -> None:
        if order.request.client_order_id in self._holding:
            asset, amount = self.lock_of(order)
            self._locked[asset] -= amount
            self._holding.discard(order.request.client_order_id)

    def _recount(self) -> None:
        self._locked, self._holding = {}, set()
        for order in self.orders.values():
            if order.resting:
                self.hold(order)

    def open_orders(self) -> list[_SimOrder]:
        """Resting orders in placement order (drops filled/cancelled ones from the index)."""
        for cid in [cid for cid, o in self.orders.items() if not o.resting]:
            del self.orders[cid]
        self._known = len(self.orders)
        return list(self.orders.values())

    def sync(self, now: datetime) -> None:
        """Replay the candles elapsed up to ``now`` against the resting orders, symbol by symbol."""
        outside = len(self.orders) != self._known
        if now == self._synced_at and not outside:
            return  # nothing elapsed: every order is matched up to now
        if outside:
            self._recount()
        self._synced_at = now
        everything: list[_SimOrder] | None = None
        for symbol in self._symbols:
            swept = self._swept.get(symbol)
            if swept is not None and swept[0] <= now < swept[1] and not outside:
                if self._crossing[symbol]:
                    live = self._crossing[symbol] = [o for o in self._crossing[symbol] if o.resting]
                    due = [o for o in live if o.matched_until < now]
                    if due:
                        self._match(symbol, due, now)
                continue
            series = self._series[symbol]
            k = series.index_at(now)
            if everything is None:
                everything = self.open_orders()
            mine = [o for o in everything if o.request.symbol == symbol]
            due = [o for o in mine if o.matched_until < now]
            if due:
                self._match(symbol, due, now)
            if k is None:
                self._swept.pop(symbol, None)
                continue
            candle = series.candle(k)
            self._swept[symbol] = (candle.open_time, candle.open_time + fm.MINUTE)
            self._crossing[symbol] = [o for o in mine if o.resting and fm.crosses(
                o.request.side, o.request.limit_price, candle)]  # type: ignore[arg-type]

    def _match(self, symbol: str, orders: list[_SimOrder], now: datetime) -> None:
        series, inst, model = self._series[symbol], self._instruments[symbol], self._model
        start = min(o.matched_until for o in orders)
        first = series.index_at(start)
        if first is None:
            first = 0 if start < series.first_open_time else len(series)
        last = series.index_at(now)
        if last is None:
            last = -1 if now < series.first_open_time else len(series) - 1
        for i in range(first, last + 1):
            candle = series.candle(i)
            minute_end = candle.open_time + fm.MINUTE
            for order in orders:
                lo, hi = max(candle.open_time, order.matched_until), min(minute_end, now)
                if hi <= lo or not order.resting:
                    continue
                limit = order.request.limit_price
                assert limit is not None
                if fm.crosses(order.request.side, limit, candle):
                    share = fm.minute_share(lo, hi)
                    taken = self._maker_taken.get((symbol, i), Decimal(0))
                    qty = min(order.remaining,
                              fm.maker_capacity(model, inst, candle.volume, share),
                              fm.maker_capacity(model, inst, candle.volume) - taken)
                    if qty > 0:
                        at = fm.fill_time(lo, hi, self._rng)
                        self._execute(order, qty, limit, Liquidity.MAKER, at)
                        self._maker_taken[(symbol, i)] = taken + qty
                order.matched_until = hi
        for order in orders:
            order.matched_until = max(order.matched_until, now)
