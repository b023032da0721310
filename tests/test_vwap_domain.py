"""VWAP planning and per-slice sizing: exact sums, step and minimum rules, urgency pace,
the participation cap, emergency, re-planning after missed fills."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis.domain.instrument import Instrument
from genesis.domain.schedule import ScheduleError
from genesis.domain.volume_curve import VolumeCurve, VolumeCurveEstimator
from genesis.domain.vwap import (ExecutionScheduler, OrderSlicer, Urgency, interval_share,
                                 intraday_volume_scale, is_behind_schedule, plan_vwap,
                                 scheduled_done_qty, target_qty_for_slice)
from genesis.venue.candles import shipped_candles
from genesis.venue.instruments import SIM_INSTRUMENTS

T0 = datetime(2025, 7, 1, tzinfo=timezone.utc)
BTC = SIM_INSTRUMENTS["BTC/USDT"]
# coarse rules for hand-checkable numbers: at price 100 the smallest order is 0.10
COARSE = Instrument("X/USDT", "X", "USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.01"),
                    min_qty=Decimal("0.01"), min_notional=Decimal("10"))
P100 = Decimal(100)
UNIFORM_24 = VolumeCurve.from_weights([1.0] * 24, T0)
UNIFORM_32 = VolumeCurve.from_weights([1.0] * 32, T0)  # 45-minute bins, shares exact in binary


def _hours(h: float) -> timedelta:
    return timedelta(hours=h)


# ------------------------------------------------------------------ the initial plan
def test_plan_follows_the_curve_and_merges_too_small_slices_by_hand() -> None:
    weights = [1.0] * 24
    weights[10] = 3.0  # 10:00-11:00 trades three times 11:00-12:00
    curve = VolumeCurve.from_weights(weights, T0)
    plan = plan_vwap(Decimal("8"), T0 + _hours(10), T0 + _hours(12), curve, COARSE, P100)
    # 10:00-11:00 carries 3/4 of the window: 6.00 over 60 minutes = 0.10 per minute
    first_hour = [s for s in plan if s.scheduled_at < T0 + _hours(11)]
    assert [s.qty for s in first_hour] == [Decimal("0.10")] * 60
    assert [s.scheduled_at for s in first_hour] == [T0 + _hours(10) + timedelta(minutes=m)
                                                    for m in range(60)]
    # 11:00-12:00: 2.00 over 60 minutes is 0.0333 a minute, below the 0.10 minimum, so
    # consecutive minutes merge into one slice every 3 minutes
    second_hour = plan[60:]
    assert [s.qty for s in second_hour] == [Decimal("0.10")] * 20
    assert [s.scheduled_at for s in second_hour] == [T0 + _hours(11) + timedelta(minutes=3 * j)
                                                     for j in range(20)]
    assert [s.index for s in plan] == list(range(80))
    assert sum(s.qty for s in plan) == Decimal("8")


def test_cumulative_rounding_and_a_short_tail_joining_the_last_slice() -> None:
    plan = plan_vwap(Decimal("1.00"), T0, T0 + timedelta(minutes=7), UNIFORM_24, COARSE, P100)
    # 100 steps over 7 minutes: floor(100*k/7) = 0,14,28,42,57,71,85,100 -> 14,14,14,15,14,14,15
    assert [s.qty for s in plan] == [Decimal(x) / 100 for x in (14, 14, 14, 15, 14, 14, 15)]
    tiny = plan_vwap(Decimal("0.35"), T0, T0 + timedelta(minutes=7), UNIFORM_24, COARSE, P100)
    # 35 steps: cumulative 0,5,10,15,20,25,30,35; groups close at >= 10 steps: 0-2, 2-4, 4-6,
    # and the 5-step tail (minute 6) joins the last group
    assert [(s.scheduled_at - T0).seconds // 60 for s in tiny] == [0, 2, 4]
    assert [s.qty for s in tiny] == [Decimal("0.10"), Decimal("0.10"), Decimal("0.15")]


def test_plan_edge_cases() -> None:
    with pytest.raises(ScheduleError, match="below the smallest tradable quantity 0.10"):
        plan_vwap(Decimal("0.09"), T0, T0 + _hours(1), UNIFORM_24, COARSE, P100)
    with pytest.raises(ScheduleError):
        plan_vwap(Decimal("1"), T0, T0, UNIFORM_24, COARSE, P100)
    one = plan_vwap(Decimal("0.10"), T0, T0 + _hours(1), UNIFORM_24, COARSE, P100, first_index=7)
    assert [(s.index, s.scheduled_at, s.qty) for s in one] == [(7, T0, Decimal("0.10"))]
    # a part of the parent below the step goes to the last slice
    odd = plan_vwap(Decimal("1.005"), T0, T0 + timedelta(minutes=4), UNIFORM_24, COARSE, P100)
    assert [s.qty for s in odd] == [Decimal("0.25")] * 3 + [Decimal("0.255")]
    # 90 s slices over 10 minutes: ceil(600/90) = 7 equal slices of 600/7 s
    seven = OrderSlicer(interval_seconds=90).plan(Decimal("7"), T0, T0 + timedelta(minutes=10),
                                                  UNIFORM_24, COARSE, P100)
    assert len(seven) == 7 and seven[1].scheduled_at == T0 + timedelta(microseconds=600_000_000 // 7)


def test_plan_across_midnight_on_the_shipped_curve() -> None:
    series = shipped_candles("BTC/USDT")
    curve = VolumeCurveEstimator().estimate(series.open_times_ms(), series.volumes_float(), T0)
    start = T0 + _hours(22)
    plan = plan_vwap(Decimal("40"), start, start + _hours(4), curve, BTC, Decimal("107000"))
    assert len(plan) == 240 and sum(s.qty for s in plan) == Decimal("40")
    before = sum(s.qty for s in plan if s.scheduled_at < T0 + _hours(24))
    share = curve.fraction(start, T0 + _hours(24)) / curve.fraction(start, start + _hours(4))
    assert abs(before - Decimal(40) * Decimal(share)) <= BTC.step_size  # within one step


curves = st.lists(st.floats(0.1, 10.0), min_size=24, max_size=24)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=st.integers(1, 2_000_000), price=st.integers(1_000, 200_000),
       start_minute=st.integers(0, 1439), minutes=st.integers(1, 1440),
       interval=st.sampled_from([30, 60, 90, 300]), weights=curves)
def test_plan_property_exact_sum_step_and_minimum(units: int, price: int, start_minute: int,
                                                  minutes: int, interval: int,
                                                  weights: list[float]) -> None:
    qty = units * BTC.step_size
    ref = Decimal(price)
    curve = VolumeCurve.from_weights(weights, T0)
    start = T0 + timedelta(minutes=start_minute)
    end = start + timedelta(minutes=minutes)
    smallest = BTC.min_qty_at(ref)
    if qty < smallest:
        with pytest.raises(ScheduleError):
            plan_vwap(qty, start, end, curve, BTC, ref, interval)
        return
    plan = plan_vwap(qty, start, end, curve, BTC, ref, interval)
    assert sum(s.qty for s in plan) == qty
    assert all(s.qty >= smallest and s.qty == BTC.round_qty_down(s.qty) for s in plan)
    assert plan[0].scheduled_at == start and plan[-1].scheduled_at < end
    assert all(a.scheduled_at < b.scheduled_at for a, b in zip(plan, plan[1:]))
    assert [s.index for s in plan] == list(range(len(plan)))
    assert len(plan) <= -(-minutes * 60 // interval)


# ------------------------------------------------------------------ per-slice sizing
def _target(urgency: Urgency, remaining: str = "10", share: float = 0.1, volume: str = "1000",
            cap: str = "0.10", instrument: Instrument = COARSE):
    return target_qty_for_slice(remaining_qty=Decimal(remaining), slice_share=share,
                                expected_interval_volume=Decimal(volume), instrument=instrument,
                                price=P100, urgency=urgency, participation_cap=Decimal(cap))


def test_urgency_levels_set_the_pace_by_hand() -> None:
    # 10 left, this interval is 10% of the rest of the curve, cap 10% of 1000 = 100
    got = {u: _target(u) for u in Urgency}
    assert {u: t.qty for u, t in got.items()} == {
        Urgency.LOW: Decimal("1.00"), Urgency.MEDIUM: Decimal("1.50"), Urgency.HIGH: Decimal("2.00"),
        Urgency.CRITICAL: Decimal("10"), Urgency.EMERGENCY: Decimal("10")}
    assert not any(t.cap_bound for t in got.values())
    assert [got[u].reason for u in Urgency] == ["curve", "pace", "pace", "pace", "emergency"]
    # the cap at 10% of 12 = 1.20 binds medium and high but not low
    capped = {u: _target(u, volume="12") for u in Urgency}
    assert {u: (t.qty, t.cap_bound) for u, t in capped.items()} == {
        Urgency.LOW: (Decimal("1.00"), False), Urgency.MEDIUM: (Decimal("1.20"), True),
        Urgency.HIGH: (Decimal("1.20"), True), Urgency.CRITICAL: (Decimal("1.20"), True),
        Urgency.EMERGENCY: (Decimal("10"), False)}
    assert capped[Urgency.HIGH].desired_qty == Decimal("2.0")
    assert capped[Urgency.HIGH].cap_qty == Decimal("1.20") and capped[Urgency.HIGH].reason == "cap"


def test_emergency_takes_the_whole_remainder_despite_the_cap_but_not_max_qty() -> None:
    t = _target(Urgency.EMERGENCY, remaining="10.005", share=0.01, volume="0")
    assert (t.qty, t.cap_qty, t.cap_bound, t.reason) == (Decimal("10.005"), None, False, "emergency")
    limited = Instrument("X/USDT", "X", "USDT", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"),
                         Decimal("10"), max_qty=Decimal("4"))
    assert _target(Urgency.EMERGENCY, instrument=limited).qty == Decimal("4")
    assert _target(Urgency.CRITICAL, volume="0").qty == 0  # no expected volume: no child


def test_small_shares_carry_forward_and_dust_is_never_stranded() -> None:
    assert (_target(Urgency.LOW, share=0.005).qty, _target(Urgency.LOW, share=0.005).reason) == \
        (Decimal(0), "below_min")  # 0.05 < 0.10
    assert _target(Urgency.LOW, remaining="1.05", share=0.9).qty == Decimal("0.94")  # leaves 0.11
    assert _target(Urgency.LOW, remaining="1.05", share=0.95).qty == Decimal("1.05")  # not 0.99 + 0.06
    # the cap (1.00) forbids taking 1.05: leave exactly one minimum (0.10) for later
    capped = _target(Urgency.LOW, remaining="1.05", share=0.95, volume="10")
    assert (capped.qty, capped.cap_bound) == (Decimal("0.95"), True)
    assert _target(Urgency.LOW, remaining="0.05", share=1.0).qty == 0  # dust cannot trade
    assert _target(Urgency.LOW, remaining="0", share=0.5).reason == "done"
    with pytest.raises(ValueError):
        _target(Urgency.LOW, share=0.0)


@settings(max_examples=300, deadline=None)
@given(remaining=st.integers(0, 10**7), share=st.floats(1e-6, 1.0), volume=st.integers(0, 10**8),
       cap=st.sampled_from(["0.01", "0.05", "0.10", "0.25"]), scale=st.sampled_from([1, 1000]))
def test_participation_never_exceeds_the_cap_and_pace_is_ordered(remaining: int, share: float,
                                                                 volume: int, cap: str, scale: int) -> None:
    r = Decimal(remaining) / 1000
    v = Decimal(volume) / scale
    got = {u: target_qty_for_slice(remaining_qty=r, slice_share=share, expected_interval_volume=v,
                                   instrument=COARSE, price=P100, urgency=u,
                                   participation_cap=Decimal(cap)) for u in Urgency}
    smallest = COARSE.min_qty_at(P100)
    for u, t in got.items():
        assert 0 <= t.qty <= r
        assert t.qty == 0 or t.qty >= smallest
        if u is not Urgency.EMERGENCY:
            assert t.qty <= Decimal(cap) * v  # the cap is never breached
            if t.cap_bound:  # the cap cut the order: quantity is left for later
                assert t.cap_qty is not None and t.qty <= t.cap_qty and t.qty < r
            elif t.desired_qty >= smallest:  # otherwise the urgency's quantity went out
                assert t.qty >= COARSE.round_qty_down(t.desired_qty)
    low, med, high = (got[u] for u in (Urgency.LOW, Urgency.MEDIUM, Urgency.HIGH))
    assert low.qty <= med.qty <= high.qty <= got[Urgency.CRITICAL].qty <= got[Urgency.EMERGENCY].qty
    # pace multipliers hold up to one minimum order (taken so as not to strand dust)
    assert med.qty <= Decimal("1.5") * low.desired_qty + smallest
    assert high.qty <= 2 * low.desired_qty + smallest


# ------------------------------------------------------------------ re-planning over a window
def _run(urgency: Urgency, missed: set[int] = frozenset(), cap: str = "0.10"):
    """Slices every minute 10:00-11:00 on a uniform curve; slices in ``missed`` fill nothing."""
    sched = ExecutionScheduler(UNIFORM_24, COARSE, daily_volume=Decimal("144000"),
                               participation_cap=Decimal(cap))  # 100 a minute
    start, end = T0 + _hours(10), T0 + _hours(11)
    plan = plan_vwap(Decimal("6"), start, end, UNIFORM_24, COARSE, P100)
    remaining, done = Decimal("6"), []
    for s in plan:
        t = sched.next_slice(remaining_qty=remaining, interval_start=s.scheduled_at,
                             interval_end=s.scheduled_at + timedelta(minutes=1), window_end=end,
                             price=P100, urgency=urgency)
        filled = Decimal(0) if s.index in missed else t.qty
        remaining -= filled
        done.append(filled)
    return plan, done, remaining


def test_low_urgency_reproduces_the_plan_when_fills_keep_up() -> None:
    plan, done, remaining = _run(Urgency.LOW)
    assert remaining == 0
    assert done == [s.qty for s in plan] == [Decimal("0.10")] * 60


def test_missed_fills_are_re_spread_over_the_rest_of_the_window() -> None:
    plan, done, remaining = _run(Urgency.LOW, missed={10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
    assert remaining == 0  # caught up by the end of the window
    assert sum(done[:10]) == Decimal("1.00") and sum(done[10:20]) == 0
    # 5.00 left over 40 minutes: 0.125 -> 0.12 or 0.13 a minute, never a burst
    assert all(Decimal("0.12") <= q <= Decimal("0.13") for q in done[20:])


def test_higher_urgency_front_loads_and_still_finishes() -> None:
    runs = {u: _run(u)[1] for u in (Urgency.LOW, Urgency.MEDIUM, Urgency.HIGH, Urgency.CRITICAL)}
    half = {u: sum(d[:30]) for u, d in runs.items()}
    assert half[Urgency.LOW] == Decimal("3.00")
    assert half[Urgency.LOW] + Decimal("0.5") < half[Urgency.MEDIUM] < half[Urgency.HIGH] <= Decimal("6")
    assert half[Urgency.CRITICAL] == Decimal("6")  # 10% of 100 a minute: done in the first minute
    assert all(sum(d) == Decimal("6") for d in runs.values())
    assert runs[Urgency.MEDIUM][0] == Decimal("0.15") and runs[Urgency.HIGH][0] == Decimal("0.20")


def test_the_cap_binds_at_every_urgency_but_emergency() -> None:
    # 0.05% of 100 a minute = 0.05 < the 0.10 minimum: nothing can trade within the cap
    _, done, remaining = _run(Urgency.CRITICAL, cap="0.0005")
    assert sum(done) == 0 and remaining == Decimal("6")
    _, done, remaining = _run(Urgency.EMERGENCY, cap="0.0005")
    assert done[0] == Decimal("6") and remaining == 0


# ------------------------------------------------------------------ helpers, by hand
def test_scheduler_uses_the_curve_share_and_expected_volume() -> None:
    sched = ExecutionScheduler(UNIFORM_32, COARSE, daily_volume=Decimal("3200"))  # 100 a bin
    start = T0 + timedelta(minutes=45)
    end = start + timedelta(minutes=180)  # four 45-minute bins
    assert sched.expected_interval_volume(start, start + timedelta(minutes=45)) == Decimal(100)
    t = sched.next_slice(remaining_qty=Decimal("40"), interval_start=start,
                         interval_end=start + timedelta(minutes=45), window_end=end, price=P100)
    assert (t.qty, t.cap_qty, t.cap_bound) == (Decimal("10.00"), Decimal("10.00"), False)  # 40/4
    t = sched.next_slice(remaining_qty=Decimal("40"), interval_start=start,
                         interval_end=start + timedelta(minutes=45), window_end=end, price=P100,
                         urgency=Urgency.HIGH, volume_scale=1.5)
    assert (t.qty, t.cap_qty, t.cap_bound) == (Decimal("15.00"), Decimal("15.00"), True)
    assert interval_share(UNIFORM_32, start, start + timedelta(minutes=45), end) == 0.25
    with_volume = VolumeCurve.from_weights([1.0] * 32, T0, typical_daily_volume=3200.0)
    assert ExecutionScheduler.from_curve(with_volume, COARSE).daily_volume == Decimal(3200)
    assert interval_share(UNIFORM_32, start, end + timedelta(minutes=1), end) == 1.0


def test_intraday_volume_scale_by_hand() -> None:
    noon = T0 + _hours(12)  # a uniform day of 1440 expects 720 by noon
    assert intraday_volume_scale(Decimal(1080), UNIFORM_24, Decimal(1440), noon) == pytest.approx(1.5)
    assert intraday_volume_scale(5000, UNIFORM_24, 1440, noon) == 2.0
    assert intraday_volume_scale(100, UNIFORM_24, 1440, noon) == 0.5
    assert intraday_volume_scale(100, UNIFORM_24, 1440, T0 + timedelta(minutes=10)) == 1.0  # too early


def test_schedule_progress_and_behind_by_hand() -> None:
    start, end, now = T0, T0 + _hours(4), T0 + _hours(1)  # a quarter of the window is past
    q = Decimal(40)
    assert scheduled_done_qty(q, UNIFORM_24, start, end, now) == Decimal("10.00000000000000")
    # medium: 40 * (1 - 0.75 ** 1.5) with 0.75 ** 1.5 = 0.649519052838329 (15 digits)
    assert scheduled_done_qty(q, UNIFORM_24, start, end, now, Urgency.MEDIUM) == Decimal("14.01923788646684")
    assert scheduled_done_qty(q, UNIFORM_24, start, end, now, Urgency.HIGH) == Decimal("17.5")
    assert scheduled_done_qty(q, UNIFORM_24, start, end, now, Urgency.CRITICAL) == q
    assert is_behind_schedule(Decimal(10), Decimal("7.9"), q)  # 2.1 behind > 5% of 40
    assert not is_behind_schedule(Decimal(10), Decimal(8), q)


def test_needs_taker_funnel_by_hand() -> None:
    from genesis.domain.vwap import needs_taker

    q = Decimal(40)
    assert not needs_taker(Decimal(10), Decimal(4), q, Decimal("0.2"))  # lag 6 = 20% of the 30 still ahead
    assert needs_taker(Decimal(10), Decimal("3.9"), q, Decimal("0.2"))
    assert needs_taker(Decimal(36), Decimal("35.1"), q, Decimal("0.2"))  # the funnel closes: 20% of 4 = 0.8
    assert not needs_taker(Decimal(36), Decimal("35.2"), q, Decimal("0.2"))
    assert needs_taker(q, Decimal("39.99999"), q, Decimal("0.2")) and not needs_taker(q, q, q, Decimal("0.2"))
    assert needs_taker(Decimal(10), Decimal("9.99999"), q, Decimal(0))
