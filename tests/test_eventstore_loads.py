"""``EventStore.load`` on a cache miss: concurrent loads share one query, and a failed or
cancelled load does not strand the others (a burst of submissions checks for duplicates this way)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from tests.test_eventstore import paused, running


class EventReads:
    """Counts (and on demand fails) the readers' SELECTs on the events table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.fail = False
        sa_event.listen(engine.sync_engine, "before_cursor_execute", self)

    def __call__(self, conn, cursor, statement: str, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT") and "FROM events" in statement:
            self.count += 1
            if self.fail:
                raise OperationalError(statement, None, Exception("disk I/O error (injected)"))


@pytest.fixture
async def engine(any_db: Path | URL) -> AsyncIterator[AsyncEngine]:
    """A fresh engine on a file holding a0..a4 running, a1 also paused: what a fresh store
    must load."""
    db_path = any_db
    writing = async_engine(db_path)
    async with EventStore(writing) as store:
        await asyncio.gather(*(store.append(running(f"a{i}")) for i in range(5)))
        await store.append([paused("a1")])
    await writing.dispose()
    eng = async_engine(db_path)
    yield eng
    await eng.dispose()


async def test_concurrent_cache_misses_share_one_query(engine: AsyncEngine) -> None:
    reads = EventReads(engine)
    async with EventStore(engine) as store:  # a fresh store: nothing cached
        reads.count = 0  # (starting read the last sequence number)
        ids = [f"a{i}" for i in range(5)] + ["new-1", "new-2", "a1"]
        aggs = await asyncio.gather(*(store.load(i) for i in ids))
        assert reads.count == 1
        assert [(a.execution_id, a.version, a.state.value) for a in aggs] == [
            ("a0", 2, "running"), ("a1", 3, "paused"), ("a2", 2, "running"), ("a3", 2, "running"),
            ("a4", 2, "running"), ("new-1", 0, "pending"), ("new-2", 0, "pending"), ("a1", 3, "paused")]
        assert aggs[1] is aggs[-1]  # one cached copy per aggregate
        # cached now: no further query, and appends fold onto the loaded state
        await store.append([paused("a0")], expected_version=2)
        assert (await store.load("a0")).version == 3 and reads.count == 1


async def test_a_cancelled_load_leaves_the_others_sharing_its_query(engine: AsyncEngine) -> None:
    async with EventStore(engine) as store:
        first = asyncio.create_task(store.load("a2"))
        second = asyncio.create_task(store.load("a2"))
        await asyncio.sleep(0)
        first.cancel()
        assert (await second).version == 2
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_a_failed_query_fails_every_load_sharing_it_and_the_next_loads_work(engine: AsyncEngine) -> None:
    reads = EventReads(engine)
    async with EventStore(engine) as store:
        reads.fail = True
        results = await asyncio.gather(store.load("a0"), store.load("a3"), store.load("new-1"),
                                       return_exceptions=True)
        assert all(isinstance(r, OperationalError) and "injected" in str(r) for r in results), results
        reads.fail = False
        assert [a.version for a in await asyncio.gather(store.load("a0"), store.load("new-1"))] == [2, 0]
