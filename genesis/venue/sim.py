"""In-process simulated exchange driven by historical 1-minute candles and an injected clock.

``SimulatedVenue`` implements the ``Venue`` protocol. It reads time only through
``clock.now()`` and never sleeps. Resting limit orders are matched lazily: every call
(place/cancel/fetch/book_top/equity/candles and the inspection helpers) first replays the
candles that elapsed since the last call. Prices come from ``genesis.venue.fill_model``; see
``docs/sim-venue.md``.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from genesis.clock import Clock, utc
from genesis.domain.instrument import Instrument, InstrumentRuleError
from genesis.domain.orders import (BookTop, Fill, Liquidity, OrderReport, OrderRequest,
                                   OrderStatus, OrderType, Side, TimeInForce)
from genesis.venue import fill_model as fm
from genesis.venue.base import (Candle, DuplicateOrderError, PermanentVenueError, VenueError)
from genesis.venue.candles import CandleSeries
from genesis.venue.fill_model import FillModel
from genesis.venue.instruments import SIM_INSTRUMENTS

__all__ = ["FillModel", "SimulatedVenue", "DEFAULT_BALANCES"]

DEFAULT_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal("10000000"), "BTC": Decimal("100"), "ETH": Decimal("2000")}
POST_ONLY_REJECT_REASON = "post-only order would take liquidity"
_EQUITY_QUANTUM = Decimal("0.00000001")


@dataclass(slots=True)
class _SimOrder:
    request: OrderRequest
    venue_order_id: str
    status: OrderStatus
    matched_until: datetime
    fills: list[Fill] = field(default_factory=list)
    reason: str | None = None

    @property
    def filled_qty(self) -> Decimal:
        return sum((f.qty for f in self.fills), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled_qty

    @property
    def resting(self) -> bool:
        return self.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)

    def report(self) -> OrderReport:
        return OrderReport(self.request.client_order_id, self.venue_order_id, self.status,
                           self.filled_qty, tuple(self.fills), self.reason)


class SimulatedVenue:
    """A Binance-spot-like venue over historical candles (see module docstring).

    ``series`` maps unified symbols to their candles; ``instruments`` defaults to
    ``SIM_INSTRUMENTS``; ``balances`` defaults to 10M USDT plus 100 BTC / 2,000 ETH for the
    symbols present. ``seed`` drives the only random choice (maker fill timestamps).
    """

    name = "sim"

    def __init__(self, clock: Clock, series: dict[str, CandleSeries],
                 instruments: dict[str, Instrument] | None = None,
                 fill_model: FillModel | None = None,
                 balances: dict[str, Decimal] | None = None, seed: int = 0):
        rules = SIM_INSTRUMENTS if instruments is None else instruments
        missing = sorted(s for s in series if s not in rules)
        if missing:
            raise ValueError(f"no instrument rules for {', '.join(missing)}")
        self._clock = clock
        self._series = dict(series)
        self._instruments = {s: rules[s] for s in self._series}
        self._model = fill_model or FillModel()
        if balances is None:
            assets = {"USDT"} | {i.base for i in self._instruments.values()}
            balances = {a: v for a, v in DEFAULT_BALANCES.items() if a in assets}
        if any(isinstance(v, float) for v in balances.values()):
            raise TypeError("balances must be Decimal (or int), never float")
        self._balances: dict[str, Decimal] = {a: Decimal(v) for a, v in balances.items()}
        self._rng = random.Random(seed)
        self._orders: dict[str, _SimOrder] = {}
        self._resting: dict[str, _SimOrder] = {}  # subset of _orders, pruned lazily
        self._trades: list[tuple[str, Fill]] = []
        self._maker_taken: dict[tuple[str, int], Decimal] = {}
        self._order_ids = itertools.count(1)
        self._faults: deque[tuple[VenueError, bool]] = deque()

    # ------------------------------------------------------------------ Venue protocol
    async def instruments(self) -> dict[str, Instrument]:
        """Rules of every simulated symbol."""
        return dict(self._instruments)

    async def book_top(self, symbol: str) -> BookTop:
        """Bid/ask around the interpolated reference price at ``clock.now()``."""
        self._instrument(symbol)
        self._sync()
        now = self._clock.now()
        bid, ask, _, _ = self._quote(symbol, now)
        return BookTop(bid=bid, ask=ask, timestamp=now)

    async def place_order(self, request: OrderRequest) -> OrderReport:
        """Place an order; fault injection (``fail_next``) may raise before or after acceptance."""
        self._sync()
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and not fault[1]:
            raise fault[0]
        report = self._place(request)
        if fault is not None:
            raise fault[0]
        return report

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """Cancel the unfilled rest of an open order and return its final report.

        A final order's report comes back unchanged; an unknown id gives ``NOT_FOUND``."""
        self._instrument(symbol)
        self._sync()
        order = self._find(symbol, client_order_id)
        if order is None:
            return _not_found(client_order_id)
        if order.resting:
            order.status = OrderStatus.CANCELLED
            order.reason = "cancelled by client"
        return order.report()

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """The order's report with all fills so far, or status ``NOT_FOUND``."""
        self._instrument(symbol)
        self._sync()
        order = self._find(symbol, client_order_id)
        return _not_found(client_order_id) if order is None else order.report()

    async def equity_usdt(self) -> Decimal:
        """All balances valued at the current reference (mid) prices."""
        self._sync()
        now = self._clock.now()
        total = Decimal(0)
        for asset, amount in self._balances.items():
            if asset == "USDT":
                total += amount
            elif amount != 0:
                symbol = f"{asset}/USDT"
                if symbol not in self._series:
                    raise PermanentVenueError(f"cannot value {asset}: no {symbol} candles")
                total += amount * self._quote(symbol, now)[2]
        return total.quantize(_EQUITY_QUANTUM)

    async def candles(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        """Closed candles only: ``start <= open_time < end`` and ``open_time + 1 min <= now``."""
        self._instrument(symbol)
        self._sync()
        now = self._clock.now()
        return [c for c in self._series[symbol].range(start, min(utc(end), now))
                if c.open_time + fm.MINUTE <= now]

    async def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ test helpers
    def fail_next(self, n: int, error: VenueError, after_accept: bool = False) -> None:
        """Make the next ``n`` ``place_order`` calls raise ``error``; with ``after_accept`` the
        order is first accepted (and filled as usual), as after a timeout on the response."""
        self._faults.extend((error, after_accept) for _ in range(n))

    def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """Reports of resting orders (OPEN or PARTIALLY_FILLED), in placement order."""
        self._sync()
        return [o.report() for o in self._resting_orders() if symbol in (None, o.request.symbol)]

    def trades(self, symbol: str | None = None) -> list[Fill]:
        """Every fill so far, in the order they were generated."""
        self._sync()
        return [f for s, f in self._trades if symbol in (None, s)]

    def balances(self) -> dict[str, Decimal]:
        """Total balances per asset (funds locked by resting orders included)."""
        self._sync()
        return dict(self._balances)

    def free_balance(self, asset: str) -> Decimal:
        """Balance not locked by resting orders."""
        self._sync()
        return self._free(asset)

    # ------------------------------------------------------------------ placing
    def _place(self, request: OrderRequest) -> OrderReport:
        instrument = self._instrument(request.symbol)
        cid = request.client_order_id
        if cid in self._orders:
            raise DuplicateOrderError(f"client order id {cid!r} already used (order "
                                      f"{self._orders[cid].venue_order_id})")
        now = self._clock.now()
        bid, ask, mid, candle = self._quote(request.symbol, now)
        self._validate(request, instrument, mid)
        side, qty, limit = request.side, request.qty, request.limit_price
        marketable = limit is None or fm.is_marketable(side, limit, bid, ask)
        post_only = request.time_in_force is TimeInForce.POST_ONLY and limit is not None
        price = fm.taker_price(self._model, instrument, side, bid, ask, qty, candle.volume, limit)
        if post_only and marketable:
            pass  # rejected below, no funds needed
        elif side is Side.SELL:
            self._require(instrument.base, qty)
        elif limit is None:
            notional = qty * price
            self._require(instrument.quote,
                          notional + fm.fee(self._model, notional, Liquidity.TAKER))
        else:
            self._require(instrument.quote, self._buy_lock(qty, limit))
        order = _SimOrder(request, f"sim-o-{next(self._order_ids)}", OrderStatus.OPEN,
                          matched_until=now)
        self._orders[cid] = order
        if post_only and marketable:
            order.status, order.reason = OrderStatus.REJECTED, POST_ONLY_REJECT_REASON
        elif marketable:
            self._execute(order, qty, price, Liquidity.TAKER, now)
        elif request.time_in_force is TimeInForce.IOC:
            order.status, order.reason = OrderStatus.CANCELLED, "IOC order not marketable"
        if order.resting:
            self._resting[cid] = order
        return order.report()

    def _validate(self, request: OrderRequest, instrument: Instrument, mid: Decimal) -> None:
        if not isinstance(request.qty, Decimal):
            raise PermanentVenueError(f"qty must be a Decimal, got {type(request.qty).__name__}")
        limit = request.limit_price
        if request.order_type is OrderType.LIMIT:
            if not isinstance(limit, Decimal) or limit <= 0:
                raise PermanentVenueError(f"limit order needs a positive Decimal limit_price, "
                                          f"got {limit!r}")
            if limit % instrument.tick_size != 0:
                raise PermanentVenueError(
                    f"price {limit} is not a multiple of tick size {instrument.tick_size}")
        elif limit is not None:
            raise PermanentVenueError("market order must not carry a limit_price")
        try:
            instrument.check_order(request.qty, mid if limit is None else limit)
        except InstrumentRuleError as exc:
            raise PermanentVenueError(f"{request.symbol}: {exc}") from exc

    def _require(self, asset: str, amount: Decimal) -> None:
        free = self._free(asset)
        if amount > free:
            raise PermanentVenueError(f"insufficient balance: need {amount} {asset}, "
                                      f"free {free} {asset}")

    def _free(self, asset: str) -> Decimal:
        locked = Decimal(0)
        for o in self._resting_orders():
            inst = self._instruments[o.request.symbol]
            if o.request.side is Side.BUY and asset == inst.quote:
                assert o.request.limit_price is not None
                locked += self._buy_lock(o.remaining, o.request.limit_price)
            elif o.request.side is Side.SELL and asset == inst.base:
                locked += o.remaining
        return self._balances.get(asset, Decimal(0)) - locked

    def _buy_lock(self, qty: Decimal, limit_price: Decimal) -> Decimal:
        """Quote a limit buy needs (and locks while resting): notional plus the larger fee."""
        notional = qty * limit_price
        return notional + notional * self._model.max_fee_rate

    def _execute(self, order: _SimOrder, qty: Decimal, price: Decimal, liquidity: Liquidity,
                 at: datetime) -> None:
        inst = self._instruments[order.request.symbol]
        notional = qty * price
        fee = fm.fee(self._model, notional, liquidity)
        # unique across venue restarts too: the engine records fills idempotently by trade id
        fill = Fill(trade_id=f"{order.request.client_order_id}.{len(order.fills) + 1}",
                    client_order_id=order.request.client_order_id, qty=qty, price=price,
                    fee=fee, fee_asset=inst.quote, liquidity=liquidity, timestamp=at)
        sign = order.request.side.sign
        b = self._balances
        b[inst.base] = b.get(inst.base, Decimal(0)) + sign * qty
        b[inst.quote] = b.get(inst.quote, Decimal(0)) - sign * notional - fee
        order.fills.append(fill)
        self._trades.append((order.request.symbol, fill))
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED

    # ------------------------------------------------------------------ lazy matching
    def _sync(self) -> None:
        """Replay elapsed candles against every resting order, symbol by symbol."""
        now = self._clock.now()
        for symbol in sorted(self._series):
            resting = [o for o in self._resting_orders()
                       if o.request.symbol == symbol and o.matched_until < now]
            if resting:
                self._match(symbol, resting, now)

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

    # ------------------------------------------------------------------ lookups
    def _resting_orders(self) -> list[_SimOrder]:
        """Open orders in placement order (drops filled/cancelled ones from the index)."""
        for cid in [cid for cid, o in self._resting.items() if not o.resting]:
            del self._resting[cid]
        return list(self._resting.values())

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise PermanentVenueError(f"unknown symbol {symbol!r}; simulated symbols: "
                                      f"{', '.join(sorted(self._instruments))}") from None

    def _find(self, symbol: str, client_order_id: str) -> _SimOrder | None:
        order = self._orders.get(client_order_id)
        return order if order is not None and order.request.symbol == symbol else None

    def _quote(self, symbol: str, now: datetime) -> tuple[Decimal, Decimal, Decimal, Candle]:
        """(bid, ask, reference mid, current candle) at ``now``; PermanentVenueError outside
        the data."""
        series = self._series[symbol]
        candle = series.candle_at(now)
        if candle is None:
            raise PermanentVenueError(
                f"no {symbol} market data at {now.isoformat()}: the simulated series covers "
                f"{series.first_open_time.isoformat()} to {series.end_time.isoformat()}")
        mid = fm.reference_price(candle, now)
        bid, ask = fm.quote_prices(self._model, mid, self._instruments[symbol])
        return bid, ask, mid, candle


def _not_found(client_order_id: str) -> OrderReport:
    return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, Decimal(0))
