"""POV sizing: the max-participation bound, the parent bound, target tracking, the limit price,
zero volume, minimum-order carry-forward and config validation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.domain.instrument import Instrument
from genesis.domain.orders import Side
from genesis.domain.pov import PovConfig, PovConfigError, PovDecision, limit_forbids, pov_finished, pov_slice_qty

# at price 100 the smallest order is 0.01 (min notional 1): small enough not to interfere
FINE = Instrument("X/USDT", "X", "USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.01"),
                  min_qty=Decimal("0.01"), min_notional=Decimal("1"))
# at price 100 the smallest order is 1.00 (min notional 100)
COARSE = Instrument("Y/USDT", "Y", "USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.01"),
                    min_qty=Decimal("0.01"), min_notional=Decimal("100"))
P100 = Decimal(100)


def _run(config: PovConfig, parent: Decimal, volumes: list[Decimal], instrument: Instrument = FINE,
         side: Side = Side.BUY, price: Decimal = P100) -> list[tuple[Decimal, Decimal, PovDecision]]:
    """Every decision filled in full: (cumulative market volume, cumulative done, decision)."""
    done, cumulative, out = Decimal(0), Decimal(0), []
    for v in volumes:
        cumulative += v
        d = pov_slice_qty(config=config, side=side, interval_volume=v, cumulative_volume=cumulative,
                          done_qty=done, remaining_qty=parent - done, instrument=instrument, price=price)
        done += d.qty
        out.append((cumulative, done, d))
    return out


participation = st.integers(1, 50).map(lambda n: Decimal(n) / 100)
volume = st.integers(0, 20_000).map(lambda n: Decimal(n) / 100)


@settings(max_examples=200, deadline=None)
@given(target=participation, extra=st.integers(0, 50), low_pct=st.integers(0, 100),
       parent=st.integers(1, 100_000).map(lambda n: Decimal(n) / 100),
       volumes=st.lists(volume, min_size=1, max_size=40), coarse=st.booleans())
def test_cumulative_children_never_exceed_max_participation_nor_the_parent(
        target: Decimal, extra: int, low_pct: int, parent: Decimal, volumes: list[Decimal], coarse: bool) -> None:
    high = min(Decimal(1), target + Decimal(extra) / 100)
    config = PovConfig(target, min_participation=target * low_pct / 100, max_participation=high)
    instrument = COARSE if coarse else FINE
    for cumulative, done, decision in _run(config, parent, volumes, instrument):
        assert decision.qty >= 0
        assert decision.qty == instrument.round_qty_down(decision.qty) or done == parent
        assert done <= high * cumulative + instrument.step_size
        assert done <= parent


@settings(max_examples=100, deadline=None)
@given(target=participation, per_interval=st.integers(100, 100_000).map(lambda n: Decimal(n) / 100),
       intervals=st.integers(1, 60))
def test_a_steady_market_is_tracked_within_one_step(target: Decimal, per_interval: Decimal, intervals: int) -> None:
    config = PovConfig(target)
    parent = Decimal(10) ** 9  # never runs out
    for cumulative, done, decision in _run(config, parent, [per_interval] * intervals):
        assert abs(done - target * cumulative) <= FINE.step_size
        assert decision.reason in ("target", "min_participation")


def test_hand_example_catch_up_is_paid_at_max_participation_of_new_volume() -> None:
    config = PovConfig(Decimal("0.05"), max_participation=Decimal("0.10"))
    # 1,000 traded while we had done nothing (e.g. a limit block): target 50, behind by 50
    d = pov_slice_qty(config=config, side=Side.BUY, interval_volume=Decimal(100), cumulative_volume=Decimal(1100),
                      done_qty=Decimal(0), remaining_qty=Decimal(500), instrument=FINE, price=P100)
    assert (d.target_qty, d.wanted_qty, d.cap_qty, d.qty, d.reason) == (
        Decimal("55.00"), Decimal("55.00"), Decimal("10.00"), Decimal("10.00"), "cap")


def test_the_limit_price_blocks_and_the_shortfall_is_caught_up_afterwards() -> None:
    config = PovConfig(Decimal("0.10"), limit_price=Decimal(100))
    args = dict(interval_volume=Decimal(50), cumulative_volume=Decimal(50), done_qty=Decimal(0),
                remaining_qty=Decimal(100), instrument=FINE)
    buy = pov_slice_qty(config=config, side=Side.BUY, price=Decimal("100.01"), **args)
    sell = pov_slice_qty(config=config, side=Side.SELL, price=Decimal("99.99"), **args)
    assert (buy.qty, buy.limit_blocked, buy.reason) == (Decimal(0), True, "limit")
    assert (sell.qty, sell.limit_blocked) == (Decimal(0), True)
    at_limit = pov_slice_qty(config=config, side=Side.BUY, price=Decimal(100), **args)
    assert (at_limit.qty, at_limit.limit_blocked) == (Decimal("5.00"), False)
    # three blocked intervals of 50, then the price comes back: catch-up at most 20% of the new 50
    after = pov_slice_qty(config=config, side=Side.BUY, price=Decimal(99), interval_volume=Decimal(50),
                          cumulative_volume=Decimal(200), done_qty=Decimal(0), remaining_qty=Decimal(100),
                          instrument=FINE)
    assert (after.wanted_qty, after.qty) == (Decimal("20.0"), Decimal("10.00"))
    assert limit_forbids(Side.BUY, Decimal(1), None) is False


def test_a_zero_volume_interval_trades_nothing() -> None:
    config = PovConfig(Decimal("0.05"), min_participation=Decimal("0.02"))
    d = pov_slice_qty(config=config, side=Side.BUY, interval_volume=Decimal(0), cumulative_volume=Decimal(1000),
                      done_qty=Decimal(50), remaining_qty=Decimal(10), instrument=FINE, price=P100)
    assert (d.qty, d.reason) == (Decimal(0), "no_volume")
    first = _run(config, Decimal(10), [Decimal(0)] * 5)
    assert all(done == 0 for _, done, _ in first)


def test_below_minimum_orders_are_carried_until_one_minimum_is_due() -> None:
    # 5% of 8 per interval is 0.40, below the 1.00 minimum order: carried, then one minimum
    config = PovConfig(Decimal("0.05"), max_participation=Decimal("0.10"))
    runs = _run(config, Decimal(3), [Decimal(8)] * 8, COARSE)
    # targets 0.40, 0.80, 1.20, 1.60, 2.00, 2.40, 2.80, 3.20: one minimum each time 1.00 is due
    assert [d.qty for _, _, d in runs] == [Decimal(0), Decimal(0), Decimal("1.00"), Decimal(0),
                                           Decimal("1.00"), Decimal(0), Decimal(0), Decimal("1.00")]
    assert [d.reason for _, _, d in runs][:2] == ["below_min", "below_min"]
    for cumulative, done, _ in runs:
        assert done <= Decimal("0.10") * cumulative


def test_the_last_child_takes_an_untradable_remainder() -> None:
    config = PovConfig(Decimal("0.10"))
    d = pov_slice_qty(config=config, side=Side.SELL, interval_volume=Decimal(10), cumulative_volume=Decimal(100),
                      done_qty=Decimal(9), remaining_qty=Decimal("1.50"), instrument=COARSE, price=P100)
    assert d.qty == Decimal("1.50")  # 1.00 would strand 0.50, below the 1.00 minimum


def test_min_participation_trades_even_when_ahead() -> None:
    config = PovConfig(Decimal("0.05"), min_participation=Decimal("0.02"))
    d = pov_slice_qty(config=config, side=Side.BUY, interval_volume=Decimal(100), cumulative_volume=Decimal(1000),
                      done_qty=Decimal(60), remaining_qty=Decimal(100), instrument=FINE, price=P100)
    assert (d.qty, d.reason) == (Decimal("2.00"), "min_participation")


def test_finished_when_filled_or_past_the_deadline() -> None:
    now = datetime(2025, 7, 1, tzinfo=timezone.utc)
    assert pov_finished(Decimal(0), now, None)
    assert not pov_finished(Decimal(1), now, None)
    assert pov_finished(Decimal(1), now, now)
    assert not pov_finished(Decimal(1), now, now + timedelta(seconds=1))


@pytest.mark.parametrize("kwargs, field", [
    (dict(target_participation=Decimal(0)), "target_participation"),
    (dict(target_participation=Decimal("1.5")), "target_participation"),
    (dict(target_participation=0.05), "target_participation"),
    (dict(target_participation=Decimal("0.05"), min_participation=Decimal("0.06")), "min_participation"),
    (dict(target_participation=Decimal("0.05"), max_participation=Decimal("0.04")), "max_participation"),
    (dict(target_participation=Decimal("0.05"), limit_price=Decimal(0)), "limit_price"),
    (dict(target_participation=Decimal("0.05"), interval_seconds=0), "interval_seconds"),
    (dict(target_participation="NaN"), "target_participation"),
])
def test_bad_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(PovConfigError, match=field):
        PovConfig(**kwargs)


def test_config_defaults_max_to_twice_the_target() -> None:
    assert PovConfig(Decimal("0.05")).max_participation == Decimal("0.10")
    assert PovConfig(Decimal("0.7")).max_participation == Decimal(1)
    assert PovConfig("0.05").target_participation == Decimal("0.05")


def test_a_remainder_that_would_break_max_participation_waits_for_more_volume() -> None:
    config = PovConfig(Decimal("0.10"), max_participation=Decimal("0.10"))
    args = dict(config=config, side=Side.BUY, interval_volume=Decimal(10), remaining_qty=Decimal("1.50"),
                instrument=COARSE, price=P100)
    # 1.00 would strand 0.50 (below the 1.00 minimum); all 1.50 would exceed 10% of 100 - 8.80
    held = pov_slice_qty(cumulative_volume=Decimal(100), done_qty=Decimal("8.80"), **args)
    assert (held.qty, held.reason) == (Decimal(0), "below_min")
    later = pov_slice_qty(cumulative_volume=Decimal(110), done_qty=Decimal("8.80"), **args)
    assert later.qty == Decimal("1.50")  # 10.30 done <= 10% of 110
