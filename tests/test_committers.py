"""The committers' contract, run against every adapter (the commit process and the worker
thread on SQLite, the PostgreSQL committer), and what only the commit process can do: outlive the daemon's signals, stop when
told, and report its own death instead of guessing what it committed."""

from __future__ import annotations

import asyncio
import enum
import os
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from genesis.store import db as store_db
from genesis.store.committers import (CommitRefused, Committer, CommitterLost, ProcessCommitter,
                                      ThreadCommitter)
from genesis.store.db import async_engine, sync_engine
from genesis.store.eventstore import EventStore, StorageError, StoreClosedError
from genesis.store.db import writer_engine
from genesis.store.postgres import PostgresCommitter, PostgresProcessCommitter
from tests.test_eventstore import paused, running

INSERT = "INSERT INTO kv (k, v) VALUES (?, ?)"
UPDATE = "UPDATE kv SET v = ? WHERE k = ?"


def rows(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT k, v FROM kv"))
    finally:
        conn.close()


def kv_database(tmp_path: Path) -> Path:
    path = tmp_path / "c.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    conn.close()
    return path


@dataclass
class Kv:
    """A committer on a one-table database, and that database's SQL and rows."""

    committer: Committer
    insert: str
    update: str
    rows: Callable[[], dict[str, str]]


@pytest.fixture(params=["process", "thread", "postgresql-process", "postgresql-thread"])
async def kv(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kv]:
    if request.param.startswith("postgresql"):
        engine = sync_engine(request.getfixturevalue("pg_url"))
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")

        def pg_rows() -> dict[str, str]:
            with engine.connect() as conn:
                return dict(conn.exec_driver_sql("SELECT k, v FROM kv").all())  # type: ignore[arg-type]
        writing = writer_engine(async_engine(engine.url))
        c: Committer = PostgresProcessCommitter(writing) if request.param.endswith("process") else \
            PostgresCommitter(writing)
        made = Kv(c, INSERT.replace("?", "%s"), UPDATE.replace("?", "%s"), pg_rows)
    else:
        path = kv_database(tmp_path)
        c = ProcessCommitter(path) if request.param == "process" else ThreadCommitter(sync_engine(path))
        made = Kv(c, INSERT, UPDATE, lambda: rows(path))
    await c.start()
    try:
        yield made
    finally:
        await c.stop()
        if request.param.startswith("postgresql"):
            engine.dispose()


async def test_a_committed_transaction_is_there_for_any_new_connection(kv: Kv) -> None:
    await kv.committer.commit([(kv.insert, [("a", "1"), ("b", "2")]), (kv.update, [("3", "a")])])
    assert kv.rows() == {"a": "3", "b": "2"}


async def test_a_refused_transaction_writes_none_of_its_statements(kv: Kv) -> None:
    await kv.committer.commit([(kv.insert, [("a", "1")])])
    with pytest.raises(CommitRefused, match='UNIQUE constraint failed: kv.k|unique constraint "kv_pkey"') as refused:
        await kv.committer.commit([(kv.insert, [("b", "2")]), (kv.update, [("9", "a")]), (kv.insert, [("a", "dup")])])
    assert refused.value.error_class in ("IntegrityError", "UniqueViolation")
    assert kv.rows() == {"a": "1"}
    await kv.committer.commit([(kv.insert, [("b", "2")])])  # still serving
    assert kv.rows() == {"a": "1", "b": "2"}


class Side(str, enum.Enum):
    BUY = "buy"


async def test_str_enum_members_are_stored_as_their_values(kv: Kv) -> None:
    await kv.committer.commit([(kv.insert, [("side", Side.BUY)])])
    assert kv.rows() == {"side": "buy"}


async def test_a_database_locked_past_the_busy_timeout_is_refused_then_served(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "c.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    for c in (ProcessCommitter(path), ThreadCommitter(sync_engine(path))):
        await c.start()
        try:
            holder.execute("BEGIN EXCLUSIVE")
            with pytest.raises(CommitRefused, match="database is locked"):
                await c.commit([(INSERT, [(type(c).__name__, "x")])])
            holder.execute("ROLLBACK")
            await c.commit([(INSERT, [(type(c).__name__, "y")])])
        finally:
            await c.stop()
    holder.close()
    assert rows(path) == {"ProcessCommitter": "y", "ThreadCommitter": "y"}


async def process_committer(tmp_path: Path) -> ProcessCommitter:
    c = ProcessCommitter(kv_database(tmp_path))
    await c.start()
    return c


async def test_the_commit_process_ignores_the_daemons_signals_and_ends_when_stopped(tmp_path: Path) -> None:
    c = await process_committer(tmp_path)
    proc = c._proc
    assert proc is not None and c.pid is not None
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        os.kill(c.pid, sig)  # systemd and a terminal signal the whole group
    await asyncio.sleep(0.1)
    await c.commit([(INSERT, [("after-signals", "1")])])
    await c.stop()
    assert proc.returncode == 0
    assert rows(tmp_path / "c.db") == {"after-signals": "1"}


async def test_a_dead_commit_process_is_reported_not_guessed(tmp_path: Path) -> None:
    c = await process_committer(tmp_path)
    assert c.pid is not None
    os.kill(c.pid, signal.SIGKILL)
    with pytest.raises(CommitterLost, match="exited"):
        await c.commit([(INSERT, [("a", "1")])])
    with pytest.raises(CommitterLost):  # and stays lost: the caller must start over
        await c.commit([(INSERT, [("a", "1")])])
    await c.stop()


async def test_a_value_the_protocol_cannot_carry_is_refused_before_sending(tmp_path: Path) -> None:
    c = await process_committer(tmp_path)
    try:
        with pytest.raises(TypeError, match="not a plain DBAPI value"):
            await c.commit([(INSERT, [("a", object())])])
        await c.commit([(INSERT, [("b", "1")])])
    finally:
        await c.stop()
    assert rows(tmp_path / "c.db") == {"b": "1"}


async def test_a_store_whose_commit_process_died_stops_and_says_so(db_path: Path) -> None:
    engine = async_engine(db_path)
    store = EventStore(engine)
    await store.start()
    try:
        await store.append(running("a"))
        failed = asyncio.ensure_future(store.writer_failed())
        committer = store._writer._committer
        assert isinstance(committer, ProcessCommitter) and committer.pid is not None
        os.kill(committer.pid, signal.SIGKILL)
        with pytest.raises(StorageError, match="CommitterLost"):
            await store.append([paused("a")])
        assert isinstance(await asyncio.wait_for(failed, 5), CommitterLost)
        with pytest.raises(StoreClosedError):
            await store.append([paused("a")])
    finally:
        await store.stop()
    async with EventStore(engine) as again:  # a restart: what was committed is all there is
        agg = await again.load("a")
        assert (agg.version, agg.state.value) == (2, "running")
        await again.append([paused("a")], expected_version=2)
    await engine.dispose()


def test_commit_in_is_checked(db_path: Path) -> None:
    with pytest.raises(ValueError, match="commit_in must be 'process' or 'thread', not 'fork'"):
        EventStore(async_engine(db_path), commit_in="fork")


def test_a_precondition_needs_the_thread_committer(any_db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="a precondition needs commit_in='thread'"):
        EventStore(async_engine(any_db), precondition=lambda conn: None)


async def test_the_thread_committer_commits_what_was_submitted_while_it_was_busy_as_one(tmp_path: Path) -> None:
    import threading

    path = kv_database(tmp_path)
    busy, release = threading.Event(), threading.Event()

    def first_waits(conn: object) -> None:
        if not busy.is_set():
            busy.set()
            release.wait(10)

    c = ThreadCommitter(sync_engine(path), precondition=first_waits)
    await c.start()
    try:
        first = c.submit([(INSERT, [("a", "1")])], 0)
        await asyncio.to_thread(busy.wait, 10)
        later = [c.submit([(INSERT, [(f"k{i}", str(i))])], 0) for i in range(4)]
        release.set()
        assert await asyncio.gather(first, *later) == [0] * 5
        assert c.commits == 2  # the four submitted behind the first: one transaction
        assert rows(path) == {"a": "1", "k0": "0", "k1": "1", "k2": "2", "k3": "3"}
        busy.clear()
        release.clear()
        first = c.submit([(INSERT, [("b", "1")])], 0)
        await asyncio.to_thread(busy.wait, 10)
        doomed = [c.submit([(INSERT, [("c", "1")])], 0), c.submit([(INSERT, [("a", "dup")])], 0)]
        release.set()
        await first
        outcomes = await asyncio.gather(*doomed, return_exceptions=True)
        assert [type(o) for o in outcomes] == [CommitRefused, CommitRefused]  # all or none of them
        assert rows(path) == {"a": "1", "k0": "0", "k1": "1", "k2": "2", "k3": "3", "b": "1"}
        behind = c.submit([(INSERT, [("d", "1")])], 0)  # prepared before the refusal was seen
        with pytest.raises(CommitRefused, match="an earlier commit failed"):
            await behind
        assert await c.submit([(INSERT, [("d", "1")])], 1) == 0  # prepared on the refusal: served
        assert rows(path)["d"] == "1"
    finally:
        release.set()
        await c.stop()
