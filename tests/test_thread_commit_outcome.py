"""A commit whose answer is lost, in the thread committer on PostgreSQL
(``EventStore(commit_in="thread")``): settled as the commit process settles it
(``genesis.store.pg_thread_outcome`` over ``genesis.store.pg_commit_outcome``), so the engine
and the inbox get the same answers from both committers. The loss is injected on a real
server: the writer's connection sends ``COMMIT``, the transaction commits, and the connection
is cut before the answer is read (as ``genesis.store.pg_commit_faults``' ``answer_lost``)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

import psycopg
import pytest
import structlog
from sqlalchemy import event, select
from sqlalchemy.engine import URL, Engine

from genesis.clock import WallClock
from genesis.engine.durable_append import DurableAppend
from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.store.eventstore import CommitOutcomeUnknownError, EventStore
from tests.test_commit_outcome import intent, stored
from tests.test_eventstore import T0, paused, resumed, running


class CommitAnswerLost:
    """On the ``at``-th commit of ``engine``'s connections: ``COMMIT`` is sent and committed,
    then the connection is cut before its answer is read."""

    def __init__(self, engine: Engine, dsn: str, at: int) -> None:
        self.dsn, self.at, self.commits = dsn, at, 0
        event.listen(engine, "connect", self._patch)

    def _patch(self, dbapi_conn: Any, _record: Any) -> None:
        real = dbapi_conn.commit

        def commit() -> None:
            self.commits += 1
            if self.commits != self.at:
                return real()
            xid = dbapi_conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
            dbapi_conn.pgconn.send_query(b"COMMIT")
            _flush(dbapi_conn)
            self._wait_committed(xid)
            _cut(dbapi_conn)
            while True:  # what psycopg's commit raises when the connection is gone
                dbapi_conn.pgconn.consume_input()
                time.sleep(0.001)

        dbapi_conn.commit = commit

    def _wait_committed(self, xid: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as side:
            while side.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()[0] != "committed":
                time.sleep(0.01)


def _flush(conn: Any) -> None:
    while conn.pgconn.flush():
        time.sleep(0.001)


def _cut(conn: Any) -> None:
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


async def thread_store(url: URL, at: int) -> EventStore:
    """A started thread-committer store whose ``at``-th commit loses its answer."""
    store = EventStore(async_engine(url), commit_in="thread")
    CommitAnswerLost(store.writer_engine, url.set(drivername="postgresql").render_as_string(hide_password=False),
                     at)
    await store.start()
    return store


async def test_a_commit_whose_answer_was_lost_is_reported_committed(pg_db: URL) -> None:
    store = await thread_store(pg_db, at=2)
    try:
        await store.append(running("a"))  # commit 1
        got = await store.append([paused("a")])  # commit 2: committed, its answer lost
        assert [(s.sequence_number, s.aggregate_version) for s in got] == [(3, 3)]
        assert await stored(store, "a") == [(1, 1, "ExecutionSubmitted"), (2, 2, "ExecutionStarted"),
                                            (3, 3, "ExecutionPaused")]
        await store.append([resumed("a")], expected_version=3)  # the writer did not diverge from the store
        assert [v for _, v, _ in await stored(store, "a")] == [1, 2, 3, 4]
    finally:
        await store.stop()


async def test_the_runner_goes_on_after_an_intent_whose_answer_was_lost(pg_db: URL) -> None:
    store = await thread_store(pg_db, at=2)
    try:
        await store.append(running("a"))
        append = DurableAppend("a", store, WallClock(), _no_pace, structlog.get_logger("test"), retry_seconds=0.01)
        agg = await asyncio.wait_for(append([intent("a")]), 60)  # a hang guard, not a measure
        assert "ga-0-0" in agg.orders
        assert await stored(store, "a") == [(1, 1, "ExecutionSubmitted"), (2, 2, "ExecutionStarted"),
                                            (3, 3, "OrderIntended")]  # once
        await store.append([paused("a")], expected_version=3)
    finally:
        await store.stop()


async def test_marking_commands_whose_answer_was_lost_is_reported_done(pg_db: URL) -> None:
    store = await thread_store(pg_db, at=3)
    try:
        await store.append(running("a"))  # commit 1
        with store.writer_engine.begin() as conn:  # commit 2 (the writer engine's own connection)
            conn.execute(t.commands.insert().values(command_id=7, execution_id="a", kind="pause", payload="{}",
                                                    created_at=T0))
        await store.mark_commands([(7, "ignored", "test")])  # commit 3: updates only, answer lost: run again
        with store.writer_engine.connect() as conn:
            assert conn.execute(select(t.commands.c.outcome).where(t.commands.c.command_id == 7)).scalar() == "ignored"
    finally:
        await store.stop()


async def test_an_outcome_that_cannot_be_learned_in_time_is_named_unknown(pg_db: URL) -> None:
    store = await thread_store(pg_db, at=2)
    lost = store._writer._committer._lost  # the server cannot be asked: every settling connection fails
    lost.deadline_s = 0.2
    lost._connect = _unreachable
    try:
        await store.append(running("a"))
        with pytest.raises(CommitOutcomeUnknownError, match="may or may not have committed"):
            await store.append([intent("a")])
        assert [v for _, v, _ in await stored(store, "a")] == [1, 2, 3]  # it had committed
        await store.append([paused("a")], expected_version=3)  # the old backend ended, the next commits
    finally:
        await store.stop()


def _unreachable(left_s: float) -> None:
    raise psycopg.OperationalError("the server cannot be reached")


async def _no_pace() -> None:
    return None
