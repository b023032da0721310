"""Settling a commit whose answer was lost ends by its deadline (``genesis.store.pg_commit_outcome``):
a transaction run again that fails at once does not spin, a statement psycopg refuses before
sending it is a refusal by name, and a server that accepts TCP and never answers cannot hold
the answer. On a real PostgreSQL server: skipped without it, failed under CI=true
(``tests.postgres``). The waits are guarded (``asyncio.wait_for``, a thread's ``join``)
generously: the old code never answered, or answered after psycopg's 130 s connect wait."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, AsyncIterator

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from genesis.store import tables as t
from genesis.store.db import async_engine, writer_engine
from genesis.store.eventstore import CommitOutcomeUnknownError, EventStore, StorageError
from genesis.store.pg_commit_outcome import OUTCOME_UNKNOWN, connect_params
from genesis.store.pg_commit_process import Commits
from genesis.store.postgres import PostgresProcessCommitter
from tests.test_commit_outcome import faulty_store, intent, stored
from tests.test_eventstore import T0, running

GUARD_SECONDS = 60  # how long a test waits for an answer the fixed code gives in about its deadline


async def _commit_backends(store: EventStore) -> list[int]:
    """The pids of the commit process's server connections."""
    with store.writer_engine.connect() as conn:
        return sorted(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = "
                                        "'genesis commit process' AND datname = current_database()")).scalars())


async def test_updates_psycopg_refuses_to_send_are_refused_by_name_on_the_same_connection(
        pg_db: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    """A NUL in a text value of a transaction without events: psycopg refuses it before its
    COMMIT is sent, so it did not commit. (The old code took it for a lost answer and ran it
    again, reconnecting and ending its own backend, in a loop that never reached its deadline.)
    The store's own check of command details, which refuses a NUL first, is bypassed here."""
    monkeypatch.setattr("genesis.store.eventstore._check_commands", lambda done_commands: None)
    store = await faulty_store(pg_db, None, outcome_deadline_s=2.0)
    try:
        with store.writer_engine.begin() as conn:
            conn.execute(t.commands.insert().values(command_id=7, execution_id="a", kind="pause", payload="{}",
                                                    created_at=T0))
        before = await _commit_backends(store)
        with pytest.raises(StorageError, match=r"\(psycopg\.DataError\) .*NUL") as refused:
            await asyncio.wait_for(store.mark_commands([(7, "rejected", "bad\x00symbol")]), GUARD_SECONDS)
        assert not isinstance(refused.value, CommitOutcomeUnknownError)
        assert await _commit_backends(store) == before  # no reconnect: its connection was intact
        await store.mark_commands([(7, "rejected", "bad symbol")])  # and it commits the next one
        with store.writer_engine.connect() as conn:
            assert conn.execute(select(t.commands.c.detail).where(t.commands.c.command_id == 7)).scalar() == "bad symbol"
    finally:
        await store.stop()


def test_running_again_updates_that_keep_failing_ends_by_the_deadline_backing_off(pg_url: URL) -> None:
    """Every run of an updates-only transaction fails as a lost answer would, the connection
    intact (psycopg's "cannot exit pipeline mode while busy"): it is run again, backing off,
    until the 1 s deadline, then named unknown. (The old code checked the deadline only when
    the server could not be asked: it reconnected and ran it again for ever.)"""
    dsn = pg_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        conn.execute("INSERT INTO kv VALUES ('a', '1')")
    connects: list[float | None] = []

    def connect(left_s: float | None = None) -> psycopg.Connection:
        connects.append(left_s)
        return psycopg.connect(dsn, autocommit=True, **connect_params("", left_s))

    def lost(*_: Any) -> int:
        raise psycopg.OperationalError("cannot exit pipeline mode while busy")

    commits = Commits(connect, "INSERT INTO events (event_id, sequence_number) VALUES (%s, %s)", 1, 0, 1.0)
    commits._send = lost  # type: ignore[method-assign]
    answers: list[Any] = []
    run = threading.Thread(target=lambda: answers.append(commits.run([("UPDATE kv SET v = %s WHERE k = %s",
                                                                        [("2", "a")])])), daemon=True)
    run.start()
    run.join(GUARD_SECONDS)
    commits.conn.close()
    assert answers, "no answer"
    (error_class, message), shift = answers[0]
    assert error_class == OUTCOME_UNKNOWN and "could not be asked within 1 s" in message and shift == 0
    assert len(connects) <= 8  # the first, then one a run again: back-offs of 0.05, 0.1, 0.2, 0.4 s... in 1 s


class _Proxy:
    """A TCP proxy to ``target`` (host, port) that can go silent: ``silence()`` cuts the
    connections it forwards and from then on accepts connections and never answers (a server
    that is there but does not speak)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.silent = target, False
        self.writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if self.silent:
            return  # held open, never answered
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers.append(up_writer)
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer), return_exceptions=True)

    def silence(self) -> None:
        self.silent = True
        self._close()

    def _close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _proxy(url: URL) -> AsyncIterator[tuple[_Proxy, URL]]:
    """A ``_Proxy`` to the server of ``url``, and ``url`` through it."""
    proxy = _Proxy((url.host or "127.0.0.1", url.port or 5432))
    server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
    try:
        yield proxy, url.set(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
    finally:
        proxy._close()
        server.close()


async def test_an_outcome_is_named_unknown_by_its_deadline_when_the_server_accepts_and_never_answers(
        pg_db: URL) -> None:
    """The commit process's connection is cut, and the server it reconnects to accepts TCP and
    says nothing: its answer comes by the deadline (1 s here; psycopg connects within at least
    2 s). (The old code connected without a timeout: psycopg's default wait is 130 s.)"""
    async with _proxy(pg_db) as (proxy, proxied):
        store = EventStore(async_engine(pg_db))
        store._writer._committer = PostgresProcessCommitter(writer_engine(async_engine(proxied)), outcome_deadline_s=1.0)
        await store.start()
        try:
            await store.append(running("a"))
            proxy.silence()
            with pytest.raises(CommitOutcomeUnknownError, match="could not be asked within 1 s"):
                await asyncio.wait_for(store.append([intent("a")]), GUARD_SECONDS)
            assert [v for _, v, _ in await stored(store, "a")] == [1, 2]  # it was cut before its COMMIT
        finally:
            proxy._close()  # an old commit process waiting on its connection sees it closed
            await store.stop()
