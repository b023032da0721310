"""The order router's decision (``--algo auto``): one order, or a short TWAP of N slices.

Pure. The TWAP it chooses runs through the same executor as any TWAP (risk before every
slice); only the schedule differs: ``slices`` children ``interval_seconds`` apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from genesis.domain.instrument import Instrument


@dataclass(frozen=True, slots=True)
class RouteDecision:
    execution_style: str  # "single" or "twap"
    slices: int
    interval_seconds: float
    parent_gross_usd: Decimal
    warning: str | None = None

    @property
    def duration_seconds(self) -> int:
        """The router TWAP's length: ``slices x interval_seconds``, in whole seconds."""
        return int(round(self.slices * self.interval_seconds))


def decide_route(qty: Decimal, price: Decimal, instrument: Instrument, *, enabled: bool,
                 min_notional_usd: Decimal, slices: int, interval_seconds: float) -> RouteDecision:
    """TWAP only when enabled, gross notional >= ``min_notional_usd`` and ``slices > 1``.

    Min-notional sanity: when ``qty / slices`` would fall below the venue's minimum, the slice
    count is reduced to the largest count whose slices all meet it; when even two slices
    cannot, the order goes out single. Both cases carry a warning for the log.
    """
    gross = qty * price
    slices = max(1, slices)
    if not (enabled and gross >= min_notional_usd and slices > 1):
        return RouteDecision("single", 1, 0.0, gross)
    smallest = instrument.min_qty_at(price)
    feasible = min(slices, int(qty // smallest)) if smallest > 0 else slices
    if feasible < 2:
        return RouteDecision("single", 1, 0.0, gross,
                             warning=f"TWAP of {slices} slices would put each below the {instrument.symbol} "
                                     f"minimum ({smallest}); even 2 slices cannot meet it: routing single")
    if feasible < slices:
        return RouteDecision("twap", feasible, interval_seconds, gross,
                             warning=f"TWAP slices reduced from {slices} to {feasible} so each meets the "
                                     f"{instrument.symbol} minimum ({smallest})")
    return RouteDecision("twap", slices, interval_seconds, gross)
