"""Event store append throughput on PostgreSQL vs raw psycopg, side by side in one run.

The store: 100 concurrent appenders through ``EventStore`` (the PostgreSQL commit process,
the events table lock, durable commits: ``synchronous_commit=on``). The references, on the
same server in the same round: the same event rows inserted with plain psycopg
``executemany``, 100 rows per transaction (and with the projection updates too); and the
``eventsourcing`` library's PostgreSQL application recorder (``eventsourcing_recorder``,
the ``bench`` extra; skipped when it is not installed) appending the same number of events.
Also recovery of 1,000 live executions from PostgreSQL (``engine_bench.live_recovery``, the
SQLite figure's code on a PostgreSQL URL). Each run gets a fresh database
(``$GENESIS_BENCH_PG``: the maintenance database's URL, default the local server;
``$GENESIS_BENCH_DB_PREFIX``: the scratch databases' name prefix), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from bench.engine_bench import live_recovery
from bench.store_bench import _eid, bench_execution_row, median_round, store_throughput, toggle
from genesis.domain.codec import encode
from genesis.log import configure_logging
from genesis.store import leases, migrate
from genesis.store.db import sync_engine

MAINTENANCE_URL = os.environ.get("GENESIS_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DATABASE_PREFIX = os.environ.get("GENESIS_BENCH_DB_PREFIX", "genesis_bench_")  # scratch databases: prefix + random
INSERT = ("INSERT INTO events (event_id, sequence_number, event_type, aggregate_id, aggregate_version, event_data, "
          "occurred_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")


class Unavailable(Exception):
    """No PostgreSQL server to measure on."""


def fresh_database() -> Iterator[URL]:
    admin = create_engine(MAINTENANCE_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5},
                          pool_pre_ping=True)  # its connection outlives a server restart (chaos-ha)
    name = f"{DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server: this figure is skipped
        admin.dispose()
        raise Unavailable(f"{type(exc).__name__}: {str(getattr(exc, 'orig', exc)).strip()}") from None
    try:
        yield make_url(MAINTENANCE_URL).set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def raw_psycopg(url: URL, events: int, batch: int = 100, with_projection: bool = False) -> dict[str, float]:
    """The same event rows with plain psycopg ``executemany``, ``batch`` per transaction.
    ``with_projection``: also the executions row UPDATE the store makes for each event, in the
    same transaction (the store's SQL work without its Python)."""
    import psycopg

    migrate.upgrade(url)
    now = datetime.now(timezone.utc)
    rows, updates = [], []
    for n in range(events):
        e = toggle(_eid(n % 100), n // 100)
        rows.append((str(uuid.uuid4()), n + 1, e.event_type, e.execution_id, n // 100 + 3, encode(e),
                     e.occurred_at, now))
        paused = e.event_type == "ExecutionPaused"
        updates.append(("paused" if paused else "running", e.occurred_at if paused else None, n // 100 + 3,
                        e.execution_id))
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        if with_projection:
            with conn.transaction():
                for i in range(100):
                    row = bench_execution_row(i, now)
                    conn.execute(f"INSERT INTO executions ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                                 list(row.values()))
        t0 = time.perf_counter()
        for i in range(0, events, batch):
            with conn.transaction():
                conn.cursor().executemany(INSERT, rows[i:i + batch])
                if with_projection:
                    conn.cursor().executemany("UPDATE executions SET state = %s, paused_at = %s, version = %s "
                                              "WHERE execution_id = %s", updates[i:i + batch])
        seconds = time.perf_counter() - t0
    return {"events": events, "seconds": seconds, "events_per_second": events / seconds}


def fenced(url: URL, commit_in: str = "process") -> dict[str, object]:
    """``EventStore`` options as the daemon runs on PostgreSQL (``LeaseKeeper.store_options``):
    the commit process with the lease fence as SQL in every commit, on a lease claimed here.
    ``commit_in="thread"``: the thread committer with the fence as a Python precondition (the
    daemon's configuration before the fence was SQL), for comparison."""
    engine = sync_engine(url)
    owner = leases.new_owner()
    with engine.begin() as conn:
        epoch = leases.claim(conn, "bench", owner, 3600.0)
    engine.dispose()
    held = (leases.HeldLease("bench", owner, epoch),)  # type: ignore[arg-type]
    if commit_in == "thread":
        return {"commit_in": "thread", "precondition": leases.fence(lambda: held)}
    return {"commit_in": commit_in, "fence": leases.SqlFence(lambda: held)}


def eventsourcing_recorder(url: URL, appenders: int, per_appender: int, pool_size: int = 10) -> dict[str, float]:
    """The ``eventsourcing`` library's ``PostgresApplicationRecorder`` (global notification
    ids under ``LOCK TABLE ... IN EXCLUSIVE MODE``, as ours) appending the same events:
    ``appenders`` threads (the recorder is blocking), each ``per_appender`` calls of
    ``insert_events`` with one event (its aggregate's next version), through a pool of
    ``pool_size`` connections (the table lock serialises the inserts anyway; 100 connections
    would take the shared server's whole ``max_connections``). Durable commits."""
    from concurrent.futures import ThreadPoolExecutor

    from eventsourcing.persistence import StoredEvent as LibraryEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    datastore = PostgresDatastore(url.database or "", url.host or "127.0.0.1", url.port or 5432,
                                  url.username or "postgres", url.password or "", pool_size=pool_size,
                                  originator_id_type="text")
    recorder = PostgresApplicationRecorder(datastore)
    recorder.create_table()
    events = [[LibraryEvent(_eid(i), n + 1, (e := toggle(_eid(i), n)).event_type, encode(e).encode())
               for n in range(per_appender)] for i in range(appenders)]

    def appender(i: int) -> None:
        for stored in events[i]:
            recorder.insert_events([stored])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(appenders) as pool:
        list(pool.map(appender, range(appenders)))
    seconds = time.perf_counter() - t0
    datastore.close()
    total = appenders * per_appender
    return {"events": total, "seconds": seconds, "events_per_second": total / seconds,
            "threads": appenders, "pool_size": pool_size}


def has_eventsourcing() -> bool:
    try:
        import eventsourcing.postgres  # noqa: F401
    except ImportError:
        return False
    return True


def run(appenders: int = 100, per_appender: int = 200, rounds: int = 5, recovery_executions: int = 1000
        ) -> dict[str, object]:
    """``rounds`` rounds of the store, raw psycopg, raw psycopg with the projection updates
    and the store as the daemon runs it (``fenced``), each on a fresh database, and in the
    first round the ``eventsourcing`` recorder (when installed); the figures of the median
    round by ratio to raw. Then recovery of ``recovery_executions`` live
    executions. Raises ``Unavailable`` without a server."""
    ours, daemon, raw, raw_projection, library = [], [], [], [], []
    for _ in range(rounds):
        for url in fresh_database():
            ours.append(asyncio.run(store_throughput(url, appenders, per_appender)))  # type: ignore[arg-type]
        for url in fresh_database():
            migrate.upgrade(url)
            daemon.append(asyncio.run(store_throughput(url, appenders, per_appender, **fenced(url))))  # type: ignore[arg-type]
        for url in fresh_database():
            raw.append(raw_psycopg(url, appenders * per_appender))
        for url in fresh_database():
            raw_projection.append(raw_psycopg(url, appenders * per_appender, with_projection=True))
        if has_eventsourcing() and not library:  # one round: it takes ~10x the store's time
            for url in fresh_database():
                library.append(eventsourcing_recorder(url, appenders, per_appender))
    out = median_round(ours, raw, raw_projection, "raw_psycopg_batch100")
    ratios = out["round_ratios"]
    median = sorted(range(len(ratios)), key=lambda i: ratios[i])[len(ratios) // 2]  # type: ignore[arg-type]
    out["genesis_store_fenced"] = daemon[median]  # the daemon's configuration, same round
    out["runs_events_per_second"]["genesis_store_fenced"] = [x["events_per_second"] for x in daemon]  # type: ignore[index]
    if library:  # against the store of the same (first) round
        out["eventsourcing_recorder"] = {**library[0], "store_events_per_second": ours[0]["events_per_second"],
                                         "store_ratio": ours[0]["events_per_second"] / library[0]["events_per_second"]}
    else:
        out["eventsourcing_recorder"] = None  # not installed: `pip install -e '.[bench]'`
    for url in fresh_database():
        out["recovery"] = live_recovery(url, recovery_executions)
    return out


if __name__ == "__main__":
    # as `make bench` (bench/run.py) runs it: without this, structlog's default console
    # renderer printed every engine log line to stdout, ~0.1-0.2 s of the recovery window
    configure_logging("error")
    sys.setswitchinterval(0.001)  # as the daemon sets it
    print(json.dumps(run(), indent=2))
