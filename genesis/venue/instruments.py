"""Binance-spot-like trading rules for the symbols the simulated venue ships candles for.

Values mirror Binance spot's PRICE_FILTER / LOT_SIZE / NOTIONAL filters for these pairs
(tick 0.01 USDT; step 0.00001 BTC / 0.0001 ETH; minimum notional 5 USDT).
"""

from __future__ import annotations

from decimal import Decimal

from genesis.domain.instrument import Instrument

SIM_INSTRUMENTS: dict[str, Instrument] = {
    "BTC/USDT": Instrument(
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
        min_qty=Decimal("0.00001"),
        min_notional=Decimal("5"),
        max_qty=Decimal("9000"),
    ),
    "ETH/USDT": Instrument(
        symbol="ETH/USDT",
        base="ETH",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.0001"),
        min_qty=Decimal("0.0001"),
        min_notional=Decimal("5"),
        max_qty=Decimal("100000"),
    ),
}
"""Trading rules keyed by unified symbol. ``Instrument`` is frozen, so sharing is safe."""
