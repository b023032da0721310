"""Almgren-Chriss implementation shortfall: the hand-computed example, the TWAP limit,
front-loading with risk aversion, exact sums on the step, the efficient frontier, the
impact rule, the urgency mapping, config validation and the volatility estimator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.domain.implementation_shortfall import (AlmgrenChrissConfig, AlmgrenChrissConfigError,
                                                     config_from_market, expected_cost_and_variance,
                                                     kappa_per_second, optimal_trajectory, plan_is,
                                                     risk_aversion_for, temporary_impact_from_spread)
from genesis.domain.instrument import Instrument
from genesis.domain.schedule import ScheduleError, split_equal
from genesis.domain.volatility import DEFAULT_VOLATILITY_PER_SQRT_SECOND, VolatilityError, estimate_volatility
from genesis.domain.vwap import Urgency

T0 = datetime(2025, 7, 1, tzinfo=timezone.utc)
WHOLE = Instrument("X/USDT", "X", "USDT", tick_size=Decimal("0.01"), step_size=Decimal(1),
                   min_qty=Decimal(1), min_notional=Decimal(1))
FINE = Instrument("Y/USDT", "Y", "USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
                  min_qty=Decimal("0.001"), min_notional=Decimal("0.1"))
P100 = Decimal(100)


def _model(risk_aversion: float, interval_seconds: float = 60.0) -> AlmgrenChrissConfig:
    return AlmgrenChrissConfig(risk_aversion_per_quote=risk_aversion, volatility_per_sqrt_second=0.05,
                               temporary_impact=2.0, interval_seconds=interval_seconds)


def _cumulative(qtys: list[Decimal]) -> list[Decimal]:
    out, acc = [], Decimal(0)
    for q in qtys:
        acc += q
        out.append(acc)
    return out


def test_hand_computed_three_slices() -> None:
    # lambda sigma^2 / eta = 1 * 1 / 2 = 0.5, tau = 1: cosh(kappa) = 1 + 0.5 / 2 = 1.25, kappa = ln 2.
    # sinh(ln2) = 3/4, sinh(2 ln2) = 15/8, sinh(3 ln2) = 63/16: x = 21 * (1, 30/63, 12/63, 0)
    config = AlmgrenChrissConfig(risk_aversion_per_quote=1.0, volatility_per_sqrt_second=1.0,
                                 temporary_impact=2.0, interval_seconds=1.0)
    assert kappa_per_second(config) == pytest.approx(math.log(2), rel=1e-12)
    holdings = optimal_trajectory(21, 3, config)
    assert holdings == pytest.approx([21, 10, 4, 0], abs=1e-12)
    plan = plan_is(Decimal(21), T0, 3, WHOLE, P100, config)
    assert [(s.index, s.scheduled_at, s.qty) for s in plan] == [
        (0, T0, Decimal(11)), (1, T0 + timedelta(seconds=1), Decimal(6)), (2, T0 + timedelta(seconds=2), Decimal(4))]
    # E = (eta / tau) * (11^2 + 6^2 + 4^2) = 2 * 173; Var = sigma^2 tau (10^2 + 4^2 + 0^2)
    assert expected_cost_and_variance(holdings, config) == pytest.approx((346.0, 116.0), rel=1e-12)


def test_expected_cost_includes_fixed_and_permanent_impact() -> None:
    config = AlmgrenChrissConfig(risk_aversion_per_quote=0.0, volatility_per_sqrt_second=1.0, temporary_impact=2.0,
                                 permanent_impact=1.0, fixed_cost_per_base=0.5, interval_seconds=1.0)
    # TWAP 6 -> 4, 2, 0: gamma X^2/2 = 18, epsilon * 6 = 3, (2 - 0.5) / 1 * (4+4+4) = 18
    assert expected_cost_and_variance(np.array([6.0, 4.0, 2.0, 0.0]), config) == pytest.approx((39.0, 20.0))


@settings(max_examples=150, deadline=None)
@given(units=st.integers(1, 10_000_000), count=st.integers(1, 120), tiny=st.sampled_from([0.0, 1e-15]))
def test_zero_risk_aversion_is_twap_within_a_step(units: int, count: int, tiny: float) -> None:
    qty = Decimal(units) * FINE.step_size
    plan = plan_is(qty, T0, count * 60, FINE, P100, _model(tiny))
    twap = split_equal(qty, count, FINE)
    if len(plan) == count:  # no slice was merged for the minimums
        assert all(abs(p.qty - t) <= FINE.step_size for p, t in zip(plan, twap))
    assert sum(p.qty for p in plan) == qty
    assert optimal_trajectory(1.0, count, _model(tiny)) == pytest.approx(1 - np.arange(count + 1) / count)


@settings(max_examples=150, deadline=None)
@given(units=st.integers(1, 10_000_000), sub_step=st.integers(0, 9), count=st.integers(1, 90),
       risk_aversion=st.floats(0, 1e6), interval=st.sampled_from([1.0, 10.0, 60.0, 300.0]),
       coarse=st.booleans())
def test_plan_sums_exactly_and_every_slice_is_non_negative_on_the_step(
        units: int, sub_step: int, count: int, risk_aversion: float, interval: float, coarse: bool) -> None:
    instrument = WHOLE if coarse else FINE
    qty = Decimal(units) * instrument.step_size + instrument.step_size * sub_step / 10
    if qty < instrument.min_qty_at(P100):
        with pytest.raises(ScheduleError, match="below the smallest tradable"):
            plan_is(qty, T0, count * interval, instrument, P100, _model(risk_aversion, interval))
        return
    plan = plan_is(qty, T0, count * interval, instrument, P100, _model(risk_aversion, interval))
    assert sum(p.qty for p in plan) == qty
    assert all(p.qty >= 0 for p in plan)
    assert all(p.qty == instrument.round_qty_down(p.qty) for p in plan[:-1])
    assert all(p.qty >= instrument.min_qty_at(P100) for p in plan)
    assert [p.index for p in plan] == list(range(len(plan)))
    times = [p.scheduled_at for p in plan]
    assert times == sorted(set(times)) and times[0] == T0 and times[-1] < T0 + timedelta(seconds=count * interval)


@settings(max_examples=100, deadline=None)
@given(units=st.integers(1_000, 10_000_000), count=st.integers(2, 60),
       risk_aversions=st.lists(st.floats(0, 1e4), min_size=2, max_size=5))
def test_higher_risk_aversion_front_loads_and_the_cumulative_plan_dominates(
        units: int, count: int, risk_aversions: list[float]) -> None:
    qty = Decimal(units) * FINE.step_size
    previous = None
    for lam in sorted(risk_aversions):
        plan = plan_is(qty, T0, count * 60, FINE, P100, _model(lam))
        if len(plan) != count:
            return  # merged for the minimums: slices no longer line up interval by interval
        done = _cumulative([p.qty for p in plan])
        if previous is not None:
            assert plan[0].qty >= previous[0]
            assert all(a >= b for a, b in zip(done, previous))
        previous = done
    low, high = optimal_trajectory(1.0, count, _model(0.01)), optimal_trajectory(1.0, count, _model(1.0))
    assert all(high[1:-1] < low[1:-1])  # strictly: higher lambda holds less at every inner time


def test_efficient_frontier_higher_risk_aversion_lower_variance_higher_cost() -> None:
    points = [expected_cost_and_variance(optimal_trajectory(100.0, 30, _model(lam)), _model(lam))
              for lam in (0.0, 0.01, 0.1, 1.0, 10.0)]
    costs, variances = zip(*points)
    assert list(costs) == sorted(costs) and len(set(costs)) == len(costs)
    assert list(variances) == sorted(variances, reverse=True) and len(set(variances)) == len(variances)
    # each trajectory is optimal for its own lambda: no other one beats it on E + lambda Var
    for lam in (0.01, 1.0):
        best = sum(np.array(expected_cost_and_variance(optimal_trajectory(100.0, 30, _model(lam)), _model(lam)))
                   * [1, lam])
        assert all(c + lam * v >= best - 1e-9 for c, v in points)


def test_extreme_risk_aversion_trades_everything_first_without_overflow() -> None:
    holdings = optimal_trajectory(5.0, 100, _model(1e12))
    assert np.all(np.isfinite(holdings)) and holdings[0] == 5.0 and holdings[1] < 1e-9
    plan = plan_is(Decimal(5), T0, 6000, WHOLE, P100, _model(1e12))
    assert [p.qty for p in plan] == [Decimal(5)]


def test_urgency_maps_to_increasing_risk_aversion_and_front_loading() -> None:
    notional = 1_000_000.0
    lambdas = [risk_aversion_for(u, notional) for u in (Urgency.LOW, Urgency.MEDIUM, Urgency.HIGH, Urgency.CRITICAL)]
    assert lambdas == [1 / notional, 10 / notional, 100 / notional, 1000 / notional]
    with pytest.raises(ValueError, match="emergency"):
        risk_aversion_for(Urgency.EMERGENCY, notional)
    firsts = []
    for urgency in (Urgency.LOW, Urgency.MEDIUM, Urgency.HIGH, Urgency.CRITICAL):
        config = config_from_market(urgency=urgency, qty=Decimal(10), price=Decimal(60_000),
                                    relative_volatility_per_sqrt_second=DEFAULT_VOLATILITY_PER_SQRT_SECOND,
                                    spread_quote=Decimal("0.5"), volume_per_second=1.0)
        firsts.append(plan_is(Decimal(10), T0, 3600, FINE, Decimal(60_000), config)[0].qty)
    assert firsts == sorted(firsts) and len(set(firsts)) == 4


def test_impact_rule_and_market_config_by_hand() -> None:
    # half of a 0.20 spread at 1% of 5 base/s: 0.10 / 0.05 = 2 quote per (base/s)
    assert temporary_impact_from_spread(0.2, 5.0, 0.01) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="volume_per_second"):
        temporary_impact_from_spread(0.2, 0.0)
    config = config_from_market(urgency=Urgency.MEDIUM, qty=Decimal(2), price=Decimal(50), spread_quote=Decimal("0.2"),
                                relative_volatility_per_sqrt_second=0.001, volume_per_second=5.0, fee_rate=0.001)
    assert config.risk_aversion_per_quote == pytest.approx(10 / 100)
    assert config.volatility_per_sqrt_second == pytest.approx(0.05)
    assert config.temporary_impact == pytest.approx(2.0)
    assert config.fixed_cost_per_base == pytest.approx(0.1 + 0.05)
    # a 1-tick book: the spread is floored at min_spread_bps of the price (1 bp of 50_000 = 5)
    floored = config_from_market(urgency=Urgency.LOW, qty=Decimal(1), price=Decimal(50_000),
                                 spread_quote=Decimal("0.01"), relative_volatility_per_sqrt_second=0.001,
                                 volume_per_second=5.0)
    assert floored.temporary_impact == pytest.approx(2.5 / 0.05)
    assert floored.fixed_cost_per_base == pytest.approx(2.5)


@pytest.mark.parametrize("kwargs, field", [
    (dict(risk_aversion_per_quote=-1.0), "risk_aversion_per_quote"),
    (dict(volatility_per_sqrt_second=float("nan")), "volatility_per_sqrt_second"),
    (dict(temporary_impact=0.0), "temporary_impact"),
    (dict(permanent_impact=-0.1), "permanent_impact"),
    (dict(interval_seconds=0.0), "interval_seconds"),
    (dict(fixed_cost_per_base="0.1"), "fixed_cost_per_base"),
    (dict(permanent_impact=1.0, interval_seconds=4.0), "temporary_impact .* must exceed permanent_impact"),
])
def test_bad_config_names_the_field(kwargs: dict, field: str) -> None:
    base = dict(risk_aversion_per_quote=1.0, volatility_per_sqrt_second=1.0, temporary_impact=2.0)
    with pytest.raises(AlmgrenChrissConfigError, match=field):
        AlmgrenChrissConfig(**{**base, **kwargs})


def test_plan_rejects_a_bad_window() -> None:
    with pytest.raises(ScheduleError, match="duration_seconds"):
        plan_is(Decimal(5), T0, 0, WHOLE, P100, _model(1.0))


@dataclass(frozen=True)
class _Bar:
    open_time: datetime
    close: Decimal


def _bars(closes: list[float], minutes: list[int] | None = None) -> list[_Bar]:
    minutes = minutes if minutes is not None else list(range(len(closes)))
    return [_Bar(T0 + timedelta(minutes=m), Decimal(str(c))) for m, c in zip(minutes, closes)]


def test_volatility_from_close_to_close_log_returns_per_sqrt_second() -> None:
    up, down = math.exp(0.001), math.exp(-0.001)
    closes = [100.0]
    for i in range(20):
        closes.append(closes[-1] * (up if i % 2 else down))
    estimate = estimate_volatility(_bars(closes))
    assert not estimate.fallback and estimate.returns_used == 20
    assert estimate.per_sqrt_second == pytest.approx(0.001 / math.sqrt(60), rel=1e-6)  # 0.1% a minute
    assert estimate.over(60) == pytest.approx(0.001, rel=1e-6)
    # a missing minute: that return spans 120 s and is counted as such
    gappy = estimate_volatility(_bars(closes[:11], [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]))
    assert gappy.per_sqrt_second == pytest.approx(math.sqrt(10 * 0.001 ** 2 / 660), rel=1e-6)


def test_volatility_falls_back_when_candles_are_too_few_and_rejects_bad_candles() -> None:
    few = estimate_volatility(_bars([100.0, 101.0, 100.5]))
    assert (few.per_sqrt_second, few.returns_used, few.fallback) == (DEFAULT_VOLATILITY_PER_SQRT_SECOND, 2, True)
    assert DEFAULT_VOLATILITY_PER_SQRT_SECOND == pytest.approx(0.8 / math.sqrt(365 * 86400))
    with pytest.raises(VolatilityError, match="close must be > 0"):
        estimate_volatility(_bars([100.0, 0.0, 100.0]))
    with pytest.raises(VolatilityError, match="ascending"):
        estimate_volatility(_bars([100.0, 101.0], [1, 1]))
