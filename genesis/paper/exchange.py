"""The paper exchange's market and book-keeping: ``SimulatedVenue`` wrapped in Binance semantics.

Matching, prices and fills are the simulated venue's (``genesis.venue.sim`` and
``docs/sim-venue.md``); this class adds what Binance has and the simulator does not: integer
order and trade ids, Binance statuses (``EXPIRED`` for an unfilled IOC, ``CANCELED``), the
``-2010`` duplicate check of a client id whose order is not filled (Binance's rule: an id is
unique among open orders; a filled order's id is taken again, as a new order), LIMIT_MAKER
rejection, and the SQLite
file (``genesis.paper.store``) that makes all of it survive a restart.

After every call the new simulator fills are written to the store in one transaction with
the balances and the simulated time (``sim_now_ms``). On start the resting orders are put back
into a fresh simulator as they were at ``sim_now_ms``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from dataclasses import dataclass, replace
from typing import Any

from genesis.clock import Clock
from genesis.domain.instrument import Instrument
from genesis.domain.orders import (Fill, Liquidity, OrderRequest, OrderStatus, OrderType, Side,
                                   TimeInForce)
from genesis.paper import binance_json as bj
from genesis.paper.store import REUSE_MARK, OrderRow, PaperStore, TradeRow
from genesis.venue import fill_model as fm
from genesis.venue.base import DuplicateOrderError, PermanentVenueError
from genesis.venue.candles import CandleSeries, from_epoch_ms, to_epoch_ms
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.sim import DEFAULT_BALANCES, FillModel, SimulatedVenue, _SimOrder

_SIM_ERRORS = (  # simulator refusal text -> Binance error
    ("insufficient balance", bj.insufficient_balance),
    ("minimum notional", lambda: bj.filter_failure("NOTIONAL")),
    ("tick size", lambda: bj.filter_failure("PRICE_FILTER")),
    ("step size", lambda: bj.filter_failure("LOT_SIZE")),
    ("minimum quantity", lambda: bj.filter_failure("LOT_SIZE")),
    ("maximum quantity", lambda: bj.filter_failure("LOT_SIZE")),
    ("market data", lambda: bj.BinanceError(400, -1013, "Market is closed.")),
)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A change of one order, for the user data stream: ``execution_type`` NEW, TRADE,
    CANCELED or EXPIRED, the order as it was right after it, the fill of a TRADE."""

    execution_type: str
    order: OrderRow
    time_ms: int
    trade: TradeRow | None = None
    cancel_client_id: str | None = None


