"""The one fill fold: what a set of fills adds up to (quantity, notional, fees, maker share).

The aggregate folds its ``FillRecorded`` events with it (per execution and per slice), the
slice executor counts fills about to be appended with it, a venue report averages its fills
with it. Exact ``Decimal``; a fill counts as maker when its liquidity is ``"maker"``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, NamedTuple, Protocol

ZERO = Decimal(0)
_new = tuple.__new__  # a NamedTuple without its keyword-handling constructor: the fold is hot


class FillLike(Protocol):
    """What the fold reads from a fill (``events.FillRecorded`` and ``orders.Fill`` fit)."""

    @property
    def qty(self) -> Decimal: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def fee(self) -> Decimal: ...
    @property
    def liquidity(self) -> str: ...


class FillTotals(NamedTuple):
    """Totals of some fills, immutable (a tuple: the aggregate folds thousands of fills).
    Invariants: ``0 <= maker_qty <= qty``; ``notional`` is the exact sum of ``qty * price``."""

    qty: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO
    maker_qty: Decimal = ZERO

    def plus(self, fill: FillLike) -> "FillTotals":
        """These totals with ``fill`` counted."""
        qty = fill.qty
        return _new(FillTotals, (self.qty + qty, self.notional + qty * fill.price, self.fees + fill.fee,
                                 self.maker_qty + qty if fill.liquidity == "maker" else self.maker_qty))

    def plus_all(self, fills: Iterable[FillLike]) -> "FillTotals":
        """These totals with every one of ``fills`` counted."""
        out = self
        for f in fills:
            out = out.plus(f)
        return out

    @property
    def avg_price(self) -> Decimal | None:
        """Volume-weighted average price; None when nothing is filled."""
        return self.notional / self.qty if self.qty else None

    @property
    def taker_qty(self) -> Decimal:
        return self.qty - self.maker_qty


class FilledFigures:
    """What a holder of ``fills`` (the one fill fold, ``FillTotals``) reports of them."""

    __slots__ = ()
    fills: FillTotals

    @property
    def filled_qty(self) -> Decimal:
        return self.fills.qty

    @property
    def filled_notional(self) -> Decimal:
        return self.fills.notional

    @property
    def fees(self) -> Decimal:
        return self.fills.fees

    @property
    def maker_qty(self) -> Decimal:
        return self.fills.maker_qty

    @property
    def avg_price(self) -> Decimal | None:
        return self.fills.avg_price
