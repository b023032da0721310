"""Story 4.3 critical scenarios on the simulated venue with the virtual clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.twap import calculate_time_slices
from genesis.engine.control import Desire
from genesis.engine.supervisor import SubmissionRejected
from genesis.venue.base import UnknownOutcomeError
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.engine.venues import build_sim_venue
from tests.faulty_venue import FaultyVenue
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue

BTC = SIM_INSTRUMENTS["BTC/USDT"]
D = Decimal


async def run_one(h, **req) -> tuple[str, list[ev.Event]]:  # type: ignore[no-untyped-def]
    execution_id = await h.supervisor.submit(h.request(**req))
    await h.supervisor.wait_all()
    return execution_id, [s.event for s in await h.store.read(execution_id)]


def of(history: list[ev.Event], cls: type) -> list:  # type: ignore[type-arg]
    return [e for e in history if isinstance(e, cls)]


@pytest.mark.parametrize("minutes", [5, 15, 30])
async def test_windows_of_5_15_30_minutes_fill_inside_the_window(db_path, minutes):
    async with harness(db_path) as h:
        start = h.clock.now()
        execution_id, history = await run_one(h, qty="1.2", duration=f"{minutes}m")
        agg = Execution.replay(execution_id, history)
        assert agg.state.value == "completed" and agg.filled_qty == D("1.2")
        slices = of(history, ev.TwapSliceExecuted)
        assert len(slices) == minutes
        end = start + timedelta(minutes=minutes)
        assert all(start <= s.scheduled_at < end for s in slices)
        assert sum(s.filled_qty for s in slices) == D("1.2")


@pytest.mark.parametrize("minutes", [4, 31])
async def test_windows_outside_5_to_30_minutes_are_refused(db_path, minutes):
    async with harness(db_path) as h:
        with pytest.raises(ValueError, match="duration"):
            h.request(duration=f"{minutes}m")


async def test_config_can_widen_the_window_bounds(db_path):
    config = parse_config({"twap": {"min_duration_seconds": 60, "max_duration_seconds": 7200}})
    async with harness(db_path, config) as h:
        assert h.request(duration="2h").duration_seconds == 7200


def test_adaptive_timing_puts_more_slices_in_busy_minutes():
    # first 5 minutes trade 9x the volume of the last 5: about 90% of the slices land there
    profile = [9.0] * 5 + [1.0] * 5
    plan = calculate_time_slices(D("1"), T0, 600, profile, BTC, D("100000"), slice_count=20, seed=7)
    early = [p for p in plan if p.scheduled_at < T0 + timedelta(minutes=5)]
    assert 17 <= len(early) <= 19  # 18 by volume quantile, +-1 from the jitter
    assert sum(p.qty for p in plan) == D("1")
    # randomised but reproducible: sizes vary by at most +-20% (plus rounding) and the seed fixes them
    sizes = [p.qty for p in plan]
    assert len(set(sizes)) > 1 and max(sizes) <= D("0.05") * D("1.2") + BTC.step_size * 2
    assert plan == calculate_time_slices(D("1"), T0, 600, profile, BTC, D("100000"), slice_count=20, seed=7)
    assert plan != calculate_time_slices(D("1"), T0, 600, profile, BTC, D("100000"), slice_count=20, seed=8)


async def test_participation_is_capped_at_exactly_10_percent_and_the_rest_expires(db_path):
    # 1 BTC traded per minute; 15 one-minute slices may take at most 0.1 BTC each = 1.5 BTC
    btc = series(HISTORY_DAYS + 1, flat("100000"), flat("1"))
    start = T0 + timedelta(days=HISTORY_DAYS, hours=1)
    config = parse_config({"router": {"maker_first": False}})
    async with harness(db_path, config, start=start, venue=lambda clock: venue(clock, btc)) as h:
        execution_id, history = await run_one(h, qty="2", duration="15m")
        slices = of(history, ev.TwapSliceExecuted)
        assert all(s.filled_qty <= D("0.1") * s.forecast_volume for s in slices if s.forecast_volume)
        # at the cap: within one lot step of it (the taker takes the cap of the volume traded so far,
        # rounded down to the step), never above it
        top = max(s.forecast_participation for s in slices if s.forecast_participation is not None)
        assert D("0.1") - BTC.step_size / D("1") <= top <= D("0.1")
        assert any(s.cap_bound for s in slices)
        (done,) = of(history, ev.TwapCompleted)
        assert isinstance(done, ev.TwapCompleted) and done.reason == "window_ended"
        assert done.remaining_qty == D("2") - done.filled_qty > 0
        row = await h.execution_row(execution_id)
        assert row["state"] == "expired" and row["remaining_qty"] == done.remaining_qty


async def test_arrival_price_and_twap_price_are_exact(db_path):
    async with harness(db_path) as h:
        arrival_expected = (await h.venue.book_top("BTC/USDT")).mid
        execution_id, history = await run_one(h, qty="0.5", duration="5m")
        started = of(history, ev.ExecutionStarted)[0]
        assert started.arrival_price == arrival_expected
        fills = await h.rows(__import__("genesis.store.tables", fromlist=["fills"]).fills)
        qty = sum(f["qty"] for f in fills)
        twap_price = sum(f["qty"] * f["price"] for f in fills) / qty
        row = await h.execution_row(execution_id)
        assert row["avg_price"] == twap_price.quantize(D("0.00000001")) and row["filled_qty"] == qty == D("0.5")
        expected_is = (twap_price - arrival_expected) / arrival_expected * 10000
        assert row["implementation_shortfall_bps"] == expected_is.quantize(D("0.0001"))


async def test_slippage_is_recorded_per_slice(db_path):
    async with harness(db_path) as h:
        _, history = await run_one(h, qty="0.5", duration="5m")
        for s in of(history, ev.TwapSliceExecuted):
            assert s.slippage_bps == ((s.avg_price - s.reference_price) / s.reference_price * 10000).quantize(D("0.0001"))


async def test_early_completion_when_price_falls_below_arrival_for_a_buy(db_path):
    # the price drops 1% five minutes in: a buy finishes the remainder fast (early_interval 10 s)
    btc = series(HISTORY_DAYS + 1, lambda i: D("100000") if i < (HISTORY_DAYS * 1440 + 65) else D("99000"), flat("50"))
    start = T0 + timedelta(days=HISTORY_DAYS, hours=1)
    async with harness(db_path, start=start, venue=lambda c: venue(c, btc)) as h:
        execution_id, history = await run_one(h, qty="1", duration="30m")
        (early,) = of(history, ev.EarlyCompletionTriggered)
        assert early.improvement_bps >= D("20") and early.arrival_price == D("100000")
        (done,) = of(history, ev.TwapCompleted)
        assert isinstance(done, ev.TwapCompleted) and done.reason == "filled" and done.filled_qty == D("1")
        assert (done.occurred_at - start) < timedelta(minutes=15)  # well before the 30-minute window ends
        # still inside the participation cap after the trigger
        after = [s for s in of(history, ev.TwapSliceExecuted) if s.occurred_at >= early.occurred_at]
        assert after and all(s.filled_qty <= D("0.1") * s.forecast_volume for s in after)


@pytest.mark.parametrize("policy", ["extend", "compress"])
async def test_pause_resume_moves_the_window_end_per_policy(db_path, policy):
    config = parse_config({"twap": {"pause_policy": policy}})
    async with harness(db_path, config) as h:
        execution_id = await h.supervisor.submit(h.request(qty="1", duration="15m"))
        start = h.clock.now()
        await h.clock.sleep_until(start + timedelta(minutes=5, seconds=30)) if False else None
        # let it run 5 minutes of virtual time, pause for 10, resume
        async def steer():
            async with h.clock.actor():
                await h.clock.sleep_until(start + timedelta(minutes=5, seconds=30))
                h.supervisor.control(execution_id, Desire.PAUSE, "test")
                await h.clock.sleep_until(start + timedelta(minutes=15, seconds=30))
                row = await h.execution_row(execution_id)
                assert row["state"] == "paused"
                h.supervisor.control(execution_id, Desire.RUN, "test")
        import asyncio
        await asyncio.gather(steer(), h.supervisor.wait_all())
        history = [s.event for s in await h.store.read(execution_id)]
        paused = of(history, ev.ExecutionPaused)[0]
        resumed = of(history, ev.ExecutionResumed)[0]
        original_end = of(history, ev.ExecutionStarted)[0].end_at
        # no slice ran while paused
        assert not [s for s in of(history, ev.TwapSliceExecuted) if paused.occurred_at < s.occurred_at < resumed.occurred_at]
        agg = Execution.replay(execution_id, history)
        assert agg.paused_seconds == (resumed.occurred_at - paused.occurred_at).total_seconds()
        if policy == "extend":  # the end moves by the paused time, the rest keeps its pace
            (replan,) = of(history, ev.ScheduleReplanned)
            assert replan.end_at == original_end + (resumed.occurred_at - paused.occurred_at)
            assert agg.state.value == "completed" and agg.filled_qty == D("1")
        else:  # the end stays: resumed after it, the window is over and the rest expires, unsent
            assert not of(history, ev.ScheduleReplanned) and agg.end_at == original_end < resumed.occurred_at
            (done,) = of(history, ev.TwapCompleted)
            assert done.reason == "window_ended" and done.occurred_at == resumed.occurred_at
            assert agg.state.value == "expired" and done.remaining_qty == D("1") - agg.filled_qty > 0
            assert all(f.occurred_at < original_end for f in of(history, ev.FillRecorded))


async def test_restart_resumes_remaining_quantity_over_remaining_time(db_path):
    async with harness(db_path) as h:
        execution_id = await h.supervisor.submit(h.request(qty="1", duration="15m"))
        start = h.clock.now()
        async def stop_midway():
            async with h.clock.actor():
                await h.clock.sleep_until(start + timedelta(minutes=6))
        await stop_midway()
        await h.supervisor.shutdown(5)
        stopped_at = h.clock.now()
        before = await h.store.load(execution_id)
        assert before.state.value == "running" and 0 < before.filled_qty < D("1")
    async with harness(db_path, start=stopped_at + timedelta(minutes=2)) as h2:
        assert await h2.supervisor.recover() == [execution_id]
        await h2.supervisor.wait_all()
        history = [s.event for s in await h2.store.read(execution_id)]
        agg = Execution.replay(execution_id, history)
        assert agg.state.value == "completed" and agg.filled_qty == D("1")
        replans = [e for e in of(history, ev.ScheduleReplanned) if e.reason.startswith("restart")]
        assert len(replans) == 1 and replans[0].end_at == of(history, ev.ExecutionStarted)[0].end_at
        coids = [e.client_order_id for e in of(history, ev.OrderIntended)]
        assert len(coids) == len(set(coids))


async def test_tier_gate_rejects_accounts_below_strategist_equity(db_path):
    btc = series(HISTORY_DAYS + 1, flat("100000"), flat("10"))
    start = T0 + timedelta(days=HISTORY_DAYS, hours=1)
    poor = {"USDT": D("9999"), "BTC": D("0")}
    async with harness(db_path, start=start, venue=lambda c: venue(c, btc, poor)) as h:
        with pytest.raises(SubmissionRejected, match="Strategist"):
            await h.supervisor.submit(h.request(qty="0.01"))
        assert await h.rows(__import__("genesis.store.tables", fromlist=["events"]).events) == []


async def test_network_failure_after_accept_is_resolved_by_client_id_never_duplicated(db_path):
    config = parse_config({"router": {"maker_first": False}})
    async with harness(db_path, config, venue=lambda c: FaultyVenue(build_sim_venue(c, config))) as h:
        h.venue.fail_next(2, UnknownOutcomeError("read timeout"), after_accept=True)
        execution_id, history = await run_one(h, qty="0.3", duration="5m")
        coids = [t.client_order_id for t in h.venue.trades()]
        intents = [e.client_order_id for e in of(history, ev.OrderIntended)]
        assert len(intents) == len(set(intents)) == 5  # one order per slice, none re-sent
        assert sorted(set(coids)) == sorted(intents)
        assert sum(t.qty for t in h.venue.trades()) == D("0.3")
        assert Execution.replay(execution_id, history).filled_qty == D("0.3")


async def test_network_failure_before_accept_resends_the_same_client_id(db_path):
    config = parse_config({"router": {"maker_first": False}})
    async with harness(db_path, config, venue=lambda c: FaultyVenue(build_sim_venue(c, config))) as h:
        h.venue.fail_next(1, UnknownOutcomeError("connection reset"), after_accept=False)
        execution_id, history = await run_one(h, qty="0.3", duration="5m")
        intents = [e.client_order_id for e in of(history, ev.OrderIntended)]
        assert len(intents) == 5 and intents[0].endswith("-0-0")
        assert {t.client_order_id for t in h.venue.trades()} == set(intents)
        assert sum(t.qty for t in h.venue.trades()) == D("0.3")


async def test_zero_volume_minutes_skip_and_carry_forward(db_path):
    # the first 3 minutes of the window trade nothing: those slices are skipped, later ones catch up
    first = HISTORY_DAYS * 1440 + 60
    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: D("0") if first - 5 <= i < first + 3 else D("20"))
    start = T0 + timedelta(days=HISTORY_DAYS, hours=1)
    config = parse_config({"router": {"maker_first": False}})
    async with harness(db_path, config, start=start, venue=lambda c: venue(c, btc)) as h:
        execution_id, history = await run_one(h, qty="1", duration="10m", slices=10)
        slices = of(history, ev.TwapSliceExecuted)
        assert [s.status for s in slices[:2]] == ["skipped", "skipped"]
        assert sum(s.filled_qty for s in slices) == D("1")


async def test_extreme_volatility_limit_price_far_from_market_is_denied_by_the_collar(db_path):
    async with harness(db_path) as h:
        mid = (await h.venue.book_top("BTC/USDT")).mid
        far = (mid * D("1.05")).quantize(D("0.01"))  # 5% through the market: outside the 2% collar
        execution_id, history = await run_one(h, qty="0.1", duration="5m", limit_price=str(far))
        denials = of(history, ev.RiskDenied)
        assert len(denials) == 5 and "collar" in denials[0].reason
        assert Execution.replay(execution_id, history).filled_qty == 0
        assert of(history, ev.TwapCompleted)[0].reason == "window_ended"


async def test_volume_anomaly_halves_participation_and_is_recorded(db_path):
    # history: 10 BTC/min; in the window the last minute before each slice trades 100 BTC (10x)
    first = HISTORY_DAYS * 1440 + 60
    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: D("100") if i >= first - 1 else D("10"))
    start = T0 + timedelta(days=HISTORY_DAYS, hours=1)
    config = parse_config({"router": {"maker_first": False}, "twap": {"jitter_fraction": 0}})
    async with harness(db_path, config, start=start, venue=lambda c: venue(c, btc)) as h:
        _, history = await run_one(h, qty="20", duration="5m", slices=5)
        slices = of(history, ev.TwapSliceExecuted)
        assert slices[0].volume_anomaly
        # cap 10% halved to 5% of the expected interval volume
        assert slices[0].filled_qty <= D("0.05") * slices[0].forecast_volume
