"""Instrument rules (tick, step, minimums) and explicit Decimal rounding."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from genesis.domain.orders import Side


class InstrumentRuleError(ValueError):
    """A quantity or price breaks an instrument rule (min qty, min notional, ...)."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """Trading rules of one spot symbol, as an exchange publishes them.

    ``tick_size`` is the price increment in quote currency, ``step_size`` the quantity
    increment in base currency, ``min_notional`` the smallest price*qty the venue accepts.
    """

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal | None = None

    def round_qty_down(self, qty: Decimal) -> Decimal:
        """Largest multiple of ``step_size`` not above ``qty``."""
        return _to_multiple(qty, self.step_size, ROUND_DOWN)

    def round_price(self, price: Decimal, side: Side | None = None) -> Decimal:
        """Round a price to the tick.

        With a side, round in the direction that never makes the order more aggressive
        than asked: down for a buy, up for a sell. Without one, round half-even.
        """
        if side is Side.BUY:
            mode = ROUND_FLOOR
        elif side is Side.SELL:
            mode = ROUND_CEILING
        else:
            mode = ROUND_HALF_EVEN
        return _to_multiple(price, self.tick_size, mode)

    def check_order(self, qty: Decimal, price: Decimal) -> None:
        """Raise ``InstrumentRuleError`` naming the rule an order of ``qty`` at ``price`` breaks."""
        if qty != self.round_qty_down(qty):
            raise InstrumentRuleError(f"qty {qty} is not a multiple of step size {self.step_size}")
        if qty < self.min_qty:
            raise InstrumentRuleError(f"qty {qty} is below the minimum quantity {self.min_qty}")
        if self.max_qty is not None and qty > self.max_qty:
            raise InstrumentRuleError(f"qty {qty} is above the maximum quantity {self.max_qty}")
        if qty * price < self.min_notional:
            raise InstrumentRuleError(
                f"notional {qty * price} {self.quote} is below the minimum notional "
                f"{self.min_notional} {self.quote}"
            )

    def min_qty_at(self, price: Decimal) -> Decimal:
        """Smallest tradable quantity at ``price`` honouring both min qty and min notional."""
        by_notional = _to_multiple(self.min_notional / price, self.step_size, ROUND_CEILING)
        return max(self.min_qty, by_notional)


def _to_multiple(value: Decimal, increment: Decimal, rounding: str) -> Decimal:
    units = (value / increment).to_integral_value(rounding=rounding)
    return (units * increment).quantize(increment)
