"""Slices a continuation re-plan adds (``continue_after_plan``: new slice indices in
``ScheduleReplanned``) get their ``execution_slices`` rows, on SQLite and PostgreSQL: every
fill's slice has a row, and the projection equals a rebuild from the events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.store import migrate
from genesis.store.db import async_engine, sync_engine
from genesis.store.eventstore import EventStore
from genesis.store.projector import rebuild_sync

_SNAPSHOTS = {
    "execution_slices": "SELECT * FROM execution_slices ORDER BY execution_id, slice_index",
    "child_orders": "SELECT * FROM child_orders ORDER BY client_order_id",
    "fills": "SELECT * FROM fills ORDER BY execution_id, trade_id",
    "executions": "SELECT * FROM executions ORDER BY execution_id",
}


def _projection(db: Path | URL) -> dict[str, list[tuple]]:
    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            return {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in _SNAPSHOTS.items()}
    finally:
        engine.dispose()


async def test_continuation_slices_are_projected_and_match_a_rebuild(any_db: Path | URL) -> None:
    """A re-plan onto new slice indices (what ``continue_after_plan`` appends when the squeezed
    slices have run with quantity left) projects a row for each, equal to a rebuild."""
    eid, at = "0123456789ab", datetime(2025, 6, 10, 14, tzinfo=timezone.utc)
    end = at + timedelta(minutes=30)
    qty = Decimal("2")
    history = [
        ev.ExecutionSubmitted(eid, at, "continuation-1", "BTC/USDT", "buy", qty, "twap", 1800),
        ev.ExecutionStarted(eid, at, Decimal("100000"), end,
                            (ev.PlannedSlice(0, at, Decimal("1")), ev.PlannedSlice(1, at + timedelta(minutes=1),
                                                                                  Decimal("1")))),
        ev.ScheduleReplanned(eid, at + timedelta(minutes=2), end,
                             (ev.PlannedSlice(1, at + timedelta(minutes=2), Decimal("0.5")),
                              ev.PlannedSlice(2, at + timedelta(minutes=10), Decimal("0.75")),
                              ev.PlannedSlice(3, at + timedelta(minutes=20), Decimal("0.75"))),
                             "continuation: the rest over the original window"),
    ]
    migrate.upgrade(any_db)
    store = EventStore(async_engine(any_db))
    await store.start()
    try:
        for e in history:
            await store.append([e])
    finally:
        await store.stop()
    agg = Execution.replay(eid, history)
    assert set(agg.slices) == {0, 1, 2, 3}

    live = _projection(any_db)
    rows = {r[1]: r for r in live["execution_slices"] if r[0] == eid}
    assert set(rows) == set(agg.slices), "a row for every slice, the added ones included"
    engine = sync_engine(any_db)
    try:
        with engine.begin() as conn:
            rebuild_sync(conn)
    finally:
        engine.dispose()
    assert _projection(any_db) == live
