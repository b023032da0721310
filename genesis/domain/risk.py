"""Pre-slice risk checks. Pure: the engine gathers the inputs, this decides.

A denial is data (``RiskDecision``), never an exception: the engine records it as an event
and the execution carries on with its next slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from genesis.domain.orders import Side
from genesis.domain.units import BPS


@dataclass(frozen=True, slots=True)
class RiskLimits:
    kill_switch: bool = False
    max_parent_notional_usdt: Decimal = Decimal("5000000")
    max_position_base: dict[str, Decimal] = field(default_factory=dict)
    price_collar_bps: Decimal = Decimal("200")


@dataclass(frozen=True, slots=True)
class SliceRiskInput:
    symbol: str
    side: Side
    qty: Decimal
    reference_price: Decimal  # mid at decision time
    order_price: Decimal  # the limit price sent, or the far touch for a market order
    parent_qty: Decimal
    position_base: Decimal  # signed net position in the symbol's base before this slice


@dataclass(frozen=True, slots=True)
class RiskDecision:
    approved: bool
    reason: str | None = None

    @classmethod
    def ok(cls) -> "RiskDecision":
        return cls(True)

    @classmethod
    def deny(cls, reason: str) -> "RiskDecision":
        return cls(False, reason)


class RiskEngine:
    """Checks, in order: kill switch, parent notional, position limit, price collar."""

    def __init__(self, limits: RiskLimits):
        self.limits = limits

    def check_slice(self, inp: SliceRiskInput) -> RiskDecision:
        lim = self.limits
        if lim.kill_switch:
            return RiskDecision.deny("kill switch is on (risk.kill_switch in the config)")
        parent_notional = inp.parent_qty * inp.reference_price
        if parent_notional > lim.max_parent_notional_usdt:
            return RiskDecision.deny(
                f"parent notional {parent_notional:.2f} USDT exceeds "
                f"risk.max_parent_notional_usdt {lim.max_parent_notional_usdt}"
            )
        max_pos = lim.max_position_base.get(inp.symbol)
        if max_pos is not None:
            after = inp.position_base + inp.side.sign * inp.qty
            if abs(after) > max_pos:
                return RiskDecision.deny(
                    f"position {after} {inp.symbol} after this slice would exceed "
                    f"risk.max_position_base[{inp.symbol}] {max_pos}"
                )
        if inp.reference_price > 0:
            deviation_bps = abs(inp.order_price - inp.reference_price) / inp.reference_price * BPS
            if deviation_bps > lim.price_collar_bps:
                return RiskDecision.deny(
                    f"order price {inp.order_price} is {deviation_bps:.1f} bps from reference "
                    f"{inp.reference_price}, outside risk.price_collar_bps {lim.price_collar_bps}"
                )
        return RiskDecision.ok()

    def check_parent(self, symbol: str, qty: Decimal, price: Decimal) -> RiskDecision:
        """Checks that can reject a whole parent order at acceptance."""
        if self.limits.kill_switch:
            return RiskDecision.deny("kill switch is on (risk.kill_switch in the config)")
        notional = qty * price
        if notional > self.limits.max_parent_notional_usdt:
            return RiskDecision.deny(
                f"parent notional {notional:.2f} USDT exceeds risk.max_parent_notional_usdt "
                f"{self.limits.max_parent_notional_usdt}"
            )
        return RiskDecision.ok()
