"""Event store append throughput on PostgreSQL vs raw psycopg, side by side in one run.

The store: 100 concurrent appenders through ``EventStore`` (the PostgreSQL committer: a
worker thread, the events table lock, durable commits: ``synchronous_commit=on``). The
reference: the same event rows inserted with plain psycopg ``executemany``, 100 rows per
transaction, on the same server. Each run gets a fresh database (``$GENESIS_BENCH_PG``: the
maintenance database's URL, default the local server), dropped afterwards.
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

from bench.store_bench import _eid, bench_execution_row, median_round, store_throughput, toggle
from genesis.domain.codec import encode
from genesis.store import migrate

MAINTENANCE_URL = os.environ.get("GENESIS_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
INSERT = ("INSERT INTO events (event_id, sequence_number, event_type, aggregate_id, aggregate_version, event_data, "
          "occurred_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")


class Unavailable(Exception):
    """No PostgreSQL server to measure on."""


def fresh_database() -> Iterator[URL]:
    admin = create_engine(MAINTENANCE_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"genesis_bench_{uuid.uuid4().hex[:12]}"
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


def run(appenders: int = 100, per_appender: int = 200, rounds: int = 3) -> dict[str, object]:
    """``rounds`` rounds of the store, raw psycopg and raw psycopg with the projection
    updates, each on a fresh database; the figures of the median round by ratio to raw.
    Raises ``Unavailable`` without a server."""
    ours, raw, raw_projection = [], [], []
    for _ in range(rounds):
        for url in fresh_database():
            ours.append(asyncio.run(store_throughput(url, appenders, per_appender)))  # type: ignore[arg-type]
        for url in fresh_database():
            raw.append(raw_psycopg(url, appenders * per_appender))
        for url in fresh_database():
            raw_projection.append(raw_psycopg(url, appenders * per_appender, with_projection=True))

    return median_round(ours, raw, raw_projection, "raw_psycopg_batch100")


if __name__ == "__main__":
    sys.setswitchinterval(0.001)  # as the daemon sets it
    print(json.dumps(run(), indent=2))
