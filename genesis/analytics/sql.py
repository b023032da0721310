"""Read-only access to the SQLite store, for analysts and for the report/watch commands.

The database is opened with ``mode=ro`` (SQLite refuses every write with SQLITE_READONLY)
and ``PRAGMA query_only=ON``; an authorizer also refuses ATTACH/DETACH (which could open
another file read-write, or create one) and pragmas that set something. The refusal comes
from SQLite itself, not from looking at the query text.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

# pragmas that only read, even when given an argument (table_info(events) ...)
_READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check", "collation_list",
    "function_list", "pragma_list", "compile_options", "database_list",
})
BUSY_TIMEOUT_MS = 5000


class QueryError(Exception):
    """The query failed (syntax, unknown table...); the message says why."""


class WriteRefused(QueryError):
    """The query tried to change something: ``genesis sql`` is read-only."""


def readonly_uri(db_path: str | Path) -> str:
    """``file:/abs/path?mode=ro`` with the path percent-encoded (``?`` and ``#`` are legal in names)."""
    return f"file:{quote(str(Path(db_path).resolve()))}?mode=ro"


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and (arg1 or "").lower() not in _READ_PRAGMAS:
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


def readonly_engine(db_path: str | Path) -> Engine:
    """A SQLAlchemy engine over ``connect_readonly``: the store's tables and column types
    (``Money`` reads back as ``Decimal``) without any chance of writing."""
    path = Path(db_path)
    if not path.is_file():
        raise QueryError(f"{path}: no such database file")
    return create_engine("sqlite://", creator=lambda: connect_readonly(path), poolclass=NullPool)


def _is_refusal(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_READONLY") or name.startswith("SQLITE_AUTH") or "not authorized" in str(exc)


def run_query(db_path: str | Path, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement read-only; returns the column names and every row.

    Raises ``WriteRefused`` when SQLite refuses a write, ``QueryError`` for anything else."""
    conn = connect_readonly(db_path)
    try:
        try:
            cur = conn.execute(query)
            rows = cur.fetchall()
        except sqlite3.ProgrammingError as exc:
            raise QueryError(f"{exc} (one statement per call)") from None
        except sqlite3.Error as exc:
            if _is_refusal(exc):
                raise WriteRefused(f"refused: the database is open read-only (SQLite says: {exc}); "
                                   f"genesis sql only runs queries") from None
            hint = " (run `genesis db upgrade` for the analysis views)" if "no such table" in str(exc) else ""
            raise QueryError(f"{exc}{hint}") from None
        columns = [d[0] for d in cur.description or ()]
        return columns, rows
    finally:
        conn.close()
