"""A commit whose answer is lost with the connection (PostgreSQL commit process): the store
finds out whether it committed before it answers (``genesis.store.pg_commit_outcome``), and
an append whose outcome stays unknown is settled by the engine from what the store holds
(``genesis.engine.durable_append``). The faults are injected (``genesis.store.pg_commit_faults``)
on a real PostgreSQL server: skipped without it, failed under CI=true (``tests.postgres``)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
import structlog
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import URL

from genesis.clock import WallClock
from genesis.domain import events as ev
from genesis.engine.durable_append import DurableAppend
from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.store.eventstore import CommitOutcomeUnknownError, EventStore, StorageError
from genesis.store.postgres import PostgresProcessCommitter
from tests.test_eventstore import T0, paused, resumed, running


async def faulty_store(url: URL, fault: str | None, outcome_deadline_s: float = 30.0) -> EventStore:
    """A started store on ``url`` whose commit process injects ``fault`` (None: none)."""
    store = EventStore(async_engine(url))
    store._writer._committer = PostgresProcessCommitter(store.writer_engine, outcome_deadline_s=outcome_deadline_s,
                                                        fault=fault)
    await store.start()
    return store


async def stored(store: EventStore, aggregate_id: str) -> list[tuple[int, int, str]]:
    """(sequence number, version, event type) of the aggregate's rows, as committed."""
    return [(s.sequence_number, s.aggregate_version, s.event.event_type) for s in await store.read(aggregate_id)]


async def test_a_commit_whose_answer_was_lost_is_reported_committed(pg_db: URL) -> None:
    store = await faulty_store(pg_db, "answer_lost:2")
    try:
        await store.append(running("a"))  # transaction 1
        got = await store.append([paused("a")])  # transaction 2: committed, its answer lost
        assert [(s.sequence_number, s.aggregate_version) for s in got] == [(3, 3)]
        assert await stored(store, "a") == [(1, 1, "ExecutionSubmitted"), (2, 2, "ExecutionStarted"),
                                            (3, 3, "ExecutionPaused")]
        assert (await store.load("a")).version == 3
        await store.append([resumed("a")], expected_version=3)  # no divergence: the next one follows
        assert [v for _, v, _ in await stored(store, "a")] == [1, 2, 3, 4]
    finally:
        await store.stop()


async def test_the_committed_numbers_are_reported_when_another_writer_moved_them(pg_db: URL) -> None:
    store = await faulty_store(pg_db, "answer_lost:2")
    try:
        await store.append(running("a"))
        async with EventStore(async_engine(pg_db)) as other:  # appends 3 and 4 behind this writer's back
            await other.append(running("b"))
        got = await store.append([paused("a")])  # planned as 3, committed as 5, answer lost
        assert [(s.sequence_number, s.aggregate_version) for s in got] == [(5, 3)]
        assert (await stored(store, "a"))[-1] == (5, 3, "ExecutionPaused")
    finally:
        await store.stop()


async def test_a_commit_lost_before_its_commit_is_refused_and_nothing_is_stored(pg_db: URL) -> None:
    store = await faulty_store(pg_db, "lost_before_commit:2")
    try:
        await store.append(running("a"))
        with pytest.raises(StorageError, match="it did not commit: nothing was written") as refused:
            await store.append([paused("a")])
        assert not isinstance(refused.value, CommitOutcomeUnknownError)
        assert [v for _, v, _ in await stored(store, "a")] == [1, 2]
        await store.append([paused("a")], expected_version=2)  # the same append again: it goes in as version 3
        assert [v for _, v, _ in await stored(store, "a")] == [1, 2, 3]
    finally:
        await store.stop()


async def test_marking_commands_whose_answer_was_lost_is_reported_done(pg_db: URL) -> None:
    store = await faulty_store(pg_db, "answer_lost:2")
    try:
        await store.append(running("a"))
        with store.writer_engine.begin() as conn:
            conn.execute(t.commands.insert().values(command_id=7, execution_id="a", kind="pause", payload="{}",
                                                    created_at=T0))
        await store.mark_commands([(7, "ignored", "test")])  # transaction 2: updates only, answer lost
        with store.writer_engine.connect() as conn:
            assert conn.execute(select(t.commands.c.outcome).where(t.commands.c.command_id == 7)).scalar() == "ignored"
    finally:
        await store.stop()


