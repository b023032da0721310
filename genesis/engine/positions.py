"""Net positions per symbol built from genesis' own fills (for the position limit check)."""

from __future__ import annotations

from decimal import Decimal

from genesis.domain.orders import Side


class PositionBook:
    def __init__(self, initial: dict[str, Decimal] | None = None):
        self._net: dict[str, Decimal] = dict(initial or {})

    def get(self, symbol: str) -> Decimal:
        return self._net.get(symbol, Decimal(0))

    def add(self, symbol: str, side: Side, qty: Decimal) -> None:
        if qty:
            self._net[symbol] = self.get(symbol) + side.sign * qty

    def set(self, symbol: str, net: Decimal) -> None:
        self._net[symbol] = net

    def snapshot(self) -> dict[str, Decimal]:
        return dict(self._net)
