"""PostgreSQL: the ``executions`` projection's updates are HOT (heap-only tuples: no new index
entries), migration 0014: no index on ``state`` there, and a fillfactor that leaves room on each
page. SQLite keeps its index on ``state``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL

from genesis.store import migrate
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from tests.test_eventstore import paused, resumed, running

EXECUTIONS = 10
TOGGLES = 15  # pause and resume, per execution
STATS_WAIT_SECONDS = 30.0  # the commit process' backend reports its counts as it exits


def _indexes(engine_url: URL | str) -> set[str]:
    engine = create_engine(engine_url)
    try:
        with engine.connect() as conn:
            return {ix["name"] for ix in inspect(conn).get_indexes("executions")}
    finally:
        engine.dispose()


def test_postgresql_executions_have_no_state_index_and_a_fillfactor(pg_db: URL) -> None:
    assert "ix_executions_state" not in _indexes(pg_db)
    assert "ix_executions_symbol_submitted" in _indexes(pg_db)
    engine = create_engine(pg_db)
    try:
        with engine.connect() as conn:
            options = conn.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'executions'"))
    finally:
        engine.dispose()
    assert options == ["fillfactor=80"]


def test_sqlite_keeps_the_state_index(db_path: Path) -> None:
    assert "ix_executions_state" in _indexes(migrate.sqlite_url(db_path))


def test_the_postgresql_downgrade_puts_the_index_back(pg_db: URL) -> None:
    migrate.downgrade(pg_db, "0013_held_in_analyses")
    assert "ix_executions_state" in _indexes(pg_db)
    migrate.upgrade(pg_db)
    assert "ix_executions_state" not in _indexes(pg_db)


async def _pause_and_resume(url: URL) -> None:
    engine = async_engine(url)
    try:
        async with EventStore(engine) as store:  # the commit process, as the daemon runs it
            eids = [f"hot-{i:02d}" for i in range(EXECUTIONS)]
            await asyncio.gather(*(store.append(running(eid)) for eid in eids))

            async def toggle(eid: str) -> None:
                for n in range(TOGGLES):
                    await store.append([paused(eid, n)])
                    await store.append([resumed(eid, n)])

            await asyncio.gather(*(toggle(eid) for eid in eids))  # group commits: set-based updates
    finally:
        await engine.dispose()


async def test_pause_and_resume_update_executions_in_place_on_postgresql(pg_db: URL) -> None:
    """Every pause and resume changes ``state``: with an index on it, no update could be HOT."""
    await _pause_and_resume(pg_db)
    updates = EXECUTIONS * TOGGLES * 2
    engine = create_engine(pg_db)
    try:
        deadline = time.monotonic() + STATS_WAIT_SECONDS
        while True:
            with engine.connect() as conn:
                counted, hot = conn.execute(text(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'executions'")).one()
            if counted >= updates or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        engine.dispose()
    assert counted == updates
    # alone nearly all are HOT; under a busy server fewer (a page is pruned only when no
    # snapshot can still see its old versions): 230 of 300 seen. With the index: none, ever.
    assert hot >= updates // 4, f"{hot} of {updates} updates HOT"