def intent(eid: str) -> ev.OrderIntended:
    return ev.OrderIntended(eid, T0, 0, 0, f"g{eid}-0-0", "limit", "post_only", Decimal("0.5"), Decimal("100"),
                            Decimal("100"))


@pytest.mark.parametrize("fault", ["answer_lost:2:unreachable", "lost_before_commit:2:unreachable"])
async def test_an_unknown_outcome_is_named_and_nothing_is_appended_twice(pg_db: URL, fault: str) -> None:
    store = await faulty_store(pg_db, fault, outcome_deadline_s=0.2)
    try:
        await store.append(running("a"))
        with pytest.raises(CommitOutcomeUnknownError, match="may or may not have committed"):
            await store.append([intent("a")])  # transaction 2: the server cannot be asked in time
        committed = fault.startswith("answer_lost")
        assert [v for _, v, _ in await stored(store, "a")] == ([1, 2, 3] if committed else [1, 2])
    finally:
        await store.stop()


@pytest.mark.parametrize("fault", ["answer_lost:2:unreachable", "lost_before_commit:2:unreachable"])
async def test_the_engine_acts_on_an_intent_of_unknown_outcome_only_once_the_store_says_it_is_durable(
        pg_db: URL, fault: str) -> None:
    store = await faulty_store(pg_db, fault, outcome_deadline_s=0.2)
    try:
        await store.append(running("a"))
        append = DurableAppend("a", store, WallClock(), _no_pace, structlog.get_logger("test"), retry_seconds=0.01)
        agg = await append([intent("a")])  # transaction 2's outcome is unknown: the store is read, then
        assert "ga-0-0" in agg.orders  # the intent is durable (it was, or it was appended again) ...
        assert await stored(store, "a") == [(1, 1, "ExecutionSubmitted"), (2, 2, "ExecutionStarted"),
                                            (3, 3, "OrderIntended")]  # ... once
        await store.append([paused("a")], expected_version=3)  # and the store's versions are the engine's
    finally:
        await store.stop()


async def _no_pace() -> None:
    return None


async def test_backends_terminated_at_random_while_appending_never_make_the_store_and_the_appenders_disagree(
        pg_db: URL) -> None:
    """A property, whatever moments the terminations hit: what every appender was told is what
    the store holds. (The moments vary from run to run: about one termination in a hundred falls
    between a ``COMMIT`` and its answer; the old code reported that append refused while it was
    stored, and failed this test in 3 runs of 4.)"""
    store = EventStore(async_engine(pg_db))
    await store.start()
    admin = create_engine(pg_db, isolation_level="AUTOCOMMIT")
    told: dict[str, list[int]] = {}  # the versions each appender was told were committed
    unknown: set[str] = set()  # an outcome it was told is unknown: either way is right
    appending = True

    async def appender(aid: str) -> None:
        told[aid] = []
        for n in range(25):
            agg = await store.load(aid)
            events = running(aid) if agg.version == 0 else [(paused if agg.state.value == "running" else resumed)(aid, n)]
            try:
                told[aid] += [s.aggregate_version for s in await store.append(events)]
            except CommitOutcomeUnknownError:
                unknown.add(aid)
            except StorageError:
                pass  # refused: nothing was written

    async def terminator() -> int:
        terminated = 0
        while appending:
            await asyncio.sleep(random.uniform(0.0, 0.03))
            with admin.connect() as conn:
                terminated += conn.execute(text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'genesis commit process' AND datname = current_database()")).scalar()
        return terminated

    try:
        terminating = asyncio.create_task(terminator())
        await asyncio.gather(*(appender(f"x{i}") for i in range(20)))
        appending = False
        assert await terminating > 0
        for aid, versions in told.items():
            if aid not in unknown:
                assert [v for _, v, _ in await stored(store, aid)] == versions, aid
    finally:
        appending = False
        await store.stop()
        admin.dispose()

