"""Implementation shortfall: the Almgren-Chriss (2000) optimal execution trajectory.

Pure functions. Time is in seconds, quantities in base units, prices in quote per base. The
model, for ``N`` intervals of ``tau`` seconds (``T = N * tau``), holdings ``x_0 = X .. x_N = 0``
and trades ``n_k = x_{k-1} - x_k``:

* price: arithmetic random walk of absolute volatility ``sigma`` (quote per base per sqrt s),
  permanent impact ``gamma * v`` and temporary impact ``epsilon + eta * v`` at trading rate
  ``v = n_k / tau`` (base per second);
* ``E[cost] = gamma X^2 / 2 + epsilon sum|n_k| + (eta_tilde / tau) sum n_k^2`` with
  ``eta_tilde = eta - gamma tau / 2``; ``Var[cost] = sigma^2 tau sum_{k=1..N} x_k^2``;
* minimising ``E + lambda Var`` gives ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)``, with
  the discrete-time ``kappa``: ``cosh(kappa tau) = 1 + kappa_tilde^2 tau^2 / 2``,
  ``kappa_tilde^2 = lambda sigma^2 / eta_tilde`` (``kappa -> kappa_tilde`` as ``tau -> 0``).

``lambda -> 0`` gives ``kappa -> 0`` and the straight line ``x_j = X (1 - j / N)``: TWAP. Higher
``lambda`` front-loads. Formulas, units and limits: docs/algorithms.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import numpy as np

from genesis.domain.events import PlannedSlice
from genesis.domain.instrument import Instrument
from genesis.domain.schedule import ScheduleError, require_tradable
from genesis.domain.vwap import Urgency, group_bounds

# lambda * notional (dimensionless): the weight of Var[cost / notional] against E[cost / notional]
URGENCY_RISK_AVERSION: dict[Urgency, float] = {
    Urgency.LOW: 1.0, Urgency.MEDIUM: 10.0, Urgency.HIGH: 100.0, Urgency.CRITICAL: 1000.0}
DEFAULT_PARTICIPATION_REFERENCE = 0.01
DEFAULT_MIN_SPREAD_BPS = 1.0  # floor of the spread fed to the impact rule: a 1-tick book understates impact
_US = timedelta(microseconds=1)


class AlmgrenChrissConfigError(ValueError):
    """A model parameter is out of range; the message names the field."""


@dataclass(frozen=True, slots=True)
class AlmgrenChrissConfig:
    """Almgren-Chriss model parameters (all floats: statistics, not amounts of money).

    ``risk_aversion_per_quote``: lambda >= 0, per unit of quote currency (0: TWAP).
    ``volatility_per_sqrt_second``: sigma >= 0, *absolute*, quote per base per sqrt(second)
    (relative volatility times price). ``temporary_impact``: eta > 0, quote per base per
    (base per second). ``permanent_impact``: gamma >= 0, quote per base per base.
    ``fixed_cost_per_base``: epsilon >= 0, quote per base (half spread plus fee).
    ``interval_seconds``: tau > 0, the nominal slice spacing. ``eta - gamma tau / 2`` must be > 0.
    """

    risk_aversion_per_quote: float
    volatility_per_sqrt_second: float
    temporary_impact: float
    permanent_impact: float = 0.0
    fixed_cost_per_base: float = 0.0
    interval_seconds: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) \
                    or not math.isfinite(float(value)):
                raise AlmgrenChrissConfigError(f"{f.name} must be a finite number, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        for name in ("risk_aversion_per_quote", "volatility_per_sqrt_second", "permanent_impact",
                     "fixed_cost_per_base"):
            if getattr(self, name) < 0:
                raise AlmgrenChrissConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("temporary_impact", "interval_seconds"):
            if getattr(self, name) <= 0:
                raise AlmgrenChrissConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.adjusted_temporary_impact(self.interval_seconds) <= 0:
            raise AlmgrenChrissConfigError(
                f"temporary_impact ({self.temporary_impact}) must exceed permanent_impact * interval_seconds / 2 "
                f"({self.permanent_impact * self.interval_seconds / 2}): lower permanent_impact or interval_seconds")

    def adjusted_temporary_impact(self, interval_seconds: float) -> float:
        """``eta_tilde = eta - gamma * tau / 2`` for slices ``interval_seconds`` apart."""
        return self.temporary_impact - self.permanent_impact * interval_seconds / 2


def risk_aversion_for(urgency: Urgency, notional_quote: float) -> float:
    """lambda per quote for ``urgency``: ``URGENCY_RISK_AVERSION[urgency] / notional_quote``.

    Scaling by the notional makes the urgency mean the same for any order size: the objective
    becomes ``E[c] + a Var[c]`` with ``c = cost / notional`` and ``a`` from the table (low 1,
    medium 10, high 100, critical 1000; calibration in docs/algorithms.md). Emergency has no
    trajectory (everything now)."""
    if urgency not in URGENCY_RISK_AVERSION:
        raise ValueError(f"urgency {urgency.value!r} has no risk aversion: use one of "
                         f"{', '.join(u.value for u in URGENCY_RISK_AVERSION)} (emergency trades at once)")
    if not notional_quote > 0:
        raise ValueError(f"notional_quote must be > 0, got {notional_quote}")
    return URGENCY_RISK_AVERSION[urgency] / float(notional_quote)


def temporary_impact_from_spread(spread_quote: float, volume_per_second: float,
                                 participation_reference: float = DEFAULT_PARTICIPATION_REFERENCE) -> float:
    """eta from the rule of thumb: trading at ``participation_reference`` of the market's traded
    rate (``volume_per_second``, base) costs half a spread (``spread_quote / 2``) of temporary
    impact: ``eta = (spread / 2) / (participation_reference * volume_per_second)``."""
    for name, value in (("spread_quote", spread_quote), ("volume_per_second", volume_per_second),
                        ("participation_reference", participation_reference)):
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"{name} must be > 0, got {value}")
    return float(spread_quote) / 2 / (float(participation_reference) * float(volume_per_second))


def kappa_per_second(config: AlmgrenChrissConfig, interval_seconds: float | None = None) -> float:
    """The trajectory's decay rate kappa (1/s): ``cosh(kappa tau) = 1 + kappa_tilde^2 tau^2 / 2``,
    ``kappa_tilde^2 = lambda sigma^2 / eta_tilde``. Solved as
    ``acosh(1 + y) = log1p(y + sqrt(y (y + 2)))``, exact for small ``y``."""
    tau = config.interval_seconds if interval_seconds is None else float(interval_seconds)
    kappa_tilde_sq = config.risk_aversion_per_quote * config.volatility_per_sqrt_second ** 2 \
        / config.adjusted_temporary_impact(tau)
    y = kappa_tilde_sq * tau * tau / 2
    return math.log1p(y + math.sqrt(y * (y + 2))) / tau


def optimal_trajectory(qty: float | Decimal, slice_count: int, config: AlmgrenChrissConfig,
                       interval_seconds: float | None = None) -> np.ndarray:
    """Holdings ``x_0 = qty, ..., x_N = 0`` (float64, length ``slice_count + 1``) at
    ``t_j = j * tau``: ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)``, evaluated as
    ``exp(-kappa t_j) expm1(-2 kappa (T - t_j)) / expm1(-2 kappa T)`` (no overflow for large
    ``kappa T``); ``kappa = 0`` gives the straight line (TWAP)."""
    if slice_count < 1:
        raise ValueError(f"slice_count must be >= 1, got {slice_count}")
    tau = config.interval_seconds if interval_seconds is None else float(interval_seconds)
    kappa = kappa_per_second(config, tau)
    j = np.arange(slice_count + 1, dtype=np.float64)
    if kappa * tau * slice_count == 0.0:
        share = 1.0 - j / slice_count
    else:
        t, horizon = j * tau, slice_count * tau
        share = np.exp(-kappa * t) * np.expm1(-2 * kappa * (horizon - t)) / np.expm1(-2 * kappa * horizon)
    share[0], share[-1] = 1.0, 0.0
    return float(qty) * share


def trade_list(holdings: np.ndarray) -> np.ndarray:
    """Quantities traded in each interval: ``n_k = x_{k-1} - x_k`` (length N)."""
    return -np.diff(np.asarray(holdings, dtype=np.float64))


def expected_cost_and_variance(holdings: np.ndarray, config: AlmgrenChrissConfig,
                               interval_seconds: float | None = None) -> tuple[float, float]:
    """``(E[cost], Var[cost])`` of a trajectory under the model, in quote and quote^2:
    ``E = gamma X^2 / 2 + epsilon sum|n_k| + (eta_tilde / tau) sum n_k^2``,
    ``Var = sigma^2 tau sum_{k=1..N} x_k^2``. Cost is the shortfall against ``X`` times the
    arrival price (positive: worse than arrival)."""
    tau = config.interval_seconds if interval_seconds is None else float(interval_seconds)
    x = np.asarray(holdings, dtype=np.float64)
    n = trade_list(x)
    expected = (config.permanent_impact * x[0] ** 2 / 2 + config.fixed_cost_per_base * float(np.abs(n).sum())
                + config.adjusted_temporary_impact(tau) / tau * float((n * n).sum()))
    variance = config.volatility_per_sqrt_second ** 2 * tau * float((x[1:] ** 2).sum())
    return float(expected), float(variance)


def plan_is(qty: Decimal, start: datetime, duration_seconds: float, instrument: Instrument, price: Decimal,
            config: AlmgrenChrissConfig, first_index: int = 0) -> tuple[PlannedSlice, ...]:
    """Slices over ``[start, start + duration)`` following the optimal trajectory.

    ``N = ceil(duration / config.interval_seconds)`` intervals of exactly ``tau = duration / N``
    seconds (the trajectory uses this ``tau``), slice ``k`` due at ``start + k tau``. Cumulative
    targets ``floor(units * (1 - x_k / X))`` (``units`` = whole steps of ``qty``) make every slice
    a step multiple >= 0, within one step of the trajectory, summing exactly to the whole steps;
    any part of ``qty`` below one step goes to the last slice. Intervals whose slice would be
    below ``instrument.min_qty_at(price)`` are grouped left to right with the next ones (a
    short tail joins the slice before it), one slice per group at its first interval's start.
    Raises ``ScheduleError`` when ``qty`` is not tradable at ``price``."""
    if not duration_seconds > 0:
        raise ScheduleError(f"duration_seconds must be > 0, got {duration_seconds}")
    smallest = require_tradable(qty, instrument, price)
    count = max(1, math.ceil(duration_seconds / config.interval_seconds - 1e-9))
    holdings = optimal_trajectory(1.0, count, config, duration_seconds / count)
    step = instrument.step_size
    units = int(qty // step)
    min_units = int((smallest / step).to_integral_value(rounding=ROUND_CEILING))
    # the 1e-9 tolerance keeps float noise at exact boundaries (TWAP's k / N) from losing a step
    targets = np.clip(np.floor((1.0 - holdings) * units + 1e-9), 0, units).astype(np.int64)
    targets[0], targets[-1] = 0, units
    cumulative = np.maximum.accumulate(targets).tolist()
    bounds = group_bounds(cumulative, min_units) if count > 1 else [0, 1]
    qtys = [Decimal(cumulative[b] - cumulative[a]) * step for a, b in zip(bounds, bounds[1:])]
    qtys[-1] += qty - units * step
    span_us = round(duration_seconds * 1_000_000)
    return tuple(PlannedSlice(first_index + i, start + _US * (span_us * b // count), q)
                 for i, (b, q) in enumerate(zip(bounds, qtys)))


def config_from_market(*, urgency: Urgency, qty: Decimal, price: Decimal, relative_volatility_per_sqrt_second: float,
                       spread_quote: Decimal, volume_per_second: float, interval_seconds: float = 60.0,
                       participation_reference: float = DEFAULT_PARTICIPATION_REFERENCE,
                       min_spread_bps: float = DEFAULT_MIN_SPREAD_BPS, fee_rate: float = 0.0) -> AlmgrenChrissConfig:
    """The model for one parent from market figures: ``lambda = risk_aversion_for(urgency,
    qty * price)``, ``sigma = relative volatility * price`` (e.g. ``estimate_volatility``),
    ``spread = max(spread_quote, min_spread_bps / 10^4 * price)``,
    ``eta = temporary_impact_from_spread(spread, volume_per_second, participation_reference)``,
    ``epsilon = spread / 2 + fee_rate * price``, no permanent impact (it does not change the
    trajectory when ``eta_tilde`` is fixed; it adds the constant ``gamma X^2 / 2``)."""
    price_f = float(price)
    spread = max(float(spread_quote), float(min_spread_bps) / 10_000 * price_f)
    return AlmgrenChrissConfig(
        risk_aversion_per_quote=risk_aversion_for(urgency, float(qty) * price_f),
        volatility_per_sqrt_second=float(relative_volatility_per_sqrt_second) * price_f,
        temporary_impact=temporary_impact_from_spread(spread, volume_per_second, participation_reference),
        fixed_cost_per_base=spread / 2 + float(fee_rate) * price_f,
        interval_seconds=interval_seconds)
