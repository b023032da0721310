"""Read-only queries on a PostgreSQL store (``genesis sql``, ``report``, ``watch``).

Every connection starts with ``default_transaction_read_only=on`` and each query runs in a
``READ ONLY`` transaction: PostgreSQL refuses INSERT/UPDATE/DELETE, DDL, ``nextval``, NOTIFY
and the like whatever the query text. ``statement_timeout`` bounds a query in time (server
time, from the statement's start: a slow reader of a streamed result counts too). Rows are
streamed in chunks (``Cursor.stream``), never held whole. The extended query protocol takes
one statement per call.

A read-only transaction does not stop what a role may do outside the database's tables
(a superuser's ``COPY ... TO PROGRAM``, ``pg_terminate_backend``): in production, give
``genesis sql`` a role with SELECT grants only (docs/postgres.md).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"
FETCH_ROWS = 512
_END = object()


def readonly_engine(url: URL) -> Engine:
    """A SQLAlchemy engine whose every transaction is read-only."""
    return create_engine(url, poolclass=NullPool, connect_args={"options": READ_ONLY_OPTIONS})


class PostgresResult:
    """One running query: ``columns`` now, the rows by iterating (each once, as they come)."""

    def __init__(self, cursor: Any, query: str, timeout_seconds: float):
        self._timeout = timeout_seconds
        self._rows = cursor.stream(query, size=FETCH_ROWS)
        with translated(timeout_seconds):
            self._first = next(self._rows, _END)  # the statement runs: its errors and columns are known
        self.columns = [d.name for d in cursor.description or ()]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        row = self._first
        while row is not _END:
            yield row
            with translated(self._timeout):
                row = next(self._rows, _END)


@contextmanager
def open_query(url: URL, query: str, timeout_seconds: float) -> Iterator[PostgresResult]:
    """Start one statement in a read-only transaction with ``statement_timeout``; the
    connection closes when the block ends. Raises like ``genesis.analytics.sql.open_query``."""
    import psycopg

    timeout_ms = max(1, int(timeout_seconds * 1000))
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with translated(timeout_seconds):
        conn = psycopg.connect(dsn, options=f"{READ_ONLY_OPTIONS} -c statement_timeout={timeout_ms}")
    try:
        conn.read_only = True  # BEGIN READ ONLY, whatever the server's default
        yield PostgresResult(conn.cursor(), query, timeout_seconds)
    finally:
        conn.close()


@contextmanager
def translated(timeout_seconds: float) -> Iterator[None]:
    """psycopg errors as ``QueryError``s with a message that says what to do."""
    import psycopg
    from psycopg import errors

    from genesis.analytics.sql_errors import QueryError, QueryTimeout, WriteRefused

    try:
        yield
    except errors.QueryCanceled:
        raise QueryTimeout(f"query stopped after {timeout_seconds:g} s, its time limit (--timeout-seconds, "
                           f"PostgreSQL's statement_timeout): narrow it (WHERE, LIMIT) or allow more time") from None
    except (errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege, errors.ActiveSqlTransaction) as exc:
        raise WriteRefused(f"refused: the transaction is read-only (PostgreSQL says: {_first_line(exc)}); "
                           f"genesis sql only runs queries") from None
    except psycopg.Error as exc:
        message = _first_line(exc)
        if "multiple commands" in message:
            message += " (one statement per call)"
        if isinstance(exc, errors.UndefinedTable):
            message += " (run `genesis db upgrade` for the analysis views)"
        raise QueryError(message) from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
