"""Re-plans (resume, restart, late loop, early completion) keep adaptive timing: the open
slices are placed by the usual volume of the remaining window's minutes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.schedule import respread, respread_by_volume
from genesis.engine.control import Desire
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue

BTC = SIM_INSTRUMENTS["BTC/USDT"]
D = Decimal
START = T0 + timedelta(days=HISTORY_DAYS, hours=1)
AT = datetime(2025, 6, 10, 13, 0, 30, tzinfo=timezone.utc)


def of(history: list[ev.Event], cls: type) -> list:  # type: ignore[type-arg]
    return [e for e in history if isinstance(e, cls)]


def test_busy_minutes_get_more_slices_and_quantities_sum_exactly():
    # [13:00:30, 13:10:30): minutes 13:05-13:09 usually trade 9x the others
    profile = [1.0] * 5 + [9.0] * 5 + [1.0]
    plan = respread_by_volume(D("1.23457"), list(range(3, 23)), AT, AT + timedelta(minutes=10), profile, BTC)
    assert [p.index for p in plan] == list(range(3, 23))
    assert plan[0].scheduled_at == AT
    times = [p.scheduled_at for p in plan]
    assert times == sorted(times) and times[-1] < AT + timedelta(minutes=10)
    busy = [t for t in times if AT.replace(second=0) + timedelta(minutes=5) <= t < AT.replace(second=0) + timedelta(minutes=10)]
    # 45 of 50 units of expected volume: 18 of the 20 slices (an even spread would put 10 there)
    assert len(busy) == 18
    assert sum(p.qty for p in plan) == D("1.23457")
    assert all(p.qty % BTC.step_size == 0 for p in plan)


def test_a_flat_or_missing_profile_is_the_even_spread():
    end = AT + timedelta(minutes=7, seconds=13)
    even = respread(D("2"), list(range(9)), AT, end, BTC)
    for profile in ([5.0] * 8, [], [0.0] * 8, None):
        plan = respread_by_volume(D("2"), list(range(9)), AT, end, profile, BTC)
        assert [p.qty for p in plan] == [p.qty for p in even]
        assert all(abs(a.scheduled_at - b.scheduled_at) <= timedelta(microseconds=1) for a, b in zip(plan, even))


def test_a_window_already_over_puts_every_slice_now():
    plan = respread_by_volume(D("1"), [4, 5, 6], AT, AT, [1.0, 9.0], BTC)
    assert [p.scheduled_at for p in plan] == [AT] * 3 and sum(p.qty for p in plan) == D("1")


@settings(max_examples=200, deadline=None)
@given(profile=st.lists(st.floats(0, 1000), max_size=40), count=st.integers(1, 60),
       span_us=st.integers(1, 30 * 60 * 1_000_000), offset_us=st.integers(0, 59_999_999),
       steps=st.integers(0, 10**7))
def test_replan_invariants(profile, count, span_us, offset_us, steps):
    start = AT.replace(second=0) + timedelta(microseconds=offset_us)
    end = start + timedelta(microseconds=span_us)
    qty = BTC.step_size * steps
    plan = respread_by_volume(qty, list(range(count)), start, end, profile, BTC)
    times = [p.scheduled_at for p in plan]
    assert len(plan) == count and times[0] == start and times == sorted(times)
    assert all(start <= t < end for t in times)
    assert sum(p.qty for p in plan) == qty and all(p.qty % BTC.step_size == 0 for p in plan)


def busy_second_half():  # type: ignore[no-untyped-def]
    """10 BTC/min, but 90 BTC/min in minutes 10-19 of every hour (history and today)."""
    return series(HISTORY_DAYS + 1, flat("100000"), lambda i: D("90") if 10 <= i % 60 < 20 else D("10"))


async def test_after_a_resume_the_replanned_slices_follow_the_volume_profile(db_path):
    # 15-minute TWAP from 01:00, paused 01:03:30-01:05:30 (extend: the end moves to 01:17)
    config = parse_config({"router": {"maker_first": False}})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, busy_second_half())) as h:
        execution_id = await h.supervisor.submit(h.request(qty="1.5", duration="15m"))

        async def steer() -> None:
            async with h.clock.actor():
                await h.clock.sleep_until(START + timedelta(minutes=3, seconds=30))
                h.supervisor.control(execution_id, Desire.PAUSE, "test")
                await h.clock.sleep_until(START + timedelta(minutes=5, seconds=30))
                h.supervisor.control(execution_id, Desire.RUN, "test")

        await asyncio.gather(steer(), h.supervisor.wait_all())
        history = [s.event for s in await h.store.read(execution_id)]
    (replan,) = of(history, ev.ScheduleReplanned)
    assert replan.reason.startswith("resumed") and replan.end_at == START + timedelta(minutes=17)
    times = [p.scheduled_at for p in replan.slices]
    busy = [t for t in times if START + timedelta(minutes=10) <= t < START + timedelta(minutes=17)]
    quiet = [t for t in times if t < START + timedelta(minutes=10)]
    # busy: 7 minutes at 90 = 630 units; quiet: 4.5 minutes at 10 = 45 units (93% busy);
    # an even spread would put 7 of 11.5 minutes' worth (61%) there
    assert len(busy) / 7 > 5 * len(quiet) / 4.5
    assert len(busy) >= round(0.9 * len(times))
    assert times[0] == replan.occurred_at
    index = next(i for i, e in enumerate(history) if e is replan)
    before = Execution.replay(history[0].execution_id, history[:index])
    assert sum(p.qty for p in replan.slices) == before.remaining_qty
    assert all(p.qty % BTC.step_size == 0 for p in replan.slices)
    assert Execution.replay(history[0].execution_id, history).filled_qty == D("1.5")


async def test_the_router_twap_still_replans_evenly(db_path):
    # the router's plain TWAP (4 slices 60 s apart) keeps its even schedule after a resume
    config = parse_config({"router": {"twap": {"enabled": True, "min_notional_usd": 500, "slices": 4,
                                               "interval_seconds": 60}, "maker_timeout_seconds": 2}})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, busy_second_half())) as h:
        execution_id = await h.supervisor.submit(h.request(qty="0.01", algo="auto", duration=None))

        async def steer() -> None:
            async with h.clock.actor():
                await h.clock.sleep_until(START + timedelta(seconds=30))
                h.supervisor.control(execution_id, Desire.PAUSE, "test")
                await h.clock.sleep_until(START + timedelta(minutes=8))
                h.supervisor.control(execution_id, Desire.RUN, "test")

        await asyncio.gather(steer(), h.supervisor.wait_all())
        history = [s.event for s in await h.store.read(execution_id)]
    assert "router_interval_seconds" in history[0].params
    (replan,) = of(history, ev.ScheduleReplanned)
    times = [p.scheduled_at for p in replan.slices]
    assert len(times) == 3 and times[0] == replan.occurred_at
    gaps = {(b - a) for a, b in zip(times, times[1:])}
    assert max(gaps) - min(gaps) <= timedelta(microseconds=1)


async def test_a_vwap_resume_replans_on_its_volume_curve(db_path):
    # history and today: 90 BTC/min in the second half of every hour, 10 in the first
    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: D("90") if i % 60 >= 30 else D("10"))
    config = parse_config({"router": {"maker_first": False}, "twap": {"volume_lookback_days": HISTORY_DAYS}})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, btc)) as h:
        execution_id = await h.supervisor.submit(h.request(algo="vwap", qty="2", duration="1h"))

        async def steer() -> None:
            async with h.clock.actor():
                await h.clock.sleep_until(START + timedelta(minutes=5, seconds=30))
                h.supervisor.control(execution_id, Desire.PAUSE, "test")
                await h.clock.sleep_until(START + timedelta(minutes=10))
                h.supervisor.control(execution_id, Desire.RUN, "test")

        await asyncio.gather(steer(), h.supervisor.wait_all())
        history = [s.event for s in await h.store.read(execution_id)]
    (replan,) = of(history, ev.ScheduleReplanned)
    times = [p.scheduled_at for p in replan.slices]
    busy = [t for t in times if START + timedelta(minutes=30) <= t < START + timedelta(minutes=60)]
    quiet = len(times) - len(busy)  # in 01:10-01:30 and 02:00-02:04:30, 24.5 minutes
    # the curve (5-minute bins, smoothed) puts far more slices per minute in the busy half hour
    # than in the quiet minutes around it; an even spread would put as many per minute
    assert len(busy) / 30 > 2 * quiet / 24.5
    assert sum(p.qty for p in replan.slices) == Execution.replay(
        execution_id, history[:history.index(replan)]).remaining_qty
    assert Execution.replay(execution_id, history).filled_qty == D("2")
