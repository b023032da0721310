"""The PostgreSQL commit process' own pipeline of prepared statements (``genesis.store.pg_pipeline``):
placeholders and parameters, refusals by name, prepared statements after a refusal, a lost
connection, and psycopg's pipeline for what it does not carry."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine

from genesis.store.committers import CommitRefused
from genesis.store.db import async_engine, writer_engine
from genesis.store.pg_pipeline import PreparedPipeline, dollar_sql, plan, text_value
from genesis.store.postgres import PostgresProcessCommitter

KV = "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)"
INSERT = "INSERT INTO kv (k, v) VALUES (%s, %s)"


def test_placeholders_are_numbered_and_a_doubled_percent_is_one() -> None:
    assert dollar_sql("UPDATE t SET a=%s::NUMERIC(38, 18), b=%s WHERE t.k = %s AND n LIKE 'x%%'") == \
        b"UPDATE t SET a=$1::NUMERIC(38, 18), b=$2 WHERE t.k = $3 AND n LIKE 'x%'"
    assert dollar_sql("SELECT 1 % 2") is None  # not paramstyle format: psycopg's path says why


def test_values_go_as_the_text_the_server_reads() -> None:
    assert [text_value(v) for v in ("é", 7, 0.1, True, None, float("inf"))] == \
        ["é".encode(), b"7", b"0.1", b"true", None, b"inf"]
    assert plan([("INSERT INTO t VALUES (%s)", [(b"raw",)])]) is None  # bytes: psycopg's pipeline
    assert plan([("INSERT INTO t VALUES (%s)", [("a\x00b",)])]) is None  # libpq would cut it at the NUL


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_a_refusal_names_the_error_and_leaves_no_statement_half_prepared(pg_url: URL) -> None:
    with psycopg.connect(_dsn(pg_url), autocommit=True) as conn:
        conn.execute(KV)
        pipe = PreparedPipeline(conn)
        insert = INSERT
        later = "UPDATE kv SET v = %s WHERE k = %s"  # first used after the failure: not prepared then
        pipe.run(plan([("BEGIN", [()]), (insert, [("a", "1")]), ("COMMIT", [()])]))  # type: ignore[arg-type]
        with pytest.raises(psycopg.errors.UniqueViolation, match='unique constraint "kv_pkey"'):
            pipe.run(plan([("BEGIN", [()]), (insert, [("a", "2")]), (later, [("3", "a")]),  # type: ignore[arg-type]
                           ("COMMIT", [()])]))
        conn.execute("ROLLBACK")
        results = pipe.run(plan([("BEGIN", [()]), (later, [("4", "a")]), ("SELECT v FROM kv", [()]),  # type: ignore[arg-type]
                                 ("COMMIT", [()])]))
        assert results[2].get_value(0, 0) == b"4"  # one result a command, prepares left out
        # BEGIN, the insert, COMMIT, the update (prepared again: the skipped one was never made), SELECT
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (5,)


@contextlib.asynccontextmanager
async def _commit_process(url: URL, table_sql: str) -> AsyncIterator[tuple[PostgresProcessCommitter, Engine]]:
    """A commit process on ``url`` after ``table_sql``, and an engine to look with."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(table_sql)
    committer = PostgresProcessCommitter(writer_engine(async_engine(url)))
    await committer.start()
    try:
        yield committer, admin
    finally:
        await committer.stop()
        admin.dispose()


async def test_the_commit_process_reconnects_after_losing_its_server_connection(pg_url: URL) -> None:
    async with _commit_process(pg_url, KV) as (committer, admin):
        await committer.commit([(INSERT, [("a", "1"), ("b", "2")])])
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'genesis commit process' AND datname = current_database()")
        with pytest.raises(CommitRefused) as refused:
            await committer.commit([(INSERT, [("c", "3")])])
        assert refused.value.error_class  # named: psycopg's class for a lost connection
        await committer.commit([(INSERT, [("c", "3"), ("d", "4")])])  # a new connection, statements prepared again
        with admin.connect() as conn:
            assert dict(conn.exec_driver_sql("SELECT k, v FROM kv").all()) == {"a": "1", "b": "2", "c": "3", "d": "4"}


async def test_values_the_pipeline_does_not_carry_go_through_psycopgs(pg_url: URL) -> None:
    async with _commit_process(pg_url, "CREATE TABLE kb (k TEXT PRIMARY KEY, v BYTEA NOT NULL)") as (committer, admin):
        await committer.commit([("INSERT INTO kb (k, v) VALUES (%s, %s)", [("a", b"\x00\xff"), ("b", b"")])])
        with admin.connect() as conn:
            assert dict(conn.exec_driver_sql("SELECT k, v FROM kb").all()) == {"a": b"\x00\xff", "b": b""}


async def test_a_nul_in_a_text_value_is_refused_not_cut(pg_url: URL) -> None:
    async with _commit_process(pg_url, KV) as (committer, admin):
        with pytest.raises(CommitRefused, match="NUL"):
            await committer.commit([(INSERT, [("a", "x\x00y")])])
        with admin.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM kv").scalar() == 0
