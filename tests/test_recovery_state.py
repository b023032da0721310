"""Restart recovery rebuilds exactly the state a plain replay does.

``EventStore.preload`` decodes every event of the live executions through the codec's
generated fast decoders and orjson; the reference here reads the same rows and decodes each
with the standard ``json`` parser and the codec's general decoder (every field through its
checked converter), then replays. The aggregates must be equal field by field (every
Decimal with the same digits and exponent, every time in UTC), over executions of every
algorithm and lifecycle: running with closed slices, paused, held, a partially filled child
order whose outcome is unknown, a slice event stored under its legacy field names, ended ones,
and executions run by the engine itself.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import URL

from bench import engine_bench
from genesis.domain import codec
from genesis.domain import events as ev
from genesis.domain.events import EVENT_TYPES
from genesis.domain.execution import Execution
from genesis.log import configure_logging
from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from tests.test_codec import assert_exactly_equal

T0 = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def submitted(eid: str, algo: str, **kw: Any) -> ev.ExecutionSubmitted:
    return ev.ExecutionSubmitted(eid, at(0), f"req-{eid}", "BTC/USDT", "buy", D("1.50"), algo, 900,
                                 slice_count=3, limit_price=D("65000.5"), execution_style=algo,
                                 params={"urgency": "medium"}, windowed=True, account="acct-1", **kw)


def started(eid: str) -> ev.ExecutionStarted:
    plan = tuple(ev.PlannedSlice(i, at(300 * i), D("0.50")) for i in range(3))
    return ev.ExecutionStarted(eid, at(1), D("65000.10"), at(900), plan)


def order(eid: str, index: int, fills: int, closed: bool) -> list[ev.Event]:
    cid = f"g0123456789-{eid}-{index}-0"
    out: list[ev.Event] = [
        ev.OrderIntended(eid, at(300 * index + 2), index, 0, cid, "limit", "gtc", D("0.50"), D("65001.00"),
                         D("65000.00"), execution_style="twap", slice_count=3, parent_gross_usd=D("97500.15"),
                         twap_config={"maker_first": "true"}),
        ev.OrderAcknowledged(eid, at(300 * index + 3), cid, f"v-{eid}-{index}", "open"),
    ]
    out += [ev.FillRecorded(eid, at(300 * index + 4 + k), cid, index, f"t-{eid}-{index}-{k}", D("0.125"),
                            D("65000.25") + k, D("0.0000125"), "BTC", "maker" if k % 2 else "taker",
                            at(300 * index + 4 + k)) for k in range(fills)]
    if closed:
        out.append(ev.OrderClosed(eid, at(300 * index + 10), cid, "filled" if fills == 4 else "cancelled",
                                  D("0.125") * fills, None if fills == 4 else "maker timeout"))
    return out


def slice_closed(eid: str, index: int, filled: D, vwap: bool = False) -> ev.TwapSliceExecuted:
    cls = ev.VwapSliceExecuted if vwap else ev.TwapSliceExecuted
    return cls(eid, at(300 * index + 11), index, 3, "partial", D("0.50"), filled, D("65000.75"), D("65000.00"),
               D("0.1154"), D("0.00005"), forecast_volume=D("12.5"), forecast_participation=D("0.02"),
               maker_qty=D("0.25"), taker_qty=filled - D("0.25"), scheduled_at=at(300 * index),
               market_vwap=D("65000.3"), slippage_vs_vwap_bps=D("0.069"), interval_start=at(300 * index),
               interval_end=at(300 * index + 300))


def histories() -> dict[str, list[ev.Event]]:
    """One history per lifecycle the recovery meets."""
    out: dict[str, list[ev.Event]] = {}
    for algo in ("twap", "vwap", "pov", "is", "single"):
        eid = f"run-{algo}"  # running: one slice closed and measured, the next order still open
        out[eid] = [submitted(eid, algo), started(eid), *order(eid, 0, 4, True),
                    slice_closed(eid, 0, D("0.50"), vwap=algo == "vwap"),
                    ev.SliceParticipationMeasured(eid, at(620), 0, D("25.0"), D("0.02")),
                    *order(eid, 1, 2, False)]
    eid = "pending"
    out[eid] = [submitted(eid, "twap")]
    eid = "paused"  # paused after a replan, with an unmeasured closed slice
    out[eid] = [submitted(eid, "twap"), started(eid), *order(eid, 0, 3, True), slice_closed(eid, 0, D("0.375")),
                ev.ScheduleReplanned(eid, at(400), at(1000), (ev.PlannedSlice(1, at(500), D("0.5625")),
                                                              ev.PlannedSlice(2, at(800), D("0.5625"))),
                                     "restart: remaining re-spread over remaining time"),
                ev.ExecutionPaused(eid, at(450), "operator")]
    eid = "resumed-held"  # paused and resumed, then held (market data) and still held
    out[eid] = [submitted(eid, "vwap"), started(eid), ev.ExecutionPaused(eid, at(10), "operator"),
                ev.ExecutionResumed(eid, at(70), "operator"),
                ev.SlicingHeld(eid, at(80), ev.HOLD_MARKET_DATA_UNAVAILABLE, "sim", "BTC/USDT", "stream down", 31.5),
                ev.SlicingResumed(eid, at(90), "stream back", 10.0),
                ev.SlicingHeld(eid, at(95), ev.HOLD_MARKET_DATA_UNAVAILABLE, "sim", "BTC/USDT")]
    eid = "unknown-outcome"  # intended and partly filled, never acknowledged or closed
    intended, _ack, *fills = order(eid, 0, 2, False)
    out[eid] = [submitted(eid, "twap"), started(eid), intended, *fills,
                ev.UrgencyChanged(eid, at(20), "high", "operator"),
                ev.EarlyCompletionTriggered(eid, at(30), D("64000"), D("65000.10"), D("153.85"), at(900), at(600),
                                            True, D("0.5"), D("0.1"), D("20"), D("600"), "")]
    eid = "emergency"
    out[eid] = [submitted(eid, "twap"), started(eid), ev.EmergencyLiquidationStarted(eid, at(40), "operator", D("1.5")),
                ev.RiskDenied(eid, at(41), 0, D("1.5"), D("65000"), "max notional")]
    for eid, end in (("completed", ev.TwapCompleted(
            "completed", at(900), D("0.5"), D("1.0"), D("65000.75"), D("65000.10"), D("1.0"), D("0.00005"),
            "window_ended", D("65000.3"), D("0.069"))),
            ("cancelled", ev.ExecutionCancelled("cancelled", at(500), "operator")),
            ("failed", ev.ExecutionFailed("failed", at(500), "RuntimeError: boom"))):
        out[eid] = [submitted(eid, "twap"), started(eid), *order(eid, 0, 4, True),
                    slice_closed(eid, 0, D("0.50")), end]
    return out


def legacy_slice_event(eid: str) -> str:
    """A slice event as stored before the forecast got its own names."""
    raw = json.loads(codec.encode(slice_closed(eid, 1, D("0.375"))))
    raw["market_volume"], raw["participation"] = raw.pop("forecast_volume"), raw.pop("forecast_participation")
    return json.dumps(raw)


async def reference(db: Path | URL, ids: list[str]) -> dict[str, Execution]:
    """Replays of the stored rows decoded by ``json`` and the codec's general decoder."""
    e = t.events.c
    engine = async_engine(db)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(e.aggregate_id, e.event_type, e.event_data)
                                       .where(e.aggregate_id.in_(ids))
                                       .order_by(e.aggregate_id, e.aggregate_version))).all()
    finally:
        await engine.dispose()
    history: dict[str, list[ev.Event]] = {i: [] for i in ids}
    for agg_id, etype, data in rows:
        history[agg_id].append(codec._general_decoder(EVENT_TYPES[etype])(json.loads(data)))
    return {i: Execution.replay(i, h) for i, h in history.items()}


