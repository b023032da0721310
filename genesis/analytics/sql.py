"""Read-only access to the SQLite store, for analysts and for the report/watch commands
(PostgreSQL: ``genesis.analytics.sql_postgres``, chosen here when given a URL).

The database is opened with ``mode=ro`` (SQLite refuses every write with SQLITE_READONLY)
and ``PRAGMA query_only=ON``; an authorizer also refuses ATTACH/DETACH (which could open
another file read-write, or create one), pragmas that set something, and calls to functions
that reach outside the database (``fts3_tokenizer``, ``load_extension``). The refusal comes
from SQLite itself, not from looking at the query text.

``open_query`` bounds a query in time (the time spent inside SQLite, checked by a progress
handler every few thousand virtual machine steps) and hands its rows over as they come, so
that no result is ever held in memory whole.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from genesis.analytics.sql_errors import QueryError, QueryTimeout, WriteRefused  # noqa: F401 (re-exported)

# pragmas that only read, even when given an argument (table_info(events) ...)
_READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check", "collation_list",
    "function_list", "pragma_list", "compile_options", "database_list",
})
# functions that reach outside the database: fts3_tokenizer reads and (with two arguments)
# installs raw C pointers; load_extension loads a shared library
_DENIED_FUNCTIONS = frozenset({"fts3_tokenizer", "load_extension"})
BUSY_TIMEOUT_MS = 5000
PROGRESS_STEPS = 10_000  # SQLite virtual machine steps between two looks at the clock
FETCH_ROWS = 512  # rows taken from SQLite at a time


def readonly_uri(db_path: str | Path) -> str:
    """``file:/abs/path?mode=ro`` with the path percent-encoded (``?`` and ``#`` are legal in names)."""
    return f"file:{quote(str(Path(db_path).resolve()))}?mode=ro"


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and (arg1 or "").lower() not in _READ_PRAGMAS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def connect_readonly(db_path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing database file (never creates one)."""
    path = Path(db_path)
    if not path.is_file():
        raise QueryError(f"{path}: no such database file")
    conn = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only=ON")
    conn.set_authorizer(_authorizer)
    return conn


def readonly_engine(db_path: str | Path | URL) -> Engine:
    """A SQLAlchemy engine over ``connect_readonly``: the store's tables and column types
    (``Money`` reads back as ``Decimal``) without any chance of writing. On PostgreSQL (a URL):
    every transaction read-only (``genesis.analytics.sql_postgres``)."""
    if isinstance(db_path, URL):
        from genesis.analytics import sql_postgres

        return sql_postgres.readonly_engine(db_path)
    path = Path(db_path)
    if not path.is_file():
        raise QueryError(f"{path}: no such database file")
    return create_engine("sqlite://", creator=lambda: connect_readonly(path), poolclass=NullPool)


class _TimeBudget:
    """Seconds a query may spend inside SQLite. Time between fetches (the caller writing rows
    out, a slow pipe) does not count; the progress handler interrupts SQLite once it is spent."""

    def __init__(self, seconds: float):
        self.seconds, self.spent, self.since, self.expired = seconds, 0.0, None, False

    def __enter__(self) -> None:
        self.since = time.monotonic()

    def __exit__(self, *_exc: object) -> None:
        self.spent += time.monotonic() - (self.since or time.monotonic())
        self.since = None

    def check(self) -> int:
        """The progress handler: non-zero asks SQLite to stop the statement."""
        if self.since is not None and self.spent + time.monotonic() - self.since > self.seconds:
            self.expired = True
        return int(self.expired)


class QueryResult:
    """One running query: ``columns`` now, the rows by iterating (each row once, as SQLite
    produces them). Errors while fetching are raised as ``QueryError`` like those of the start."""

    def __init__(self, cursor: sqlite3.Cursor, budget: _TimeBudget):
        self._cursor, self._budget = cursor, budget
        self.columns = [d[0] for d in cursor.description or ()]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while True:
            with _translated(self._budget), self._budget:
                batch = self._cursor.fetchmany(FETCH_ROWS)
            if not batch:
                return
            yield from batch


@contextmanager
def open_query(db_path: str | Path | URL, query: str, timeout_seconds: float) -> Iterator[QueryResult]:
    """Start one read-only statement with at most ``timeout_seconds`` of SQLite time; the
    connection closes when the block ends. Raises ``WriteRefused`` when SQLite refuses a write
    or a denied function, ``QueryTimeout`` when the time is spent, ``QueryError`` otherwise.
    On PostgreSQL (a URL): a read-only transaction with ``statement_timeout``
    (``genesis.analytics.sql_postgres``)."""
    if isinstance(db_path, URL):
        from genesis.analytics import sql_postgres

        with sql_postgres.open_query(db_path, query, timeout_seconds) as pg_result:
            yield pg_result  # type: ignore[misc]
        return
    conn = connect_readonly(db_path)
    budget = _TimeBudget(timeout_seconds)
    conn.set_progress_handler(budget.check, PROGRESS_STEPS)
    try:
        with _translated(budget), budget:
            cursor = conn.execute(query)
        yield QueryResult(cursor, budget)
    finally:
        conn.close()


@contextmanager
def _translated(budget: _TimeBudget) -> Iterator[None]:
    """sqlite3 errors as ``QueryError``s with a message that says what to do."""
    try:
        yield
    except sqlite3.ProgrammingError as exc:
        raise QueryError(f"{exc} (one statement per call)") from None
    except sqlite3.Error as exc:
        if budget.expired:
            raise QueryTimeout(f"query stopped after {budget.seconds:g} s inside SQLite, its time limit (--timeout-seconds): "
                               f"narrow it (WHERE, LIMIT) or allow more time") from None
        if "not authorized to use function" in str(exc):
            raise WriteRefused(f"refused: {exc} (it reaches outside the database); "
                               f"genesis sql only runs queries") from None
        if _is_refusal(exc):
            raise WriteRefused(f"refused: the database is open read-only (SQLite says: {exc}); "
                               f"genesis sql only runs queries") from None
        hint = " (run `genesis db upgrade` for the analysis views)" if "no such table" in str(exc) else ""
        raise QueryError(f"{exc}{hint}") from None


def _is_refusal(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_READONLY") or name.startswith("SQLITE_AUTH") or "not authorized" in str(exc)


def run_query(db_path: str | Path | URL, query: str,
              timeout_seconds: float = 30.0) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement read-only; returns the column names and every row (for results
    known to be small: ``open_query`` streams). Raises like ``open_query``."""
    with open_query(db_path, query, timeout_seconds) as result:
        return result.columns, list(result)
