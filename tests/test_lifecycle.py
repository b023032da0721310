"""An execution's end: at once when its quantity is filled, at its window's end otherwise
(never later, whatever the plan's density or a stalled process); emergency slices flagged
and kept out of participation statistics; the stored participation is the realised one.
On the simulated venue with the virtual clock."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from genesis.cli import main
from genesis.config import RuntimeConfig
from genesis.domain import events as ev
from genesis.domain.benchmarks import interval_volume
from genesis.domain.execution import Execution
from genesis.engine.venues import build_sim_venue
from genesis.store import tables as t
from genesis.store.projector import rebuild
from genesis.venue.base import Candle
from genesis.venue.candles import shipped_candles
from tests.harness import SIM_START, harness
from tests.test_projections import snapshot
from tests.test_vwap_end_to_end import liquidate_after

D = Decimal


def of(history, cls):  # type: ignore[no-untyped-def]
    return [e for e in history if isinstance(e, cls)]


async def run(h, **request):  # type: ignore[no-untyped-def]
    execution_id = await h.supervisor.submit(h.request(**request))
    await h.supervisor.wait_all()
    return execution_id, [s.event for s in await h.store.read(execution_id)]


async def slice_rows(h, execution_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    s = t.execution_slices.c
    async with h.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(
            select(t.execution_slices).where(s.execution_id == execution_id).order_by(s.slice_index))).mappings()]


@pytest.mark.parametrize("urgency", ["critical", "emergency"])
async def test_a_filled_execution_completes_at_once_and_closes_what_was_still_planned(db_path, urgency):
    async with harness(db_path) as h:
        execution_id, history = await run(h, algo="vwap", qty="1", duration="4h", urgency=urgency)
        (started,) = of(history, ev.ExecutionStarted)
        (done,) = of(history, ev.VwapCompleted)
        last_fill = max(f.occurred_at for f in of(history, ev.FillRecorded))
        assert done.reason == "filled" and done.filled_qty == D("1") and done.remaining_qty == 0
        assert done.occurred_at == last_fill < started.end_at - timedelta(hours=3)
        executed = of(history, ev.VwapSliceExecuted)
        assert not [s for s in executed if s.status == "skipped"]  # nothing closed one by one after the fill
        assert max(s.occurred_at for s in executed) == last_fill
        row = await h.execution_row(execution_id)
        assert (row["state"], row["ended_at"], row["completion_reason"]) == ("completed", last_fill, "filled")
        statuses = [r["status"] for r in await slice_rows(h, execution_id)]
        assert statuses.count(ev.SLICE_NOT_NEEDED) == len(started.slices) - len(executed) > 100
        agg = Execution.replay(execution_id, history)
        assert agg.open_count == 0 and agg.ended_at == last_fill


async def test_emergency_slices_are_flagged_and_left_out_of_participation_statistics(db_path):
    async with harness(db_path) as h:
        execution_id, history = await liquidate_after(h, 10)
        (em,) = of(history, ev.EmergencyLiquidationStarted)
        slices = of(history, ev.VwapSliceExecuted)
        assert all(s.cap_overridden == (s.occurred_at >= em.occurred_at) for s in slices)
        rows = await slice_rows(h, execution_id)
        overridden = [r for r in rows if r["cap_overridden"]]
        normal = [r for r in rows if not r["cap_overridden"] and r["participation"] is not None]
        assert overridden and normal and all(r["participation"] is not None for r in overridden)
        assert max(r["participation"] for r in overridden) > max(r["participation"] for r in normal)
        expected_max = float(max(r["participation"] for r in normal))
        async with h.engine.connect() as conn:
            view = (await conn.execute(text("SELECT max_participation FROM execution_analysis "
                                            "WHERE execution_id = :e"), {"e": execution_id})).scalar_one()
    assert view == pytest.approx(expected_max)
    status = CliRunner().invoke(main, ["status", execution_id, "--json", "--db", str(db_path)])
    assert status.exit_code == 0, status.output
    shown = json.loads(status.output)
    assert shown["state"] == "completed" and shown["time_remaining_seconds"] == 0.0  # ended well before end_at
    assert D(shown["participation_max"]) == max(r["participation"] for r in normal)
    report = CliRunner().invoke(main, ["report", execution_id, "--json", "--db", str(db_path)])
    assert report.exit_code == 0, report.output
    figures = json.loads(report.output)["participation"]
    assert D(figures["max"]) == max(r["participation"] for r in normal).quantize(D(figures["max"]))
    assert figures["cap_overridden_slices"] == len(overridden)


def test_backtest_accepts_emergency_urgency():
    sample = Path(__file__).parent / "data" / "BTC_USDT-1m-20250520-20250611.csv.gz"
    result = CliRunner().invoke(main, ["backtest", "--candles", str(sample), "--symbol", "BTC/USDT", "--side", "buy",
                                       "--qty", "2", "--algo", "vwap", "--start", "2025-06-10T08:00:00Z",
                                       "--duration", "4h", "--urgency", "emergency", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["state"] == "completed" and D(figures["filled_qty"]) == 2
    assert figures["max_participation"] is None  # every slice overrode the cap: no cap statistic


async def test_stored_participation_is_fills_over_the_volume_the_market_traded_in_the_interval(db_path):
    candles = shipped_candles("BTC/USDT")
    async with harness(db_path) as h:
        # VWAP slices one minute apart from a whole minute: each slice's interval is one candle
        execution_id, history = await run(h, algo="vwap", qty="3", duration="30m")
        rows = await slice_rows(h, execution_id)
        executed = [r for r in rows if r["executed_at"] is not None]
        assert len(executed) >= 20
        for r in executed:
            start = r["interval_start"]
            assert start == r["scheduled_at"] and start.second == 0 and r["interval_end"] == start + timedelta(minutes=1)
            traded = candles.candle_at(start).volume
            assert r["market_volume"] == traded
            assert r["participation"] == (r["filled_qty"] / traded).quantize(D("0.000001"))
            assert r["forecast_volume"] is not None and r["forecast_volume"] != traded
        assert any(r["participation"] != r["forecast_participation"] for r in executed)
        # recorded by events: a replay gives the same rows
        live = await snapshot(h.engine)
        async with h.engine.begin() as conn:
            await rebuild(conn)
        assert await snapshot(h.engine) == live
        measured = of(history, ev.SliceParticipationMeasured)
        assert sorted(m.slice_index for m in measured) == [r["slice_index"] for r in executed]
        assert all(m.occurred_at >= r["interval_end"] for m in measured for r in executed
                   if r["slice_index"] == m.slice_index)


def test_an_interval_volume_is_prorated_by_minute_and_unknown_when_a_minute_is_missing():
    t0 = datetime(2025, 6, 10, 13, 0, tzinfo=SIM_START.tzinfo)
    bars = [Candle(t0 + timedelta(minutes=i), D(1), D(1), D(1), D(1), D(v)) for i, v in enumerate(["6", "12", "30"])]
    assert interval_volume(bars, t0, t0 + timedelta(minutes=1)) == D("6")
    assert interval_volume(bars, t0 + timedelta(seconds=30), t0 + timedelta(seconds=90)) == D("3") + D("6")
    assert interval_volume(bars, t0 + timedelta(minutes=2), t0 + timedelta(minutes=4)) is None


async def test_a_plan_denser_than_slices_can_run_ends_at_the_window_end(db_path):
    async with harness(db_path) as h:
        # 100 slices in 5 minutes, 3 s apart, each taking the 5 s maker timeout: accepted here on
        # purpose (submit-time validation is not what keeps the engine safe)
        req = dataclasses.replace(h.request(qty="5", duration="5m"), slice_count=100)
        execution_id = await h.supervisor.submit(req)
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        (started,) = of(history, ev.ExecutionStarted)
        (done,) = of(history, ev.TwapCompleted)
        assert not of(history, ev.ScheduleReplanned)  # no re-spread, let alone one per slice
        assert all(f.occurred_at <= started.end_at for f in of(history, ev.FillRecorded))
        assert all(i.occurred_at < started.end_at for i in of(history, ev.OrderIntended))
        row = await h.execution_row(execution_id)
        assert row["end_at"] == started.end_at and row["state"] in ("completed", "expired")
        assert done.occurred_at <= started.end_at
        assert (done.reason, done.remaining_qty > 0) == (("filled", False) if row["state"] == "completed"
                                                         else ("window_ended", True))


async def test_a_dense_plan_whose_commits_take_time_does_not_re_spread_in_a_loop(db_path):
    # a plan of 100 slices is a big event: say its commit takes 10 s (a loaded machine, a
    # slow disk). The first slice is then overdue; re-spreading (another 10 s commit) would
    # leave the next one overdue again, and so on for ever
    async with harness(db_path) as h:
        append, replans = h.store.append, []

        async def slow_append(events, **kwargs):  # type: ignore[no-untyped-def]
            if any(isinstance(e, (ev.ExecutionStarted, ev.ScheduleReplanned)) for e in events):
                replans.extend(e for e in events if isinstance(e, ev.ScheduleReplanned))
                assert len(replans) < 20, "re-spread in a loop"
                await h.clock.sleep_until(h.clock.now() + timedelta(seconds=10))
            return await append(events, **kwargs)

        h.store.append = slow_append  # type: ignore[method-assign]
        req = dataclasses.replace(h.request(qty="5", duration="5m"), slice_count=100)
        execution_id = await h.supervisor.submit(req)
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        (started,) = of(history, ev.ExecutionStarted)
        assert not replans and of(history, ev.TwapSliceExecuted)
        row = await h.execution_row(execution_id)
        assert row["state"] in ("completed", "expired") and row["end_at"] == started.end_at
        assert all(f.occurred_at <= started.end_at for f in of(history, ev.FillRecorded))


class StallingVenue:
    """The simulated venue, but the first book read at or after ``stall_from`` returns only at
    ``stall_until``, as when the daemon is stopped (SIGSTOP) or starved mid-decision."""

    def __init__(self, clock, inner, stall_from: datetime, stall_until: datetime):  # type: ignore[no-untyped-def]
        self.clock, self.inner = clock, inner
        self.stall_from, self.stall_until, self.stalled = stall_from, stall_until, False

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    async def book_top(self, symbol: str):  # type: ignore[no-untyped-def]
        if not self.stalled and self.clock.now() >= self.stall_from:
            self.stalled = True
            await self.clock.sleep_until(self.stall_until)
        return await self.inner.book_top(symbol)


@pytest.mark.parametrize("stall_minutes, state", [(3, "completed"), (8, "expired")])
async def test_a_stalled_process_never_moves_the_window_end_nor_trades_after_it(db_path, stall_minutes, state):
    window_end = SIM_START + timedelta(minutes=15)
    stall_from = SIM_START + timedelta(minutes=10, seconds=5)

    def market(clock):  # type: ignore[no-untyped-def]
        return StallingVenue(clock, build_sim_venue(clock, h_config), stall_from,
                             stall_from + timedelta(minutes=stall_minutes))

    h_config = RuntimeConfig()
    async with harness(db_path, h_config, venue=market) as h:
        execution_id, history = await run(h, qty="2.5", duration="15m")
        (started,) = of(history, ev.ExecutionStarted)
        assert started.end_at == window_end
        assert all(r.end_at == window_end for r in of(history, ev.ScheduleReplanned))
        assert len(of(history, ev.ScheduleReplanned)) <= 1
        assert all(f.occurred_at <= window_end for f in of(history, ev.FillRecorded))
        assert all(i.occurred_at < window_end for i in of(history, ev.OrderIntended))
        row = await h.execution_row(execution_id)
        assert row["end_at"] == window_end and row["state"] == state
        (done,) = of(history, ev.TwapCompleted)
        if state == "expired":
            assert done.reason == "window_ended" and done.remaining_qty > 0
            assert done.occurred_at == stall_from + timedelta(minutes=stall_minutes)  # when it woke up


def test_slice_events_stored_before_the_forecast_had_its_own_name_read_as_forecasts():
    from genesis.domain.codec import decode, encode

    new = ev.TwapSliceExecuted("e1", SIM_START, 0, 1, "filled", D("1"), D("1"), D("100"), D("100"), D("0"), D("0"),
                               forecast_volume=D("8"), forecast_participation=D("0.125"))
    legacy = encode(new).replace('"forecast_participation"', '"participation"').replace('"forecast_volume"',
                                                                                          '"market_volume"')
    assert decode("TwapSliceExecuted", legacy) == new == decode("TwapSliceExecuted", encode(new))


def test_the_migration_moves_the_stored_forecast_to_its_own_columns(tmp_path):
    from sqlalchemy import create_engine

    from genesis.store import migrate

    path = tmp_path / "old.db"
    migrate.upgrade(path, "0004")
    engine = create_engine(migrate.sqlite_url(path))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO executions (execution_id, request_id, algo, execution_style, symbol, side, "
                          "target_qty, duration_seconds, state, filled_qty, notional_usdt, fees_usdt, slices_executed, "
                          "slices_denied, paused_seconds, version, submitted_at, maker_qty, urgency, remaining_qty) VALUES ('e1', 'r1', "
                          "'twap', 'twap', 'BTC/USDT', 'buy', '1', 60, 'completed', '1', '100', '0', 1, 0, 0, 5, "
                          "'2025-06-10 13:00:00.000000', '0', 'low', '0')"))
        conn.execute(text("INSERT INTO execution_slices (execution_id, slice_index, scheduled_at, planned_qty, status, "
                          "filled_qty, fee, attempts, market_volume, participation) VALUES ('e1', 0, "
                          "'2025-06-10 13:00:00.000000', '1', 'filled', '1', '0', 1, '8', '0.125')"))
    migrate.upgrade(path)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT market_volume, participation, forecast_volume, forecast_participation, "
                                "cap_overridden FROM execution_slices")).one()
        assert tuple(row) == (None, None, "8", "0.125", 0)
    engine.dispose()