async def recovered(db: Path | URL, ids: list[str]) -> dict[str, Execution]:
    """What restart recovery builds: a fresh store's ``preload``."""
    engine = async_engine(db)
    try:
        async with EventStore(engine, commit_in="thread") as store:
            await store.preload(ids)
            return {i: await store.load(i) for i in ids}
    finally:
        await engine.dispose()


def assert_same_state(got: dict[str, Execution], want: dict[str, Execution]) -> None:
    assert got.keys() == want.keys()
    for eid in want:
        assert got[eid] == want[eid], eid
        assert_exactly_equal(got[eid], want[eid], eid)


async def test_preload_rebuilds_exactly_what_a_plain_replay_does(any_db: Path | URL) -> None:
    stories = histories()
    engine = async_engine(any_db)
    async with EventStore(engine, commit_in="thread") as store:
        for events in stories.values():
            await store.append(events, expected_version=0)
    await engine.dispose()
    ids = sorted(stories)
    want = await reference(any_db, ids)
    assert {i: a.state.value for i, a in want.items()} == {
        **{f"run-{a}": "running" for a in ("twap", "vwap", "pov", "is", "single")}, "pending": "pending",
        "paused": "paused", "resumed-held": "running", "unknown-outcome": "running", "emergency": "running",
        "completed": "expired", "cancelled": "cancelled", "failed": "failed"}
    assert [o.client_order_id for o in want["unknown-outcome"].unresolved_orders()] == [
        "g0123456789-unknown-outcome-0-0"]
    assert want["unknown-outcome"].filled_qty == D("0.250") and want["resumed-held"].held_since == at(95)
    assert_same_state(await recovered(any_db, ids), want)


