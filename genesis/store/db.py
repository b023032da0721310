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
from genesis.store.pg_session import (DEFAULT_STALL_BOUND_SECONDS, LEASES_APPLICATION, STORE_APPLICATION,
                                      session_options)
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


def _postgres_args(durable: bool, stall_bound_s: float | None = None,
                   application: str = STORE_APPLICATION) -> dict[str, object]:
    """psycopg connect arguments: ``durable=False`` commits without waiting for the WAL flush;
    ``stall_bound_s``: a transaction left waiting that long for its client is ended
    (``genesis.store.pg_session``; None: no bound)."""
    options = [] if durable else ["-c synchronous_commit=off"]
    if stall_bound_s is not None:
        options.append(session_options(stall_bound_s))
    return {"application_name": application, **({"options": " ".join(options)} if options else {})}


def async_engine(db_path: str | Path | Db, durable: bool = True,
                 stall_bound_s: float = DEFAULT_STALL_BOUND_SECONDS) -> AsyncEngine:
    """Async engine (aiosqlite, or psycopg 3 on PostgreSQL) for the daemon: the writer and
    the readers.

    ``durable=False`` (backtests on a throwaway file) skips fsync: a crash may lose the file,
    which is fine for a simulation and makes it many times faster. ``stall_bound_s``
    (PostgreSQL): the daemon's stall bound (``genesis.store.pg_session``), for these
    connections and the thread committer's."""
    from sqlalchemy.ext.asyncio import create_async_engine

    if is_postgres(db_path):
        engine = create_async_engine(db_path, connect_args=_postgres_args(durable, stall_bound_s), pool_pre_ping=True)
        _DURABLE[id(engine)] = durable
        _STALL_BOUND[id(engine)] = stall_bound_s
        return engine
    create_private_file(db_path)
    engine = create_async_engine(sqlite_url(db_path, "aiosqlite"))
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas(durable))
    _DURABLE[id(engine)] = durable
    return engine


_DURABLE: dict[int, bool] = {}
_STALL_BOUND: dict[int, float] = {}


def is_durable(engine: AsyncEngine) -> bool:
    """Whether ``engine`` commits with fsync (``async_engine(durable=...)``)."""
    return _DURABLE.get(id(engine), True)


def writer_engine(engine: AsyncEngine) -> Engine:
    """A blocking engine on the same SQLite file with the same settings, for the event store's
    thread committer (``EventStore(commit_in="thread")``); its dialect compiles the writer's SQL."""
    if engine.dialect.name == "postgresql":  # positional rows of plain values: the commit process' protocol
        sync = create_engine(engine.url, pool_size=1, max_overflow=0, paramstyle="format",
                             connect_args=_postgres_args(is_durable(engine), _STALL_BOUND.get(id(engine))))
        setattr(sync.dialect, TEXT_BINDS, True)  # money and times as text (the SQL casts them)
        return sync
    url = engine.url.set(drivername="sqlite+pysqlite")
    sync = create_engine(url, pool_size=1, max_overflow=0)
    event.listen(sync, "connect", _sqlite_pragmas(is_durable(engine)))
    return sync


def sync_engine(db_path: str | Path | Db, stall_bound_s: float | None = None) -> Engine:
    """Blocking engine for short-lived CLI commands (never used on the daemon's event loop),
    and the lease keeper's (``stall_bound_s``: its stall bound, ``genesis.store.pg_session``;
    None, the CLI's: no bound, so a migration or a ``genesis sql`` session is never ended)."""
    if is_postgres(db_path):
        if stall_bound_s is None:
            return create_engine(db_path, pool_pre_ping=True)
        return create_engine(db_path, pool_pre_ping=True,
                             connect_args=_postgres_args(True, stall_bound_s, LEASES_APPLICATION))
    create_private_file(db_path)
    engine = create_engine(sqlite_url(db_path))
    event.listen(engine, "connect", _sqlite_pragmas(durable=True))
    return engine
