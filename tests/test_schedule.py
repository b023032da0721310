"""TWAP schedules: property tests of plan_twap, split_equal, respread, feasible_slice_count and
next_slice_qty over many instruments, quantities, prices and windows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from genesis.domain.instrument import Instrument
from genesis.domain.schedule import (DEFAULT_SLICE_SECONDS, ScheduleError, feasible_slice_count, next_slice_qty,
                                     plan_twap, respread, split_equal)
from genesis.venue.instruments import SIM_INSTRUMENTS

BTC = SIM_INSTRUMENTS["BTC/USDT"]
T0 = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


@st.composite
def instruments(draw: st.DrawFn) -> Instrument:
    if draw(st.booleans()):
        return draw(st.sampled_from(sorted(SIM_INSTRUMENTS.values(), key=lambda i: i.symbol)))
    step = Decimal(1).scaleb(-draw(st.integers(0, 8))) * draw(st.sampled_from([1, 5]))
    tick = Decimal(1).scaleb(-draw(st.integers(0, 6)))
    min_qty = step * draw(st.integers(1, 100))
    min_notional = Decimal(draw(st.sampled_from(["0", "1", "5", "10", "100"])))
    return Instrument("X/USDT", "X", "USDT", tick, step, min_qty, min_notional)


@st.composite
def order(draw: st.DrawFn) -> tuple[Instrument, Decimal, Decimal]:
    """(instrument, qty on the step and tradable at price, price on the tick)."""
    inst = draw(instruments())
    price = inst.tick_size * draw(st.integers(1, 10**8))
    smallest = inst.min_qty_at(price)
    qty = smallest + inst.step_size * draw(st.integers(0, 10**9))
    if inst.max_qty is not None:  # a parent above the maximum is refused at submission
        assume(smallest <= inst.max_qty)
        qty = min(qty, inst.max_qty)
    return inst, qty, price


def on_step(q: Decimal, inst: Instrument) -> bool:
    return q % inst.step_size == 0


def assert_times_in_window(times: list[datetime], start: datetime, end: datetime) -> None:
    assert times[0] == start
    assert all(a < b for a, b in zip(times, times[1:])), "times must strictly increase"
    assert all(start <= x < end for x in times), "times must lie in [start, end)"


# -- plan_twap -------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(o=order(), duration_seconds=st.integers(1, 86_400),
       slice_count=st.one_of(st.none(), st.integers(1, 10_000)), first_index=st.integers(0, 50))
def test_plan_twap_invariants(o: tuple[Instrument, Decimal, Decimal], duration_seconds: int,
                              slice_count: int | None, first_index: int) -> None:
    inst, qty, price = o
    plan = plan_twap(qty, T0, duration_seconds, inst, price, slice_count, first_index)
    qtys = [p.qty for p in plan]

    assert sum(qtys) == qty  # exactly, after rounding
    assert all(on_step(q, inst) for q in qtys)
    smallest = inst.min_qty_at(price)
    assert all(q >= smallest for q in qtys)
    for q in qtys:
        inst.check_order(q, price)  # every slice is a valid order at the reference price
    assert max(qtys) - min(qtys) <= inst.step_size
    assert [p.index for p in plan] == list(range(first_index, first_index + len(plan)))
    assert_times_in_window([p.scheduled_at for p in plan], T0, T0 + timedelta(seconds=duration_seconds))
    wanted = slice_count or max(1, duration_seconds // DEFAULT_SLICE_SECONDS)
    assert len(plan) == feasible_slice_count(qty, wanted, inst, price)
    # deterministic
    assert plan == plan_twap(qty, T0, duration_seconds, inst, price, slice_count, first_index)


def test_plan_twap_default_is_one_slice_a_minute_evenly_spaced() -> None:
    plan = plan_twap(Decimal("2.5"), T0, 900, BTC, Decimal("65000"))
    assert len(plan) == 15
    assert [p.scheduled_at for p in plan] == [T0 + timedelta(minutes=i) for i in range(15)]
    assert {p.qty for p in plan} == {Decimal("0.16667"), Decimal("0.16666")}
    assert sum(p.qty for p in plan) == Decimal("2.5")


def test_plan_twap_reduces_the_count_when_slices_would_be_too_small() -> None:
    # 0.001 BTC at 65000 = 65 USDT: at most 13 slices of >= 5 USDT (0.00008 BTC each)
    plan = plan_twap(Decimal("0.001"), T0, 1800, BTC, Decimal("65000"), slice_count=30)
    assert len(plan) == 12  # 0.001 // 0.00008 = 12
    assert all(p.qty * Decimal("65000") >= 5 for p in plan)
    assert sum(p.qty for p in plan) == Decimal("0.001")


def test_plan_twap_refuses_what_cannot_be_scheduled() -> None:
    with pytest.raises(ScheduleError, match="duration"):
        plan_twap(Decimal("1"), T0, 0, BTC, Decimal("65000"))
    with pytest.raises(ScheduleError, match="smallest tradable quantity"):
        plan_twap(Decimal("0.00007"), T0, 600, BTC, Decimal("65000"))


# -- split_equal -----------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(inst=instruments(), units=st.integers(0, 10**10), count=st.integers(1, 2_000))
def test_split_equal_sums_exactly_on_the_step(inst: Instrument, units: int, count: int) -> None:
    qty = inst.step_size * units
    parts = split_equal(qty, count, inst)
    assert len(parts) == count
    assert sum(parts) == qty
    assert all(on_step(p, inst) and p >= 0 for p in parts)
    assert max(parts) - min(parts) <= inst.step_size
    assert parts == sorted(parts, reverse=True)  # the remainder goes to the earliest slices


@given(units=st.integers(1, 10**6), count=st.integers(1, 50), dust=st.integers(1, 9))
def test_split_equal_puts_sub_step_dust_on_the_last_slice(units: int, count: int, dust: int) -> None:
    qty = BTC.step_size * units + BTC.step_size * dust / 10
    parts = split_equal(qty, count, BTC)
    assert sum(parts) == qty
    assert all(on_step(p, BTC) for p in parts[:-1])


def test_split_equal_needs_a_positive_count() -> None:
    with pytest.raises(ValueError):
        split_equal(Decimal("1"), 0, BTC)


# -- respread --------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(inst=instruments(), units=st.integers(0, 10**9),
       indices=st.lists(st.integers(0, 10_000), min_size=1, max_size=500, unique=True).map(sorted),
       offset_ms=st.integers(0, 10**7), span_ms=st.integers(1, 86_400_000))
def test_respread_keeps_indices_and_sums_exactly(inst: Instrument, units: int, indices: list[int],
                                                 offset_ms: int, span_ms: int) -> None:
    remaining = inst.step_size * units
    start = T0 + timedelta(milliseconds=offset_ms)
    end = start + timedelta(milliseconds=span_ms)
    assume(span_ms * 1000 >= len(indices))  # at least a microsecond per slice
    plan = respread(remaining, indices, start, end, inst)
    assert [p.index for p in plan] == indices
    assert sum(p.qty for p in plan) == remaining
    assert all(on_step(p.qty, inst) for p in plan)
    assert_times_in_window([p.scheduled_at for p in plan], start, end)


def test_respread_edge_cases() -> None:
    assert respread(Decimal("1"), [], T0, T0 + timedelta(minutes=5), BTC) == ()
    plan = respread(Decimal("0"), [3, 4], T0, T0 + timedelta(minutes=2), BTC)
    assert [(p.index, p.qty, p.scheduled_at) for p in plan] == [
        (3, Decimal(0), T0), (4, Decimal(0), T0 + timedelta(minutes=1))]
    # an empty (or inverted) window puts everything at its start
    plan = respread(Decimal("0.3"), [7, 8, 9], T0, T0 - timedelta(seconds=1), BTC)
    assert [p.scheduled_at for p in plan] == [T0] * 3
    assert sum(p.qty for p in plan) == Decimal("0.3")


# -- feasible_slice_count --------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(o=order(), wanted=st.integers(1, 10_000))
def test_feasible_slice_count_is_the_largest_tradable_count(o: tuple[Instrument, Decimal, Decimal],
                                                            wanted: int) -> None:
    inst, qty, price = o
    n = feasible_slice_count(qty, wanted, inst, price)
    smallest = inst.min_qty_at(price)
    assert 1 <= n <= wanted
    assert inst.round_qty_down(qty / n) >= smallest  # n equal slices are each tradable
    if n < wanted:
        assert qty / (n + 1) < smallest  # and one more would not be
    assert n == feasible_slice_count(qty, wanted, inst, price)


def test_feasible_slice_count_reduces_deterministically() -> None:
    price = Decimal("50000")  # min notional 5 USDT -> smallest slice 0.0001 BTC
    assert BTC.min_qty_at(price) == Decimal("0.0001")
    assert feasible_slice_count(Decimal("0.01"), 60, BTC, price) == 60
    assert feasible_slice_count(Decimal("0.001"), 60, BTC, price) == 10
    assert feasible_slice_count(Decimal("0.00019"), 60, BTC, price) == 1
    assert feasible_slice_count(Decimal("0.0001"), 60, BTC, price) == 1


@given(o=order(), short_steps=st.integers(1, 10**6))
def test_feasible_slice_count_raises_below_the_minimum(o: tuple[Instrument, Decimal, Decimal],
                                                       short_steps: int) -> None:
    inst, _, price = o
    smallest = inst.min_qty_at(price)
    qty = smallest - inst.step_size * short_steps
    assume(qty >= 0)
    with pytest.raises(ScheduleError, match="smallest tradable quantity"):
        feasible_slice_count(qty, 10, inst, price)


# -- next_slice_qty --------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(o=order(), slices_left=st.integers(1, 500))
def test_next_slice_qty(o: tuple[Instrument, Decimal, Decimal], slices_left: int) -> None:
    inst, remaining, price = o
    q = next_slice_qty(remaining, slices_left, inst, price)
    if slices_left == 1:
        assert q == remaining
    else:
        assert on_step(q, inst)
        assert q <= remaining / slices_left
        assert q == 0 or q >= inst.min_qty_at(price)
        if q == 0:
            assert inst.round_qty_down(remaining / slices_left) < inst.min_qty_at(price)


@settings(max_examples=200, deadline=None)
@given(o=order(), slices=st.integers(1, 300))
def test_next_slice_qty_over_a_whole_schedule_sums_to_the_parent(o: tuple[Instrument, Decimal, Decimal],
                                                                  slices: int) -> None:
    inst, qty, price = o
    remaining, sent = qty, []
    for left in range(slices, 0, -1):
        q = next_slice_qty(remaining, left, inst, price)
        sent.append(q)
        remaining -= q
    assert remaining == 0
    assert sum(sent) == qty


def test_next_slice_qty_examples() -> None:
    price = Decimal("50000")
    assert next_slice_qty(Decimal("0"), 5, BTC, price) == 0
    assert next_slice_qty(Decimal("-0.1"), 5, BTC, price) == 0
    assert next_slice_qty(Decimal("1"), 3, BTC, price) == Decimal("0.33333")
    assert next_slice_qty(Decimal("0.0003"), 4, BTC, price) == 0  # 0.000075 < 0.0001: carried forward
    assert next_slice_qty(Decimal("0.00003"), 1, BTC, price) == Decimal("0.00003")  # the last takes all
