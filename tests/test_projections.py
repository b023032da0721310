"""Projections written live by the event store equal projections rebuilt from the events.

Several executions run together on the simulated venue with the virtual clock: one plain TWAP,
one paused and resumed, one cancelled, and all of them through a spell of kill-switch risk
denials. Then every projection table is rebuilt from the event log into the same database and
compared row for row, as stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Table, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.engine.control import Desire
from genesis.store import tables as t
from genesis.store.projector import execution_row, rebuild
from tests.harness import Harness, harness

D = Decimal


async def raw_rows(engine: AsyncEngine, table: Table) -> list[tuple]:
    """Every row exactly as the database stores it (SQLite: money as text, times as text), in key order."""
    keys = ", ".join(c.name for c in table.primary_key.columns)
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {keys}"))).all()]


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple]]:
    return {table.name: await raw_rows(engine, table) for table in t.PROJECTION_TABLES}


async def run_scenario(h: Harness) -> dict[str, str]:
    """Submit four executions and steer them on the virtual clock; return their ids by role."""
    start = h.clock.now()
    mid = (await h.venue.book_top("BTC/USDT")).mid  # type: ignore[attr-defined]
    passive = (mid * D("0.9997")).quantize(D("0.01"))  # fills only when the market trades down to it
    ids = {
        "plain": await h.supervisor.submit(h.request(qty="1", duration="10m", request_id="plain")),
        "paused": await h.supervisor.submit(h.request(symbol="ETH/USDT", side="sell", qty="12", duration="10m",
                                                      request_id="paused")),
        "cancelled": await h.supervisor.submit(h.request(qty="0.5", duration="15m", request_id="cancelled")),
        "limit": await h.supervisor.submit(h.request(qty="0.8", duration="5m", slices=5, request_id="limit",
                                                     limit_price=str(passive))),
    }
    normal_limits = h.supervisor.risk.limits

    async def steer() -> None:
        async with h.clock.actor():
            await h.clock.sleep_until(start + timedelta(minutes=1, seconds=30))
            h.supervisor.risk.limits = dataclasses.replace(normal_limits, kill_switch=True)
            await h.clock.sleep_until(start + timedelta(minutes=2, seconds=30))
            h.supervisor.control(ids["paused"], Desire.PAUSE, "test pause")
            await h.clock.sleep_until(start + timedelta(minutes=3, seconds=30))
            h.supervisor.risk.limits = normal_limits
            await h.clock.sleep_until(start + timedelta(minutes=4, seconds=30))
            h.supervisor.control(ids["cancelled"], Desire.CANCEL, "test cancel")
            await h.clock.sleep_until(start + timedelta(minutes=5, seconds=30))
            h.supervisor.control(ids["paused"], Desire.RUN, "test resume")

    await asyncio.gather(steer(), h.supervisor.wait_all())
    return ids


async def test_rebuilt_projections_equal_the_live_ones(any_db: Path | URL) -> None:
    async with harness(any_db) as h:
        ids = await run_scenario(h)
        histories = {role: [s.event for s in await h.store.read(eid)] for role, eid in ids.items()}
        states = {role: Execution.replay(ids[role], hist).state.value for role, hist in histories.items()}

        # the scenario did what it says, so the comparison below covers all of it
        assert states == {"plain": "completed", "paused": "completed", "cancelled": "cancelled",
                          "limit": states["limit"]}
        assert states["limit"] in ("completed", "expired")
        all_events = [e for hist in histories.values() for e in hist]
        kinds = Counter(type(e) for e in all_events)
        assert kinds[ev.RiskDenied] >= 3
        assert kinds[ev.ExecutionPaused] == kinds[ev.ExecutionResumed] == 1
        assert kinds[ev.ScheduleReplanned] >= 1
        assert kinds[ev.ExecutionCancelled] == 1
        assert kinds[ev.FillRecorded] > 20

        live = await snapshot(h.engine)
        assert all(live[name] for name in live), "every projection table has rows"
        async with h.engine.begin() as conn:
            replayed = await rebuild(conn)
        assert replayed == len(await h.store.read())
        rebuilt = await snapshot(h.engine)

        for name in live:
            assert rebuilt[name] == live[name], f"{name} differs after rebuild"
        # and rebuilding twice changes nothing
        async with h.engine.begin() as conn:
            await rebuild(conn)
        assert await snapshot(h.engine) == live


async def test_projections_agree_with_the_events(any_db: Path | URL) -> None:
    async with harness(any_db) as h:
        ids = await run_scenario(h)
        executions = {r["execution_id"]: r for r in await h.rows(t.executions)}
        fills = await h.rows(t.fills)
        child_orders = await h.rows(t.child_orders)
        slices = await h.rows(t.execution_slices)
        assert set(executions) == set(ids.values())

        fill_sum: dict[str, Decimal] = defaultdict(Decimal)
        for f in fills:
            fill_sum[f["execution_id"]] += f["qty"]
        for eid, row in executions.items():
            history = [s.event for s in await h.store.read(eid)]
            agg = Execution.replay(eid, history)
            expected = execution_row(agg)
            assert {k: row[k] for k in expected} == expected
            assert fill_sum[eid] == row["filled_qty"] == sum(e.qty for e in history if isinstance(e, ev.FillRecorded))

            intended = [e.client_order_id for e in history if isinstance(e, ev.OrderIntended)]
            mine = [o for o in child_orders if o["execution_id"] == eid]
            assert sorted(o["client_order_id"] for o in mine) == sorted(intended)
            assert len(intended) == len(set(intended))
            for o in mine:
                order_fills = sum((f["qty"] for f in fills if f["client_order_id"] == o["client_order_id"]), D(0))
                assert o["filled_qty"] == order_fills

            my_slices = {s["slice_index"]: s for s in slices if s["execution_id"] == eid}
            assert set(my_slices) == set(agg.slices)
            for s in my_slices.values():
                if s["status"] not in ("planned",):
                    slice_fills = sum((f["qty"] for f in fills if f["execution_id"] == eid
                                       and f["slice_index"] == s["slice_index"]), D(0))
                    assert s["filled_qty"] == slice_fills
            denied = [e for e in history if isinstance(e, ev.TwapSliceExecuted) and e.status == "denied"]
            assert row["slices_denied"] == len(denied)
            assert all(my_slices[e.slice_index]["risk_reason"] for e in denied)

        assert executions[ids["plain"]]["filled_qty"] == D("1")
        assert executions[ids["paused"]]["filled_qty"] == D("12")
        assert executions[ids["paused"]]["paused_seconds"] == 180.0
        assert executions[ids["cancelled"]]["state"] == "cancelled"
        assert executions[ids["cancelled"]]["filled_qty"] < D("0.5")

        async with h.engine.connect() as conn:
            view = {r.execution_id: r for r in await conn.execute(text("SELECT * FROM twap_executions"))}
            history_rows = (await conn.execute(text("SELECT count(*) FROM twap_slice_history"))).scalar()
        assert set(view) == set(ids.values())
        assert D(view[ids["plain"]].executed_quantity) == D("1")
        assert history_rows == len(slices)
