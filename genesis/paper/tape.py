"""The paper exchange's public trades between candle prints: a seeded model of one minute.

A shipped candle says only where a minute opened, how far it ranged, where it closed and how
much traded. The trade stream (``<symbol>@trade``) needs the trades themselves, so
``minute_trades`` makes them up, reproducibly:

* **count**: one trade per ``volume_per_trade_steps`` lots of volume (at least 4 when the volume
  allows: open, high, low, close), at most ``MAX_TRADES_PER_MINUTE``; no volume, no trades;
* **times**: sorted uniform draws inside the minute; the first trade at the minute's open;
* **prices**: a path from the open through the high and the low (in a random order, at random
  trades) to the close, linear between those points plus a jitter, rounded to the tick and kept
  inside ``[low, high]``: the first trade is at the open, the last at the close, and the high
  and the low are both touched;
* **quantities**: the volume rounded down to the lot step, split into ``count`` parts of at
  least one lot with random weights (largest remainder), so they sum to the candle's volume to
  the lot precision;
* **aggressor** (``m``, buyer is maker): a down-tick is a sell, an up-tick a buy, a flat tick a
  coin toss.

Everything is drawn from ``random.Random(f"{seed}:{symbol}:{open_ms}")``: the same seed and
minute give the same trades, whatever was asked before. Trade ids are
``open_ms // 60000 * 1000 + n`` (unique and increasing across minutes, not contiguous).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from genesis.domain.instrument import Instrument
from genesis.venue.base import Candle
from genesis.venue.candles import to_epoch_ms

MAX_TRADES_PER_MINUTE = 120
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class TapeTrade:
    """One public trade of the simulated market."""

    trade_id: int
    time_ms: int
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool


def minute_trades(candle: Candle, instrument: Instrument, seed: int = 0,
                  volume_per_trade_steps: int = 1) -> list[TapeTrade]:
    """The trades of ``candle``'s minute (see the module docstring), in time order."""
    open_ms = to_epoch_ms(candle.open_time)
    rng = random.Random(f"{seed}:{instrument.symbol}:{open_ms}")
    step = instrument.step_size
    lots = int((candle.volume / step).to_integral_value(rounding=ROUND_DOWN))
    if lots <= 0:
        return []
    count = max(min(4, lots), min(lots // max(1, volume_per_trade_steps), MAX_TRADES_PER_MINUTE))
    times = [open_ms] + sorted(open_ms + rng.randrange(1, MINUTE_MS) for _ in range(count - 1))
    prices = _price_path(candle, instrument, count, rng)
    quantities = _split(lots, count, rng)
    first_id = open_ms // MINUTE_MS * 1000
    out, previous = [], candle.open
    for n, (stamp, price, lot_count) in enumerate(zip(times, prices, quantities)):
        maker = price < previous or (price == previous and rng.random() < 0.5)
        out.append(TapeTrade(first_id + n, stamp, price, lot_count * step, maker))
        previous = price
    return out


def _price_path(candle: Candle, instrument: Instrument, count: int,
                rng: random.Random) -> list[Decimal]:
    """``count`` prices: open first, close last, high and low each hit at least once."""
    if count == 1:
        return [candle.close]
    extremes = [candle.high, candle.low]
    rng.shuffle(extremes)
    if count == 2:
        return [candle.open, candle.close]
    if count == 3:  # open, one extreme (the farther from open and close), close
        far = max(extremes, key=lambda p: abs(p - candle.open) + abs(p - candle.close))
        return [candle.open, far, candle.close]
    first, second = sorted(rng.sample(range(1, count - 1), 2))
    anchors = [(0, candle.open), (first, extremes[0]), (second, extremes[1]),
               (count - 1, candle.close)]
    span = candle.high - candle.low
    path: list[Decimal] = []
    for (i0, p0), (i1, p1) in zip(anchors, anchors[1:]):
        for i in range(i0, i1):
            frac = Decimal(i - i0) / Decimal(i1 - i0)
            jitter = span * Decimal(rng.uniform(-0.15, 0.15)).quantize(Decimal("0.0001"))
            price = p0 + (p1 - p0) * frac + (jitter if i != i0 else 0)
            path.append(min(candle.high, max(candle.low, instrument.round_price(price))))
    path.append(candle.close)
    return path


def _split(lots: int, count: int, rng: random.Random) -> list[int]:
    """``lots`` split into ``count`` positive integers (random weights, largest remainder)."""
    spare = lots - count
    weights = [rng.expovariate(1.0) for _ in range(count)]
    total = sum(weights)
    shares = [spare * w / total for w in weights]
    parts = [int(s) for s in shares]
    by_remainder = sorted(range(count), key=lambda i: shares[i] - parts[i], reverse=True)
    for i in by_remainder[:spare - sum(parts)]:
        parts[i] += 1
    return [1 + p for p in parts]
