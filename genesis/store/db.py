"""Engine construction: SQLite with the settings genesis relies on, or PostgreSQL (psycopg 3).

Every function takes a ``Db`` (``genesis.store.location``): a file path or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from genesis.store.commit_process import connection_pragmas
from genesis.store.location import Db, is_postgres
from genesis.store.migrate import create_private_file, sqlite_url
from genesis.store.types import TEXT_BINDS

if TYPE_CHECKING:  # the CLI's short-lived commands never load the asyncio extension
    from sqlalchemy.ext.asyncio import AsyncEngine

BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(durable: bool):  # type: ignore[no-untyped-def]
    """A connect listener applying ``connection_pragmas`` (fsync on commit when ``durable``)."""
    def apply(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        for pragma in connection_pragmas("FULL" if durable else "OFF", BUSY_TIMEOUT_MS):
            cur.execute(pragma)
        cur.close()
    return apply


def _postgres_args(durable: bool) -> dict[str, object]:
    """psycopg connect arguments: ``durable=False`` commits without waiting for the WAL flush."""
    return {} if durable else {"options": "-c synchronous_commit=off"}


def async_engine(db_path: str | Path | Db, durable: bool = True) -> AsyncEngine:
    """Async engine (aiosqlite, or psycopg 3 on PostgreSQL) for the daemon: the writer and
    the readers.

    ``durable=False`` (backtests on a throwaway file) skips fsync: a crash may lose the file,
    which is fine for a simulation and makes it many times faster."""
    from sqlalchemy.ext.asyncio import create_async_engine

    if is_postgres(db_path):
        engine = create_async_engine(db_path, connect_args=_postgres_args(durable), pool_pre_ping=True)
        _DURABLE[id(engine)] = durable
        return engine
    create_private_file(db_path)
    engine = create_async_engine(sqlite_url(db_path, "aiosqlite"))
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas(durable))
    _DURABLE[id(engine)] = durable
    return engine


_DURABLE: dict[int, bool] = {}


def is_durable(engine: AsyncEngine) -> bool:
    """Whether ``engine`` commits with fsync (``async_engine(durable=...)``)."""
    return _DURABLE.get(id(engine), True)


def writer_engine(engine: AsyncEngine) -> Engine:
    """A blocking engine on the same SQLite file with the same settings, for the event store's
    thread committer (``EventStore(commit_in="thread")``); its dialect compiles the writer's SQL."""
    if engine.dialect.name == "postgresql":  # positional rows of plain values: the commit process' protocol
        sync = create_engine(engine.url, pool_size=1, max_overflow=0, paramstyle="format",
                             connect_args=_postgres_args(is_durable(engine)))
        setattr(sync.dialect, TEXT_BINDS, True)  # money and times as text (the SQL casts them)
        return sync
    url = engine.url.set(drivername="sqlite+pysqlite")
    sync = create_engine(url, pool_size=1, max_overflow=0)
    event.listen(sync, "connect", _sqlite_pragmas(is_durable(engine)))
    return sync


def sync_engine(db_path: str | Path | Db) -> Engine:
    """Blocking engine for short-lived CLI commands (never used on the daemon's event loop)."""
    if is_postgres(db_path):
        return create_engine(db_path, pool_pre_ping=True)
    create_private_file(db_path)
    engine = create_engine(sqlite_url(db_path))
    event.listen(engine, "connect", _sqlite_pragmas(durable=True))
    return engine
