"""Slices a continuation re-plan adds (``continue_after_plan``: new slice indices in
``ScheduleReplanned``) get their ``execution_slices`` rows, on SQLite and PostgreSQL: every
fill's slice has a row, and the projection equals a rebuild from the events."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from genesis.backtest import BacktestSpec, run_backtest
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.store.db import sync_engine
from genesis.store.projector import rebuild_sync
from tests.test_early_completion_target import SAMPLE, read_history

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
    spec = BacktestSpec(SAMPLE, "BTC/USDT", "buy", "30", "twap",
                        datetime(2025, 6, 10, 10, tzinfo=timezone.utc), 3600)
    await run_backtest(spec, db_path=any_db)  # type: ignore[arg-type]
    history = await read_history(any_db)  # type: ignore[arg-type]
    started = next(e for e in history if isinstance(e, ev.ExecutionStarted))
    agg = Execution.replay(started.execution_id, history)
    added = set(agg.slices) - {p.index for p in started.slices}
    assert added, "the scenario re-plans onto new slice indices"

    live = _projection(any_db)
    rows = {r[1]: r for r in live["execution_slices"] if r[0] == started.execution_id}
    assert set(rows) == set(agg.slices)
    fill_slices = {r[4] for r in _fill_slices(any_db)}
    assert fill_slices & added, "the added slices traded"
    assert fill_slices <= set(rows), "every fill's slice has a row"

    engine = sync_engine(any_db)
    try:
        with engine.begin() as conn:
            rebuild_sync(conn)
    finally:
        engine.dispose()
    assert _projection(any_db) == live


def _fill_slices(db: Path | URL) -> list[tuple]:
    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT execution_id, trade_id, client_order_id, qty, slice_index FROM fills"))]
    finally:
        engine.dispose()
