"""PostgreSQL: sequence numbers follow commit order, even with two writers on one database.

Two event stores on two engines append concurrently (as two daemons would for a moment
during a takeover); a reader polls "events after the last one I saw", as a projector or a
follower does. Every event committed must reach the reader: none may commit later with a
number below one the reader has already moved past. Each writer's appends report the
sequence numbers that were committed.
"""

from __future__ import annotations

import asyncio

import pytest

from sqlalchemy import select
from sqlalchemy.engine import URL

from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from tests.test_eventstore import paused, resumed, running

WRITERS, APPENDERS, ROUNDS = 2, 20, 5


async def test_a_polling_reader_misses_no_event_of_two_concurrent_writers(pg_db: URL) -> None:
    engines = [async_engine(pg_db) for _ in range(WRITERS + 1)]
    stores = [EventStore(e, chunk_size=4) for e in engines[:WRITERS]]
    for store in stores:
        await store.start()
    seen: list[int] = []
    done = asyncio.Event()

    async def reader() -> None:
        last = 0
        while True:
            finished = done.is_set()  # read once more after the writers are done
            async with engines[-1].connect() as conn:
                batch = list(await conn.scalars(select(t.events.c.sequence_number)
                                                .where(t.events.c.sequence_number > last)
                                                .order_by(t.events.c.sequence_number)))
            seen.extend(batch)
            last = batch[-1] if batch else last
            if finished:
                return
            await asyncio.sleep(0)

    async def appender(store: EventStore, eid: str) -> list[tuple[int, str, int]]:
        out = await store.append(running(eid), expected_version=0)
        for n in range(ROUNDS):
            out += await store.append([paused(eid, n)], expected_version=2 + 2 * n)
            out += await store.append([resumed(eid, n)], expected_version=3 + 2 * n)
        return [(s.sequence_number, eid, s.aggregate_version) for s in out]

    reading = asyncio.create_task(reader())
    try:
        results = await asyncio.gather(*(appender(store, f"w{w}-{i:02d}")
                                         for i in range(APPENDERS) for w, store in enumerate(stores)))
    finally:
        done.set()
        await reading
        for store in stores:
            await store.stop()
    async with engines[-1].connect() as conn:
        stored = [tuple(r) for r in await conn.execute(
            select(t.events.c.sequence_number, t.events.c.aggregate_id, t.events.c.aggregate_version)
            .order_by(t.events.c.sequence_number))]
    for e in engines:
        await e.dispose()

    total = WRITERS * APPENDERS * (2 + 2 * ROUNDS)
    assert [s[0] for s in stored] == list(range(1, total + 1))  # unique and gap-free
    assert seen == list(range(1, total + 1))  # the poller saw every one, in order, once
    assert sorted(r for result in results for r in result) == stored  # what each append reported
    assert all(store.commits > 0 for store in stores)


async def test_a_precondition_runs_under_the_events_lock_in_the_commit_transaction(pg_db: URL) -> None:
    """The hook a writer lease check will use: it runs inside the transaction that appends,
    after the events table lock; when it fails, nothing of the transaction is written."""
    from sqlalchemy import text
    from sqlalchemy.engine import Connection

    from genesis.store.eventstore import StorageError

    seen: list[int] = []
    refuse = {"on": False}

    def precondition(conn: Connection) -> None:
        seen.append(int(conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND mode = 'ExclusiveLock' "
            "AND relation = 'events'::regclass")).scalar_one()))
        if refuse["on"]:
            conn.execute(text("SELECT 1 / 0"))  # as a failed check would: the database refuses

    engine = async_engine(pg_db)
    async with EventStore(engine, commit_in="thread", precondition=precondition) as store:
        await store.append(running("a"))
        refuse["on"] = True
        with pytest.raises(StorageError, match="division by zero"):
            await store.append([paused("a")], done_commands=())
        refuse["on"] = False
        await store.append([paused("a")], expected_version=2)
        assert [(s.sequence_number, s.event) for s in await store.read()] == \
               [(1, running("a")[0]), (2, running("a")[1]), (3, paused("a"))]
    await engine.dispose()
    assert seen == [1, 1, 1]
