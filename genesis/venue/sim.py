"""In-process simulated exchange driven by historical 1-minute candles and an injected clock.

``SimulatedVenue`` implements the ``Venue`` protocol. It reads time only through
``clock.now()`` and never sleeps. Resting limit orders are matched lazily: every call
(place/cancel/fetch/book_top/equity/candles and the inspection helpers) first replays the
candles that elapsed since the last call (``sim_book.RestingBook``). Prices come from
``genesis.venue.fill_model``; balances and the fill log are the account's ``sim_ledger.SimLedger``;
see ``docs/sim-venue.md``.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime
from decimal import Decimal

import numpy as np

from genesis.clock import Clock, utc
from genesis.domain.benchmarks import interval_volume
from genesis.domain.instrument import Instrument, InstrumentRuleError
from genesis.domain.orders import (BookTop, Fill, Liquidity, OrderReport, OrderRequest,
                                   OrderStatus, OrderType, TimeInForce)
from genesis.venue import fill_model as fm
from genesis.venue.base import Candle, DuplicateOrderError, PermanentVenueError
from genesis.venue.candles import CandleSeries
from genesis.venue.fill_model import FillModel
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.sim_book import FinalOrder, RestingBook, _SimOrder, order_report, order_symbol
from genesis.venue.sim_ledger import SimLedger

__all__ = ["FillModel", "SimulatedVenue", "DEFAULT_BALANCES", "_SimOrder"]

DEFAULT_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal("10000000"), "BTC": Decimal("100"), "ETH": Decimal("2000")}
POST_ONLY_REJECT_REASON = "post-only order would take liquidity"
_EQUITY_QUANTUM = Decimal("0.00000001")


class SimulatedVenue:
    """A Binance-spot-like venue over historical candles (see module docstring).

    ``series`` maps unified symbols to their candles; ``instruments`` defaults to
    ``SIM_INSTRUMENTS``; ``balances`` defaults to 10M USDT plus 100 BTC / 2,000 ETH for the
    symbols present. ``seed`` drives the only random choice (maker fill timestamps).
    """

    name = "sim"
    # ``RefusesSeenClientIds``: an id it has seen, open or final, is refused (``place_order``)
    refuses_seen_client_ids = True

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
        self._rng = random.Random(seed)
        self._orders: dict[str, _SimOrder | FinalOrder] = {}
        self._book = RestingBook(self._series, self._instruments, self._model, self._rng, self._execute)
        self._resting = self._book.orders  # the resting subset of _orders (the paper exchange restores into it)
        self._ledger = SimLedger(balances, self._instruments, self._model, self._book)  # balances, fill log
        self._order_ids = itertools.count(1)

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
        """Place an order: matched at once when it crosses, else resting."""
        self._sync()
        return self._place(request)

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """Cancel the unfilled rest of an open order and return its final report.

        A final order's report comes back unchanged; an unknown id gives ``NOT_FOUND``."""
        self._instrument(symbol)
        self._sync()
        order = self._find(symbol, client_order_id)
        if order is None:
            return _not_found(client_order_id)
        if type(order) is _SimOrder and order.resting:
            self._book.release(order)
            order.move_to(OrderStatus.CANCELLED, "cancelled by client")
            self._orders[client_order_id] = order.final()
        return order_report(client_order_id, order, self._ledger.trades)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """The order's report with all fills so far, or status ``NOT_FOUND``."""
        self._instrument(symbol)
        self._sync()
        order = self._find(symbol, client_order_id)
        return _not_found(client_order_id) if order is None else order_report(client_order_id, order, self._ledger.trades)

    async def equity_usdt(self) -> Decimal:
        """All balances valued at the current reference (mid) prices."""
        self._sync()
        now = self._clock.now()
        total = Decimal(0)
        for asset, amount in self._ledger.balances.items():
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
        series = self._series[symbol]
        return [series.candle(i) for i in series.indices(start, min(utc(end), now), closed_by=now)]

    def volume_history(self, symbol: str, start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
        """The closed candles of ``candles(symbol, start, end)`` as numbers: (open times in
        epoch ms, base volumes as float64). For statistics (volume curves), never for money."""
        self._instrument(symbol)
        self._sync()
        now = self._clock.now()
        series = self._series[symbol]
        rows = series.indices(start, min(utc(end), now), closed_by=now)
        return (series.open_times_ms()[rows.start:rows.stop].copy(),
                series.volumes_float()[rows.start:rows.stop].copy())

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Base volume the market has traded in ``[start, min(end, now))``: each minute's candle
        volume spread evenly over the minute, exactly the flow resting orders fill against
        (``docs/sim-venue.md``), the current minute pro rata. None: a minute has no candle."""
        self._instrument(symbol)
        self._sync()
        until = min(utc(end), self._clock.now())
        start = utc(start)
        if until <= start:
            return Decimal(0)
        bars = self._series[symbol].range(start.replace(second=0, microsecond=0), until)
        return interval_volume(bars, start, until)

    async def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ inspection
    def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """Reports of resting orders (OPEN or PARTIALLY_FILLED), in placement order."""
        self._sync()
        return [o.report() for o in self._resting_orders() if symbol in (None, o.request.symbol)]

    def trades(self, symbol: str | None = None) -> list[Fill]:
        """Every fill so far, in the order they were generated."""
        self._sync()
        if symbol is None:
            return list(self._ledger.trades)
        return [f for f in self._ledger.trades if order_symbol(self._orders[f.client_order_id]) == symbol]

    def balances(self) -> dict[str, Decimal]:
        """Total balances per asset (funds locked by resting orders included)."""
        self._sync()
        return dict(self._ledger.balances)

    def free_balance(self, asset: str) -> Decimal:
        """Balance not locked by resting orders."""
        self._sync()
        return self._ledger.free(asset)

    # ------------------------------------------------------------------ placing
    def _place(self, request: OrderRequest) -> OrderReport:
        instrument = self._instrument(request.symbol)
        cid = request.client_order_id
        if cid in self._orders:
            used = self._orders[cid]
            venue_order_id = used[1] if type(used) is tuple else used.venue_order_id  # type: ignore[union-attr]
            raise DuplicateOrderError(f"client order id {cid!r} already used (order {venue_order_id})")
        now = self._clock.now()
        bid, ask, mid, candle = self._quote(request.symbol, now)
        self._validate(request, instrument, mid)
        side, qty, limit = request.side, request.qty, request.limit_price
        marketable = limit is None or fm.is_marketable(side, limit, bid, ask)
        post_only = request.time_in_force is TimeInForce.POST_ONLY and limit is not None
        price = fm.taker_price(self._model, instrument, side, bid, ask, qty, candle.volume, limit)
        if not (post_only and marketable):  # else: rejected below, no funds needed
            self._ledger.require_funds(request, instrument, price)
        order = _SimOrder(request, f"sim-o-{next(self._order_ids)}", OrderStatus.OPEN,
                          matched_until=now)
        self._orders[cid] = order
        if post_only and marketable:
            order.move_to(OrderStatus.REJECTED, POST_ONLY_REJECT_REASON)
        elif marketable:
            self._execute(order, qty, price, Liquidity.TAKER, now)
        elif request.time_in_force is TimeInForce.IOC:
            order.move_to(OrderStatus.CANCELLED, "IOC order not marketable")
        if order.resting:
            self._book.add(order, candle, now)
            return order.report()
        self._orders[cid] = order.final()
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

    def _execute(self, order: _SimOrder, qty: Decimal, price: Decimal, liquidity: Liquidity,
                 at: datetime) -> None:
        """Book a fill of ``order`` (``SimLedger.book_fill``); a filled order is kept as over."""
        fill = self._ledger.book_fill(order, qty, price, liquidity, at)
        if order.status is OrderStatus.FILLED and self._orders.get(fill.client_order_id) is order:
            self._orders[fill.client_order_id] = order.final()

    # ------------------------------------------------------------------ lookups
    def _sync(self) -> None:
        """Replay elapsed candles against every resting order (``RestingBook.sync``)."""
        self._book.sync(self._clock.now())

    def _resting_orders(self) -> list[_SimOrder]:
        return self._book.open_orders()

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise PermanentVenueError(f"unknown symbol {symbol!r}; simulated symbols: "
                                      f"{', '.join(sorted(self._instruments))}") from None

    def _find(self, symbol: str, client_order_id: str) -> _SimOrder | FinalOrder | None:
        order = self._orders.get(client_order_id)
        return order if order is not None and order_symbol(order) == symbol else None

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
