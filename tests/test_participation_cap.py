"""The participation cap holds against the volume the market actually traded in each slice's
interval, not against a forecast: on a market whose volume collapses, slices wait or shrink,
what is held back carries forward, and a window that ends short expires with the remainder."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from genesis.clock import VirtualClock
from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.twap import taker_allowance
from genesis.venue.candles import CandleSeries
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal
BTC = SIM_INSTRUMENTS["BTC/USDT"]
START = T0 + timedelta(days=HISTORY_DAYS, hours=1)
FIRST = HISTORY_DAYS * 1440 + 60  # the window's first minute, as a candle index
CAP = D("0.10")


def collapsing(i: int) -> Decimal:
    """10 BTC a minute, except 0.5 BTC a minute for ten minutes from the window's 5th minute."""
    return D("0.5") if FIRST + 5 <= i < FIRST + 15 else D("10")


def test_taker_allowance_is_the_cap_of_traded_volume_less_what_was_filled():
    assert taker_allowance(CAP, D("4"), D("0"), D("1"), BTC) == D("0.4")
    assert taker_allowance(CAP, D("4"), D("0.15"), D("1"), BTC) == D("0.25")
    assert taker_allowance(CAP, D("4"), D("0"), D("0.3"), BTC) == D("0.3")  # never more than wanted
    assert taker_allowance(CAP, D("4"), D("0.5"), D("1"), BTC) == D("0")  # already above: nothing
    assert taker_allowance(CAP, D("0.123456"), D("0"), D("1"), BTC) == D("0.01234")  # down to the step
    assert taker_allowance(CAP, None, D("0"), D("1"), BTC) == D("0")  # unknown volume: fail closed


async def test_sim_reports_the_volume_traded_so_far_as_it_fills_resting_orders():
    btc = series(HISTORY_DAYS + 1, flat("100000"), collapsing)
    clock = VirtualClock(START + timedelta(minutes=4, seconds=30))
    sim = venue(clock, btc)
    start = START + timedelta(minutes=4)
    # half of a 10 BTC minute so far; the rest of the interval has not traded yet
    assert await sim.traded_volume("BTC/USDT", start, start + timedelta(minutes=5)) == D("5")
    clock.advance_to(clock.now() + timedelta(minutes=1))  # through the first collapsed minute's half
    assert await sim.traded_volume("BTC/USDT", start, start + timedelta(minutes=5)) == D("10.25")


@pytest.mark.parametrize("algo, urgency", [("vwap", "critical"), ("twap", None)])
async def test_no_slice_exceeds_the_cap_of_real_volume_when_volume_collapses(db_path, algo, urgency):
    btc = series(HISTORY_DAYS + 1, flat("100000"), collapsing)
    config = parse_config({"twap": {"volume_lookback_days": HISTORY_DAYS}})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, btc)) as h:
        request = h.request(algo=algo, qty="20", duration="20m", **({"urgency": urgency} if urgency else {}))
        execution_id = await h.supervisor.submit(request)
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
    agg = Execution.replay(execution_id, history)
    measured = {m.slice_index: m for m in history if isinstance(m, ev.SliceParticipationMeasured)}
    slices = [e for e in history if isinstance(e, ev.TwapSliceExecuted) and e.filled_qty > 0]
    assert slices and not any(s.cap_overridden for s in slices)
    for s in slices:
        m = measured[s.slice_index]
        assert m.market_volume and m.participation is not None
        assert m.participation <= CAP + BTC.step_size / m.market_volume, (s.slice_index, m)
    # in the collapsed minutes the slices were held to the cap of what traded: they shrank
    collapsed = [s for s in history if isinstance(s, ev.TwapSliceExecuted)
                 and START + timedelta(minutes=5) <= s.interval_start < START + timedelta(minutes=14)]
    assert collapsed and all(s.cap_bound and s.filled_qty < s.planned_qty for s in collapsed)
    # 20 BTC cannot fit under 10% of what traded: the window ends short and says so
    assert agg.state.value == "expired"
    assert agg.filled_qty < D("20") and agg.remaining_qty == D("20") - agg.filled_qty
    (ended,) = [e for e in history if isinstance(e, ev.TwapCompleted)]
    assert ended.reason == "window_ended" and ended.remaining_qty == agg.remaining_qty > 0


async def test_a_maker_leg_rests_only_what_the_market_already_traded_room_for(db_path):
    # resting orders fill 25% of the market's flow (the simulator's limit_fill_share): a maker
    # leg sized on the forecast (10 BTC a minute until the window, 1 in it) would take 25% of
    # what traded while it rested
    wide = series(HISTORY_DAYS + 1, flat("100000"), lambda i: D("1") if i >= FIRST else D("10"))
    btc = CandleSeries.from_candles([dataclasses.replace(c, low=c.low - 50, high=c.high + 50)
                                     for c in wide.range(wide.first_open_time, wide.end_time)], "BTC/USDT")
    config = parse_config({"twap": {"volume_lookback_days": HISTORY_DAYS, "min_duration_seconds": 60}})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, btc)) as h:
        execution_id = await h.supervisor.submit(h.request(qty="2", duration="2m", slices=12))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
    slices = [e for e in history if isinstance(e, ev.TwapSliceExecuted) and e.filled_qty > 0]
    assert slices and any(s.maker_qty > 0 for s in slices)
    for m in (e for e in history if isinstance(e, ev.SliceParticipationMeasured) and e.participation):
        assert m.market_volume and m.participation <= CAP + BTC.step_size / m.market_volume, m
