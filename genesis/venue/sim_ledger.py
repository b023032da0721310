"""The simulated venue's account: balances per asset and the log of every fill.

``SimLedger`` checks that an order's funds are free (a resting order's funds are locked: the
``RestingBook`` keeps those totals) and books each fill: its fee, the balances it moves, the
trade log the venue's reports read. Matching (which order fills, when, at what price) is not
its business: ``SimulatedVenue`` and ``RestingBook`` decide, then hand it the fill.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from genesis.domain.instrument import Instrument
from genesis.domain.orders import Fill, Liquidity, OrderRequest, OrderStatus, Side
from genesis.venue import fill_model as fm
from genesis.venue.base import PermanentVenueError
from genesis.venue.fill_model import FillModel
from genesis.venue.sim_book import _SimOrder, buy_lock


class FundLocks(Protocol):
    """What resting orders lock (``RestingBook``)."""

    def lock_of(self, order: _SimOrder) -> tuple[str, Decimal]: ...
    def locked(self, asset: str) -> Decimal: ...
    def holds(self, order: _SimOrder) -> bool: ...
    def hold(self, order: _SimOrder) -> None: ...
    def release(self, order: _SimOrder) -> None: ...
    def open_orders(self) -> list[_SimOrder]: ...


class SimLedger:
    """Balances (``balances``, totals: locked funds included) and the fill log (``trades``, in
    the order generated) of the simulated account."""

    def __init__(self, balances: dict[str, Decimal], instruments: dict[str, Instrument], model: FillModel,
                 locks: FundLocks):
        if any(isinstance(v, float) for v in balances.values()):
            raise TypeError("balances must be Decimal (or int), never float")
        self.balances: dict[str, Decimal] = {a: Decimal(v) for a, v in balances.items()}
        self.trades: list[Fill] = []
        self._instruments, self._model, self._locks = instruments, model, locks

    def require_funds(self, request: OrderRequest, instrument: Instrument, taker_price: Decimal) -> None:
        """Refuse (``PermanentVenueError``) an order whose funds are not free: a sell its base
        quantity, a market buy its notional at ``taker_price`` plus the taker fee, a limit buy
        what it locks while resting (``buy_lock``)."""
        qty, limit = request.qty, request.limit_price
        if request.side is Side.SELL:
            self._require(instrument.base, qty)
        elif limit is None:
            notional = qty * taker_price
            self._require(instrument.quote, notional + fm.fee(self._model, notional, Liquidity.TAKER))
        else:
            self._require(instrument.quote, buy_lock(self._model, qty, limit))

    def free(self, asset: str) -> Decimal:
        """Balance of ``asset`` not locked by resting orders."""
        locked = Decimal(0)
        for o in self._locks.open_orders():
            held, qty = self._locks.lock_of(o)
            if held == asset:
                locked += qty
        return self.balances.get(asset, Decimal(0)) - locked

    def book_fill(self, order: _SimOrder, qty: Decimal, price: Decimal, liquidity: Liquidity,
                  at: datetime) -> Fill:
        """``order`` filled ``qty`` at ``price`` at ``at``: its fee charged, the balances moved,
        the fill logged and added to the order (which moves to partially filled or filled); what
        the order locks is what its remainder needs."""
        inst = self._instruments[order.request.symbol]
        notional = qty * price
        fee = fm.fee(self._model, notional, liquidity)
        held = self._locks.holds(order)
        if held:
            self._locks.release(order)
        # unique across venue restarts too: the engine records fills idempotently by trade id
        fill = Fill(trade_id=f"{order.request.client_order_id}.{len(order.fills) + 1}",
                    client_order_id=order.request.client_order_id, qty=qty, price=price,
                    fee=fee, fee_asset=inst.quote, liquidity=liquidity, timestamp=at)
        sign = order.request.side.sign
        b = self.balances
        b[inst.base] = b.get(inst.base, Decimal(0)) + sign * qty
        b[inst.quote] = b.get(inst.quote, Decimal(0)) - sign * notional - fee
        order.add_fill(fill)
        order.trade_rows.append(len(self.trades))
        self.trades.append(fill)
        order.move_to(OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED)
        if held and order.resting:
            self._locks.hold(order)
        return fill

    def _require(self, asset: str, amount: Decimal) -> None:
        # the book's running total equals the sum over resting orders (exact Decimal sums);
        # the message recomputes it as free() shows it
        if amount > self.balances.get(asset, Decimal(0)) - self._locks.locked(asset):
            raise PermanentVenueError(f"insufficient balance: need {amount} {asset}, "
                                      f"free {self.free(asset)} {asset}")