class PaperExchange:
    """Binance-spot semantics over a ``SimulatedVenue`` on ``clock``, persisted in ``store``."""

    def __init__(self, store: PaperStore, clock: Clock, series: dict[str, CandleSeries],
                 instruments: dict[str, Instrument] | None = None,
                 fill_model: FillModel | None = None,
                 initial_balances: dict[str, Decimal] | None = None, seed: int = 0):
        rules = SIM_INSTRUMENTS if instruments is None else instruments
        self.store, self.clock = store, clock
        self.series = dict(series)
        self.instruments = {s: rules[s] for s in self.series}
        self.by_id = {bj.symbol_id(i): i for i in self.instruments.values()}
        self.model = fill_model or FillModel()
        balances = store.balances()
        if not balances:
            assets = {"USDT"} | {i.base for i in self.instruments.values()}
            balances = dict(initial_balances) if initial_balances is not None else {
                a: v for a, v in DEFAULT_BALANCES.items() if a in assets}
            with store.transaction():
                store.save_balances(balances)
        self.sim = SimulatedVenue(clock, self.series, self.instruments, self.model, balances, seed)
        self._seen_fills = 0
        # Binance: a filled order's client id is taken again; False refuses every id ever seen
        # (a test of what happens behind a -2010, which Binance answers only while it is open)
        self.reuse_filled_ids = True
        self.outbox: list[OrderEvent] = []  # drained by the user data stream
        self._restore_resting_orders()

    # ------------------------------------------------------------------ lookups
    def instrument(self, symbol_id: str | None) -> Instrument:
        if not symbol_id:
            raise bj.mandatory("symbol")
        try:
            return self.by_id[symbol_id]
        except KeyError:
            raise bj.invalid_symbol() from None

    def now_ms(self) -> int:
        return to_epoch_ms(self.clock.now())

    def find(self, instrument: Instrument, params: dict[str, str]) -> OrderRow | None:
        """The order named by ``orderId`` or ``origClientOrderId`` on this symbol."""
        order_id = bj.parse_int(params, "orderId")
        cid = params.get("origClientOrderId")
        if order_id is None and not cid:
            raise bj.BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be "
                                              "sent, but both were empty/null!")
        row = self.store.order_by_id(order_id) if order_id is not None else (
            self.store.latest_by_client_id(cid or ""))
        if row is None or row.symbol != instrument.symbol:
            return None
        if cid and row.public_client_id != cid:
            return None
        return row

    # ------------------------------------------------------------------ orders
    async def new_order(self, params: dict[str, str]) -> tuple[OrderRow, list[TradeRow]]:
        """``POST /api/v3/order``: validate like Binance, place into the simulator, persist."""
        inst = self.instrument(params.get("symbol"))
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise bj.BinanceError(400, -1117, "Invalid side.") if side else bj.mandatory("side")
        kind = params.get("type")
        if kind not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
            raise bj.BinanceError(400, -1116, "Invalid orderType.") if kind else bj.mandatory("type")
        qty = bj.parse_decimal(params, "quantity")
        assert qty is not None
        tif_text = params.get("timeInForce")
        if kind == "LIMIT":
            price = bj.parse_decimal(params, "price")
            if tif_text not in ("GTC", "IOC"):
                raise bj.BinanceError(400, -1115, "Invalid timeInForce.") if tif_text else (
                    bj.mandatory("timeInForce"))
        else:
            price = bj.parse_decimal(params, "price", required=kind == "LIMIT_MAKER")
            if tif_text:
                raise bj.BinanceError(400, -1106, "Parameter 'timeInForce' sent when not required.")
            if kind == "MARKET" and price is not None:
                raise bj.BinanceError(400, -1106, "Parameter 'price' sent when not required.")
        cid = params.get("newClientOrderId") or f"paper-{uuid.uuid4().hex[:22]}"
        if not bj.CLIENT_ID_RE.match(cid):
            raise bj.illegal_chars("newClientOrderId", bj.CLIENT_ID_RE.pattern)
        stored_id, order_id = cid, self.store.next_order_id()  # under the app's lock: one order at a time
        previous = self.store.latest_by_client_id(cid)
        if previous is not None:
            if previous.status != "FILLED" or not self.reuse_filled_ids:  # Binance: a filled one's is taken again
                raise bj.duplicate_order()
            stored_id = f"{cid}{REUSE_MARK}{order_id}"
        tif = (TimeInForce.POST_ONLY if kind == "LIMIT_MAKER" else
               TimeInForce.IOC if tif_text == "IOC" else TimeInForce.GTC)
        request = OrderRequest(stored_id, inst.symbol, Side(side.lower()),
                               OrderType.MARKET if kind == "MARKET" else OrderType.LIMIT, qty, price,
                               tif)
        if kind == "LIMIT_MAKER":
            top = await self.sim.book_top(inst.symbol)
            assert price is not None
            if fm.is_marketable(request.side, price, top.bid, top.ask):
                raise bj.would_take()
        try:
            report = await self.sim.place_order(request)
        except DuplicateOrderError:
            raise bj.duplicate_order() from None
        except PermanentVenueError as exc:
            raise _binance_error(exc) from None
        now = self.now_ms()
        row = OrderRow(order_id, stored_id, inst.symbol, side, kind,
                       tif_text or "GTC", price or Decimal(0), qty, Decimal(0), Decimal(0),
                       "NEW", now, now)
        with self.store.transaction():
            self.store.insert_order(row)
            self._emit("NEW", row, now)
            self._absorb_fills()
            if report.status is OrderStatus.CANCELLED:  # IOC remainder
                row = self._reload(row)
                row.status, row.updated_ms = "EXPIRED", now
                self.store.update_order(row)
                self._emit("EXPIRED", row, now)
        row = self._reload(row)
        return row, self.store.trades_of_orders([row.order_id])[row.order_id]

    async def cancel(self, params: dict[str, str]) -> tuple[OrderRow, str, int]:
        """``DELETE /api/v3/order``; -2011 for an unknown or no longer open order."""
        inst = self.instrument(params.get("symbol"))
        await self.sync()
        row = self.find(inst, params)
        if row is None or not row.is_open:
            raise bj.unknown_order()
        await self.sim.cancel_order(inst.symbol, row.client_order_id)
        now = self.now_ms()
        with self.store.transaction():
            self._absorb_fills()
            row = self._reload(row)
            row.status, row.updated_ms = "CANCELED", now
            self.store.update_order(row)
        cancel_id = params.get("newClientOrderId") or f"paper-cancel-{uuid.uuid4().hex[:16]}"
        self._emit("CANCELED", row, now, cancel_client_id=cancel_id)
        return row, cancel_id, now

    def has_new_fills(self) -> bool:
        """Whether resting orders filled (simulated up to now) since the last ``sync``."""
        self.sim.open_orders()  # replays elapsed candles
        return len(self.sim.trades()) > self._seen_fills

    async def sync(self) -> None:
        """Let the simulator match resting orders up to now and persist what happened."""
        self.sim.open_orders()  # replays elapsed candles
        with self.store.transaction():
            self._absorb_fills()

    # ------------------------------------------------------------------ account
    async def account_balances(self) -> list[dict[str, str]]:
        """``/account`` balances: free and locked (resting orders) per asset."""
        await self.sync()
        out = []
        for asset, total in sorted(self.sim.balances().items()):
            free = self.sim.free_balance(asset)
            out.append({"asset": asset, "free": bj.fmt(free), "locked": bj.fmt(total - free)})
        return out

    def commission_bps(self, liquidity: Liquidity) -> int:
        return int(self.model.fee_rate(liquidity) * 10_000)

    # ------------------------------------------------------------------ market data
    async def quote(self, inst: Instrument) -> tuple[Decimal, Decimal, Decimal]:
        """(bid, ask, displayed size at each) now."""
        top = await self.sim.book_top(inst.symbol)
        candle = self.series[inst.symbol].candle_at(self.clock.now())
        size = fm.maker_capacity(self.model, inst, candle.volume) if candle else inst.min_qty
        return top.bid, top.ask, max(size, inst.min_qty)

    async def candles(self, inst: Instrument, start: datetime, end: datetime) -> list[Any]:
        return await self.sim.candles(inst.symbol, start, end)

    # ------------------------------------------------------------------ internals
    def _reload(self, row: OrderRow) -> OrderRow:
        fresh = self.store.order_by_id(row.order_id)
        assert fresh is not None
        return fresh

    def _emit(self, execution_type: str, row: OrderRow, time_ms: int,
              trade: TradeRow | None = None, cancel_client_id: str | None = None) -> None:
        self.outbox.append(OrderEvent(execution_type, replace(row), time_ms, trade,
                                      cancel_client_id))

    def _absorb_fills(self) -> None:
        """Write simulator fills not yet stored (call inside a transaction)."""
        fills = self.sim.trades()[self._seen_fills:]
        trade_id = self.store.next_trade_id()
        for fill in fills:
            row = self.store.order_by_client_id(fill.client_order_id)
            assert row is not None, f"fill for unknown order {fill.client_order_id}"
            inst = self.instruments[row.symbol]
            quote_qty = fill.qty * fill.price
            trade = TradeRow(
                trade_id, row.order_id, row.symbol, row.side, fill.price, fill.qty, quote_qty,
                fill.fee, fill.fee_asset or inst.quote, fill.liquidity is Liquidity.MAKER,
                to_epoch_ms(fill.timestamp))
            self.store.insert_trade(trade)
            trade_id += 1
            row.executed_qty += fill.qty
            row.cumm_quote_qty += quote_qty
            if row.is_open:
                row.status = "FILLED" if row.executed_qty >= row.orig_qty else "PARTIALLY_FILLED"
            row.updated_ms = max(row.updated_ms, to_epoch_ms(fill.timestamp))
            self.store.update_order(row)
            self._emit("TRADE", row, trade.time_ms, trade)
        self._seen_fills += len(fills)
        self.store.save_balances(self.sim.balances())
        self.store.set_meta("sim_now_ms", str(self.now_ms()))

    def _restore_resting_orders(self) -> None:
        """Put the stored open orders back into the fresh simulator, matched up to
        ``sim_now_ms`` (the simulator has no public API for this, hence the private access)."""
        open_rows = self.store.open_orders()
        if not open_rows:
            return
        stamp = self.store.get_meta("sim_now_ms")
        matched_until = from_epoch_ms(int(stamp)) if stamp else self.clock.now()
        trades = self.store.trades_of_orders(o.order_id for o in open_rows)
        for row in open_rows:
            tif = (TimeInForce.POST_ONLY if row.type == "LIMIT_MAKER" else TimeInForce(
                row.time_in_force.lower()))
            request = OrderRequest(row.client_order_id, row.symbol, Side(row.side.lower()),
                                   OrderType.LIMIT, row.orig_qty, row.price, tif)
            fills = [Fill(f"{row.client_order_id}.{n}", row.client_order_id, t.qty, t.price,
                          t.commission, t.commission_asset,
                          Liquidity.MAKER if t.is_maker else Liquidity.TAKER,
                          from_epoch_ms(t.time_ms)) for n, t in enumerate(trades[row.order_id], 1)]
            status = OrderStatus.PARTIALLY_FILLED if fills else OrderStatus.OPEN
            order = _SimOrder(request, f"paper-{row.order_id}", status, matched_until, fills)
            self.sim._orders[row.client_order_id] = order
            self.sim._resting[row.client_order_id] = order


def _binance_error(exc: PermanentVenueError) -> bj.BinanceError:
    text = str(exc)
    for marker, make in _SIM_ERRORS:
        if marker in text:
            return make()
    return bj.BinanceError(400, -1013, text)