async def test_a_legacy_slice_event_recovers_as_a_plain_replay_reads_it(db_path: Path) -> None:
    eid = "legacy"
    engine = async_engine(db_path)
    async with EventStore(engine, commit_in="thread") as store:
        await store.append([submitted(eid, "twap"), started(eid), *order(eid, 1, 3, True)], expected_version=0)
    async with engine.begin() as conn:  # stored as an old daemon wrote it
        e = t.events.c
        last = (await conn.execute(select(e.sequence_number, e.aggregate_version, e.occurred_at, e.created_at)
                                   .order_by(e.sequence_number.desc()).limit(1))).one()
        await conn.execute(t.events.insert().values(
            event_id="legacy-slice-event", sequence_number=last.sequence_number + 1, event_type="TwapSliceExecuted",
            aggregate_id=eid, aggregate_version=last.aggregate_version + 1, event_data=legacy_slice_event(eid),
            occurred_at=last.occurred_at, created_at=last.created_at))
    await engine.dispose()
    want = await reference(db_path, [eid])
    assert want[eid].slices[1].closed and want[eid].version == 9
    assert_same_state(await recovered(db_path, [eid]), want)


def test_executions_run_by_the_engine_recover_as_a_plain_replay_reads_them(tmp_path: Path) -> None:
    """TWAP and VWAP parents (both sides, two symbols) stopped 5 minutes into their window:
    the bench's live executions, a few of them."""
    configure_logging("error")
    db = tmp_path / "live.db"
    asyncio.run(engine_bench.parents(db, 8, stop_after_minutes=5, speed=None))
    engine = async_engine(db)

    async def live() -> list[str]:
        try:
            async with EventStore(engine, commit_in="thread") as store:
                return await store.live_execution_ids()
        finally:
            await engine.dispose()
    ids = asyncio.run(live())
    assert len(ids) == 8
    want = asyncio.run(reference(db, ids))
    assert sum(len(a.orders) for a in want.values()) > 8 and all(a.state.value == "running" for a in want.values())
    assert_same_state(asyncio.run(recovered(db, ids)), want)
