"""Price volatility from 1-minute candles, for the implementation-shortfall model.

Close-to-close log returns, zero-mean estimator, per square root of a second:
``sigma^2 = sum(r_i^2) / sum(dt_i)`` with ``r_i = ln(close_i / close_{i-1})`` and ``dt_i`` the
seconds between the two candles' open times. A missing minute makes one return span two
minutes, which the denominator accounts for, so gaps neither inflate nor deflate the
estimate. The mean is not removed: over minutes the drift is noise, and removing it biases
short samples low. Multiply by ``sqrt(seconds)`` for another horizon (by ``sqrt(60)`` per
minute) and by a price for the absolute volatility the Almgren-Chriss formulas take.

Fewer than ``min_returns`` returns: the documented fallback, ``DEFAULT_VOLATILITY_PER_SQRT_SECOND``
(80% a year, a typical level for BTC and ETH, over 365 days of 86,400 s), flagged in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, Sequence

SECONDS_PER_YEAR = 365 * 86_400  # crypto trades every day
DEFAULT_ANNUAL_VOLATILITY = 0.80
DEFAULT_VOLATILITY_PER_SQRT_SECOND = DEFAULT_ANNUAL_VOLATILITY / math.sqrt(SECONDS_PER_YEAR)
DEFAULT_MIN_RETURNS = 10


class VolatilityError(ValueError):
    """The candles cannot give a volatility (non-positive close, unordered times)."""


class CandleClose(Protocol):
    """What the estimator reads from a candle (``genesis.venue.base.Candle`` fits)."""

    @property
    def open_time(self) -> datetime: ...

    @property
    def close(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class VolatilityEstimate:
    """Relative (log-return) volatility per square root of a second.

    ``returns_used``: how many close-to-close returns it rests on. ``fallback``: True when there
    were fewer than the minimum and ``per_sqrt_second`` is the fallback value."""

    per_sqrt_second: float
    returns_used: int
    fallback: bool

    def over(self, seconds: float) -> float:
        """The volatility over a horizon of ``seconds`` (e.g. 60 for a 1-minute return)."""
        return self.per_sqrt_second * math.sqrt(seconds)


def estimate_volatility(candles: Sequence[CandleClose], *, min_returns: int = DEFAULT_MIN_RETURNS,
                        fallback_per_sqrt_second: float = DEFAULT_VOLATILITY_PER_SQRT_SECOND
                        ) -> VolatilityEstimate:
    """Volatility per sqrt(second) of ``candles`` (ascending open times; see the module docstring)."""
    if min_returns < 1:
        raise ValueError(f"min_returns must be >= 1, got {min_returns}")
    if not math.isfinite(fallback_per_sqrt_second) or fallback_per_sqrt_second <= 0:
        raise ValueError(f"fallback_per_sqrt_second must be > 0, got {fallback_per_sqrt_second}")
    squares, seconds, count = 0.0, 0.0, 0
    for before, after in zip(candles, candles[1:]):
        if before.close <= 0 or after.close <= 0:
            raise VolatilityError(f"candle close must be > 0 to take a log return, got "
                                  f"{before.close} at {before.open_time} and {after.close} at {after.open_time}")
        dt = (after.open_time - before.open_time).total_seconds()
        if dt <= 0:
            raise VolatilityError(f"candles must be in strictly ascending open time, got {after.open_time} "
                                  f"after {before.open_time}")
        squares += math.log(float(after.close) / float(before.close)) ** 2
        seconds += dt
        count += 1
    if count < min_returns:
        return VolatilityEstimate(fallback_per_sqrt_second, count, True)
    return VolatilityEstimate(math.sqrt(squares / seconds), count, False)
