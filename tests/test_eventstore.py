"""The event store's contract, on real migrated SQLite files and PostgreSQL databases (every
test runs on both: the ``any_db`` fixture): ordering, versions, refusals, group commit,
durability, command settlement and storage faults."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.bus import EventBus
from genesis.domain import events as ev
from genesis.domain.codec import encode
from genesis.domain.state import ExecutionState
from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.store.eventstore import (ConcurrencyError, EventStore, InvalidEventError, StorageError,
                                      StoreClosedError)

T0 = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


# -- event builders ------------------------------------------------------------------------

def submitted(eid: str, at: datetime = T0, qty: str = "1") -> ev.ExecutionSubmitted:
    return ev.ExecutionSubmitted(eid, at, f"req-{eid}", "BTC/USDT", "buy", Decimal(qty), "twap", 600)


def started(eid: str, at: datetime = T0, slices: int = 2) -> ev.ExecutionStarted:
    plan = tuple(ev.PlannedSlice(i, at + timedelta(minutes=i), Decimal("0.5")) for i in range(slices))
    return ev.ExecutionStarted(eid, at, Decimal("65000.12"), at + timedelta(minutes=10), plan)


def paused(eid: str, n: int = 0) -> ev.ExecutionPaused:
    return ev.ExecutionPaused(eid, T0 + timedelta(seconds=2 * n + 1), f"pause {n}")


def resumed(eid: str, n: int = 0) -> ev.ExecutionResumed:
    return ev.ExecutionResumed(eid, T0 + timedelta(seconds=2 * n + 2), f"resume {n}")


def running(eid: str) -> list[ev.Event]:
    return [submitted(eid), started(eid)]


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture
async def engine(any_db: Path | URL) -> AsyncIterator[AsyncEngine]:
    eng = async_engine(any_db)
    yield eng
    await eng.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[EventStore]:
    s = EventStore(engine)
    await s.start()
    yield s
    await s.stop()


async def count(engine: AsyncEngine, table: t.Table) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)))


async def add_command(engine: AsyncEngine, execution_id: str, kind: str = "pause") -> int:
    async with engine.begin() as conn:
        result = await conn.execute(insert(t.commands), {
            "kind": kind, "execution_id": execution_id, "payload": "{}", "created_at": T0})
        return int(result.inserted_primary_key[0])


async def command_row(engine: AsyncEngine, command_id: int) -> dict:
    async with engine.connect() as conn:
        return dict((await conn.execute(
            select(t.commands).where(t.commands.c.command_id == command_id))).mappings().one())


def assert_gap_free(seqs: list[int]) -> None:
    assert seqs == list(range(1, len(seqs) + 1))


# -- ordering and versions -----------------------------------------------------------------

async def test_read_returns_events_in_append_order_with_per_aggregate_versions(store: EventStore) -> None:
    appended: list[ev.Event] = []
    for eid in ("a", "b", "c"):
        await store.append(running(eid), expected_version=0)
        appended += running(eid)
    for n in range(3):
        for eid in ("c", "a", "b"):
            await store.append([paused(eid, n)])
            await store.append([resumed(eid, n)])
            appended += [paused(eid, n), resumed(eid, n)]

    everything = await store.read()
    assert [s.event for s in everything] == appended
    assert_gap_free([s.sequence_number for s in everything])
    for eid in ("a", "b", "c"):
        mine = await store.read(eid)
        assert [s.aggregate_version for s in mine] == list(range(1, 9))
        assert [s.event for s in mine] == [e for e in appended if e.execution_id == eid]
        assert mine == sorted(mine, key=lambda s: s.sequence_number)
    # paging: after_sequence and limit
    page = await store.read(after_sequence=5, limit=4)
    assert [s.sequence_number for s in page] == [6, 7, 8, 9]


async def test_append_returns_the_stored_envelopes(store: EventStore) -> None:
    stored = await store.append(running("a"), expected_version=0)
    assert [(s.sequence_number, s.aggregate_version) for s in stored] == [(1, 1), (2, 2)]
    stored = await store.append(running("b"))
    assert [(s.sequence_number, s.aggregate_version) for s in stored] == [(3, 1), (4, 2)]
    stored = await store.append([paused("a")], expected_version=2)
    assert [(s.sequence_number, s.aggregate_version) for s in stored] == [(5, 3)]
    agg = await store.load("a")
    assert agg.version == 3 and agg.state is ExecutionState.PAUSED


async def test_sequence_numbers_are_unique_and_gap_free_across_aggregates(store: EventStore, engine) -> None:
    await asyncio.gather(*(store.append(running(f"agg{i}"), expected_version=0) for i in range(20)))
    for i in range(0, 20, 2):
        await store.append([paused(f"agg{i}")])
    async with engine.connect() as conn:
        seqs = list(await conn.scalars(select(t.events.c.sequence_number).order_by(t.events.c.sequence_number)))
    assert_gap_free(seqs)
    assert len(seqs) == 50


# -- refusals ------------------------------------------------------------------------------

async def test_version_conflict_raises_and_writes_nothing(store: EventStore, engine) -> None:
    await store.append(running("a"), expected_version=0)
    cmd = await add_command(engine, "a")
    before = await store.read()

    with pytest.raises(ConcurrencyError):
        await store.append([paused("a")], expected_version=1, done_commands=[(cmd, "accepted", None)])
    with pytest.raises(ConcurrencyError):
        await store.append(running("a"), expected_version=0)  # a second "create" of the same aggregate

    assert await store.read() == before
    assert (await command_row(engine, cmd))["processed_at"] is None
    stored = await store.append([paused("a")], expected_version=2)
    assert [(s.sequence_number, s.aggregate_version) for s in stored] == [(3, 3)]


async def test_illegal_transition_is_refused_and_the_aggregate_keeps_working(store: EventStore, engine) -> None:
    await store.append(running("a"), expected_version=0)
    cmd = await add_command(engine, "a", "resume")
    before = await store.read()

    with pytest.raises(InvalidEventError, match="resume"):
        await store.append([resumed("a")], done_commands=[(cmd, "accepted", None)])
    # a multi-event append with a bad tail is refused as a whole
    with pytest.raises(InvalidEventError):
        await store.append([paused("a"), resumed("a"), resumed("a", 1)])

    assert await store.read() == before
    assert (await command_row(engine, cmd))["processed_at"] is None
    agg = await store.load("a")
    assert agg.state is ExecutionState.RUNNING and agg.version == 2
    async with engine.connect() as conn:
        row = (await conn.execute(select(t.executions))).mappings().one()
    assert row["state"] == "running" and row["version"] == 2

    stored = await store.append([paused("a"), resumed("a")], expected_version=2)
    assert [(s.sequence_number, s.aggregate_version) for s in stored] == [(3, 3), (4, 4)]
    assert (await store.load("a")).state is ExecutionState.RUNNING


async def test_events_of_an_unknown_kind_for_an_aggregate_are_refused(store: EventStore) -> None:
    # a fill for an order that was never intended
    fill = ev.FillRecorded("a", T0, "gaaaaaaaaaaaa-0-0", 0, "t1", Decimal("0.1"), Decimal("65000"), Decimal("0"),
                           "BTC", "taker", T0)
    await store.append(running("a"))
    with pytest.raises(InvalidEventError):
        await store.append([fill])
    assert len(await store.read("a")) == 2


async def test_an_invalid_append_does_not_leave_refused_events_in_the_cache(store: EventStore) -> None:
    """Three appends to one aggregate land in one batch; the middle one is illegal. Whatever the
    store refuses must not linger in its cached aggregate."""
    await store.append(running("a"))
    results = await asyncio.gather(
        store.append([paused("a", 0)]),
        store.append([resumed("a", 0), resumed("a", 1)]),  # resume twice: illegal
        store.append([paused("a", 1)]),
        return_exceptions=True,
    )
    assert isinstance(results[1], InvalidEventError)
    await store.append(running("z"))  # the queue is FIFO: the batch above is settled
    stored = [e for s in await store.read("a") for e in [s.event]]
    agg = await store.load("a")
    # the cached aggregate agrees with what is stored, whatever was accepted
    assert agg.version == len(stored)
    expected_state = ExecutionState.PAUSED if isinstance(stored[-1], ev.ExecutionPaused) else ExecutionState.RUNNING
    assert agg.state is expected_state
    # and the next legal move from the stored state is accepted
    nxt = resumed("a", 5) if expected_state is ExecutionState.PAUSED else paused("a", 5)
    await store.append([nxt], expected_version=len(stored))
    assert (await store.load("a")).version == len(stored) + 1


async def test_append_validates_its_arguments(store: EventStore) -> None:
    with pytest.raises(ValueError):
        await store.append([])
    with pytest.raises(ValueError):
        await store.append([submitted("a"), submitted("b")])
    assert await store.read() == []


async def test_unique_aggregate_version_is_enforced_by_the_database(store: EventStore, engine) -> None:
    await store.append(running("a"))
    row = {"event_id": str(uuid.uuid4()), "sequence_number": 99, "event_type": "ExecutionPaused",
           "aggregate_id": "a", "aggregate_version": 2, "event_data": encode(paused("a")),
           "occurred_at": T0, "created_at": T0}
    with pytest.raises(IntegrityError, match="aggregate_id, events.aggregate_version|uq_events_aggregate_id"):
        async with engine.begin() as conn:
            await conn.execute(insert(t.events), row)
    dup_seq = {**row, "event_id": str(uuid.uuid4()), "sequence_number": 2, "aggregate_version": 3}
    with pytest.raises(IntegrityError, match="sequence_number"):
        async with engine.begin() as conn:
            await conn.execute(insert(t.events), dup_seq)
    assert await count(engine, t.events) == 2


# -- group commit --------------------------------------------------------------------------

async def test_group_commit_under_100_concurrent_appenders(store: EventStore, engine) -> None:
    appenders, rounds = 100, 6
    commits_before = store.commits

    async def appender(i: int) -> list[int]:
        eid = f"exec{i:03d}"
        seqs = [s.sequence_number for s in await store.append(running(eid), expected_version=0)]
        for n in range(rounds):
            seqs += [s.sequence_number for s in await store.append([paused(eid, n)], expected_version=2 + 2 * n)]
            seqs += [s.sequence_number for s in await store.append([resumed(eid, n)])]
        return seqs

    results = await asyncio.gather(*(appender(i) for i in range(appenders)))
    appends = appenders * (1 + 2 * rounds)
    events_total = appenders * (2 + 2 * rounds)
    commits = store.commits - commits_before

    assert commits < appends / 5, f"{commits} commits for {appends} appends: no group commit"
    assert sorted(s for r in results for s in r) == list(range(1, events_total + 1))
    for r in results:
        assert r == sorted(r)
    async with engine.connect() as conn:
        seqs = list(await conn.scalars(select(t.events.c.sequence_number).order_by(t.events.c.sequence_number)))
        per_agg = (await conn.execute(
            select(t.events.c.aggregate_id, func.count(), func.min(t.events.c.aggregate_version),
                   func.max(t.events.c.aggregate_version)).group_by(t.events.c.aggregate_id))).all()
        states = set(await conn.scalars(select(t.executions.c.state)))
    assert_gap_free(seqs)
    assert len(per_agg) == appenders
    assert all((n, lo, hi) == (2 + 2 * rounds, 1, 2 + 2 * rounds) for _, n, lo, hi in per_agg)
    assert states == {"running"}


async def test_stop_commits_what_is_queued_and_a_new_store_reads_it_back(any_db: Path | URL) -> None:
    db_path = any_db
    engine = async_engine(db_path)
    store = EventStore(engine)
    await store.start()
    tasks = [asyncio.ensure_future(store.append(running(f"e{i}"))) for i in range(10)]
    await asyncio.sleep(0)  # queued, not necessarily committed
    await store.stop()
    written = [s for task in tasks for s in task.result()]
    with pytest.raises(StoreClosedError):
        await store.append([paused("e0")])
    await engine.dispose()

    engine2 = async_engine(db_path)
    try:
        async with EventStore(engine2) as again:
            back = await again.read()
            assert sorted(back, key=lambda s: s.sequence_number) == sorted(written, key=lambda s: s.sequence_number)
            assert_gap_free([s.sequence_number for s in back])
            agg = await again.load("e3")
            assert agg.version == 2 and agg.state is ExecutionState.RUNNING
            assert agg.qty == Decimal("1") and agg.arrival_price == Decimal("65000.12")
            stored = await again.append([paused("e3")], expected_version=2)
            assert [(s.sequence_number, s.aggregate_version) for s in stored] == [(21, 3)]
    finally:
        await engine2.dispose()


async def test_committed_events_are_published_in_order(engine) -> None:
    bus = EventBus()
    seen: list[ev.Event] = []
    bus.subscribe("collector", seen.append)
    async with EventStore(engine, bus) as store:
        await store.append(running("a"))
        with pytest.raises(InvalidEventError):
            await store.append([resumed("a")])
        await store.append([paused("a")])
        await bus.drain()
    await bus.close()
    assert seen == running("a") + [paused("a")]


# -- commands ------------------------------------------------------------------------------

async def test_done_commands_are_marked_in_the_same_transaction(store: EventStore, engine) -> None:
    await store.append(running("a"))
    pause_cmd = await add_command(engine, "a", "pause")
    noop_cmd = await add_command(engine, "a", "resume")

    await store.append([paused("a")], done_commands=[(pause_cmd, "accepted", None)])
    await store.mark_commands([(noop_cmd, "noop", "already paused")])
    await store.mark_commands([])

    row = await command_row(engine, pause_cmd)
    assert row["outcome"] == "accepted" and row["processed_at"] is not None and row["detail"] is None
    row = await command_row(engine, noop_cmd)
    assert (row["outcome"], row["detail"]) == ("noop", "already paused") and row["processed_at"] is not None
    assert len(await store.read("a")) == 3


# -- storage faults ------------------------------------------------------------------------

async def test_storage_error_when_the_database_refuses_writes(any_db: Path | URL) -> None:
    """``PRAGMA query_only`` (PostgreSQL: ``default_transaction_read_only``) makes every write
    fail like a read-only file would. Callers get ``StorageError``, nothing is half-written,
    and the store works again once writes do."""
    read_only = {"on": False}
    engine = async_engine(any_db)
    refuse = ("SET default_transaction_read_only = on" if isinstance(any_db, URL) else "PRAGMA query_only=ON")

    def _query_only(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        if read_only["on"]:
            cur = dbapi_conn.cursor()
            cur.execute(refuse)
            cur.close()
            if isinstance(any_db, URL):
                dbapi_conn.commit()

    store = EventStore(engine, chunk_size=1, commit_in="thread")  # its engine takes the hook
    for target in (engine.sync_engine, store.writer_engine):  # readers and the writer thread
        sa_event.listen(target, "connect", _query_only)
    await store.start()
    try:
        for eid in ("a", "b", "c"):
            await store.append(running(eid))
        cmd = await add_command(engine, "a")
        before = await store.read()

        read_only["on"] = True
        await engine.dispose()  # new connections pick up query_only
        store.writer_engine.dispose()
        results = await asyncio.gather(
            store.append([paused("a")], done_commands=[(cmd, "accepted", None)]),
            store.append([paused("b")]),
            store.append(running("d")),
            store.mark_commands([(cmd, "noop", None)]),
            store.append([paused("c")]),
            return_exceptions=True,
        )
        assert all(isinstance(r, StorageError) for r in results), results
        assert "readonly" in str(results[0]) or "read-only transaction" in str(results[0])

        read_only["on"] = False
        await engine.dispose()
        store.writer_engine.dispose()
        assert await store.read() == before
        assert (await command_row(engine, cmd))["processed_at"] is None

        # the writer survived: the same appends now succeed, numbering continues without a gap
        await store.append([paused("c")], expected_version=2)
        await store.append([paused("a")], expected_version=2, done_commands=[(cmd, "accepted", None)])
        await store.append(running("d"), expected_version=0)
        everything = await store.read()
        assert_gap_free([s.sequence_number for s in everything])
        assert len(everything) == len(before) + 4
        assert (await command_row(engine, cmd))["outcome"] == "accepted"
        async with engine.connect() as conn:
            states = dict((await conn.execute(select(t.executions.c.execution_id, t.executions.c.state))).all())
        assert states == {"a": "paused", "b": "running", "c": "paused", "d": "running"}
    finally:
        await store.stop()
        await engine.dispose()
