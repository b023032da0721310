"""The simulated venue's fill model: pure, deterministic functions of candles and parameters.

See ``docs/sim-venue.md`` for the formulas. Everything here is ``Decimal``; the only
randomness (where inside a minute a maker fill lands) comes from a ``random.Random`` the
caller passes in, so results are reproducible for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from genesis.domain.instrument import Instrument
from genesis.domain.orders import Liquidity, Side
from genesis.domain.units import BPS
from genesis.venue.base import Candle

MINUTE = timedelta(minutes=1)
_MINUTE_US = Decimal(60_000_000)
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class FillModel:
    """Parameters of the simulated market.

    * ``half_spread_bps``: bid/ask sit this far below/above the reference (mid) price.
    * ``impact_coefficient_bps``: a taker order of ``qty`` in a minute that traded ``volume``
      pays ``impact_coefficient_bps * sqrt(qty / volume)`` bps beyond the touch.
    * ``limit_fill_share``: resting orders together fill at most this share of a candle's volume.
    * ``maker_fee_rate`` / ``taker_fee_rate``: fee as a fraction of notional, charged in quote.
    * ``fee_quantum``: fees are rounded half-even to this increment.
    """

    half_spread_bps: Decimal = Decimal("1")
    impact_coefficient_bps: Decimal = Decimal("10")
    limit_fill_share: Decimal = Decimal("0.25")
    maker_fee_rate: Decimal = Decimal("0.001")
    taker_fee_rate: Decimal = Decimal("0.001")
    fee_quantum: Decimal = Decimal("0.00000001")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, Decimal):
                raise TypeError(f"FillModel.{f.name} must be a Decimal, got {type(value).__name__}")
            if value < 0:
                raise ValueError(f"FillModel.{f.name} must be >= 0, got {value}")
        if not 0 < self.limit_fill_share <= 1:
            raise ValueError(f"limit_fill_share must be in (0, 1], got {self.limit_fill_share}")
        if self.fee_quantum == 0:
            raise ValueError("fee_quantum must be > 0")

    def fee_rate(self, liquidity: Liquidity) -> Decimal:
        return self.maker_fee_rate if liquidity is Liquidity.MAKER else self.taker_fee_rate

    @property
    def max_fee_rate(self) -> Decimal:
        return max(self.maker_fee_rate, self.taker_fee_rate)


def minute_fraction(candle: Candle, t: datetime) -> Decimal:
    """Share of the candle's minute elapsed at ``t``, clamped to [0, 1]."""
    return min(Decimal(1), max(Decimal(0), minute_share(candle.open_time, t)))


def minute_share(start: datetime, end: datetime) -> Decimal:
    """Length of ``[start, end)`` as an exact fraction of one minute (microsecond resolution)."""
    return Decimal((end - start) // _ONE_US) / _MINUTE_US


def reference_price(candle: Candle, t: datetime) -> Decimal:
    """Mid price at ``t``: linear from the candle's open to its close over the minute."""
    return candle.open + (candle.close - candle.open) * minute_fraction(candle, t)


def quote_prices(model: FillModel, mid: Decimal, instrument: Instrument) -> tuple[Decimal, Decimal]:
    """(bid, ask) = mid -/+ half spread, bid rounded down and ask up to the tick; ask > bid."""
    half = mid * model.half_spread_bps / BPS
    bid = instrument.round_price(mid - half, Side.BUY)
    ask = instrument.round_price(mid + half, Side.SELL)
    if bid <= 0:
        bid = instrument.tick_size
    if ask <= bid:
        ask = bid + instrument.tick_size
    return bid, ask


def impact_bps(model: FillModel, qty: Decimal, minute_volume: Decimal) -> Decimal:
    """Taker impact in bps: ``coefficient * sqrt(qty / minute_volume)``.

    A minute with no volume counts as ``minute_volume == qty`` (impact = coefficient).
    """
    if qty <= 0:
        return Decimal(0)
    ratio = qty / minute_volume if minute_volume > 0 else Decimal(1)
    return model.impact_coefficient_bps * ratio.sqrt()


def is_marketable(side: Side, limit_price: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """A buy at or above the ask, or a sell at or below the bid, would take liquidity."""
    return limit_price >= ask if side is Side.BUY else limit_price <= bid


def taker_price(model: FillModel, instrument: Instrument, side: Side, bid: Decimal,
                ask: Decimal, qty: Decimal, minute_volume: Decimal,
                limit_price: Decimal | None = None) -> Decimal:
    """Price of a taker fill: the far touch moved against us by the impact, rounded to the tick
    against us (buy up, sell down), then capped at ``limit_price`` when given."""
    touch = ask if side is Side.BUY else bid
    moved = touch * (1 + side.sign * impact_bps(model, qty, minute_volume) / BPS)
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    units = (moved / instrument.tick_size).to_integral_value(rounding=rounding)
    price = max(units, Decimal(1)) * instrument.tick_size
    if limit_price is not None:
        price = min(price, limit_price) if side is Side.BUY else max(price, limit_price)
    return price.quantize(instrument.tick_size)


def fee(model: FillModel, notional: Decimal, liquidity: Liquidity) -> Decimal:
    """Fee in quote currency: ``notional * rate``, rounded half-even to ``fee_quantum``."""
    return (notional * model.fee_rate(liquidity)).quantize(model.fee_quantum, ROUND_HALF_EVEN)


def crosses(side: Side, limit_price: Decimal, candle: Candle) -> bool:
    """Did the candle trade strictly through a resting order? buy: low < P; sell: high > P."""
    return candle.low < limit_price if side is Side.BUY else candle.high > limit_price


def maker_capacity(model: FillModel, instrument: Instrument, candle_volume: Decimal,
                   minute_share: Decimal = Decimal(1)) -> Decimal:
    """Quantity resting orders may fill from a candle: ``limit_fill_share * volume * minute_share``
    rounded down to the step (``minute_share`` is the part of the minute being matched)."""
    return instrument.round_qty_down(model.limit_fill_share * candle_volume * minute_share)


def fill_time(start: datetime, end: datetime, rng: random.Random) -> datetime:
    """Uniformly random microsecond in ``[start, end)`` (``start`` when the span is empty)."""
    span_us = (end - start) // _ONE_US
    if span_us <= 0:
        return start
    return start + timedelta(microseconds=int(rng.random() * span_us))
