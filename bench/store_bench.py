"""Event store append throughput vs raw sqlite3, side by side in one run."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from genesis.domain import events as ev
from genesis.domain.events import PlannedSlice, encode
from genesis.store import migrate
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore

T0 = datetime(2025, 6, 10, tzinfo=timezone.utc)


def _eid(i: int) -> str:
    return f"{i:012x}"


def started(eid: str) -> list[ev.Event]:
    return [ev.ExecutionSubmitted(eid, T0, eid, "BTC/USDT", "buy", Decimal("1"), "twap", 900),
            ev.ExecutionStarted(eid, T0, Decimal("100000"), T0 + timedelta(minutes=15),
                                (PlannedSlice(0, T0, Decimal("1")),))]


def toggle(eid: str, n: int) -> ev.Event:
    at = T0 + timedelta(seconds=n + 1)
    return ev.ExecutionPaused(eid, at, "bench") if n % 2 == 0 else ev.ExecutionResumed(eid, at, "bench")


async def store_throughput(path: Path, appenders: int, per_appender: int) -> dict[str, float]:
    migrate.upgrade(path)
    engine = async_engine(path)  # WAL, synchronous=FULL: every commit durable
    store = EventStore(engine)
    await store.start()
    await asyncio.gather(*(store.append(started(_eid(i))) for i in range(appenders)))
    commits0 = store.commits

    async def appender(i: int) -> None:
        eid = _eid(i)
        for n in range(per_appender):
            await store.append([toggle(eid, n)])

    t0 = time.perf_counter()
    await asyncio.gather(*(appender(i) for i in range(appenders)))
    seconds = time.perf_counter() - t0
    commits = store.commits - commits0
    await store.stop()
    await engine.dispose()
    events = appenders * per_appender
    return {"events": events, "seconds": seconds, "events_per_second": events / seconds,
            "commits": commits, "events_per_commit": events / max(commits, 1)}


def raw_sqlite(path: Path, events: int, batch: int = 100) -> dict[str, float]:
    """The same event rows inserted with plain sqlite3, 100 per transaction, WAL, synchronous=FULL."""
    migrate.upgrade(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    rows = []
    for n in range(events):
        e = toggle(_eid(n % 100), n // 100)
        rows.append((str(uuid.uuid4()), n + 1, e.event_type, e.execution_id, n // 100 + 1, encode(e),
                     e.occurred_at.replace(tzinfo=None).isoformat(sep=" "), now))
    t0 = time.perf_counter()
    for i in range(0, events, batch):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (event_id, sequence_number, event_type, aggregate_id, aggregate_version, "
            "event_data, occurred_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows[i:i + batch])
        conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return {"events": events, "seconds": seconds, "events_per_second": events / seconds}


def run(appenders: int = 100, per_appender: int = 200) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="genesis-bench-") as tmp:
        ours = asyncio.run(store_throughput(Path(tmp) / "store.db", appenders, per_appender))
        raw = raw_sqlite(Path(tmp) / "raw.db", appenders * per_appender)
    return {"genesis_store": ours, "raw_sqlite3_batch100": raw,
            "ratio": ours["events_per_second"] / raw["events_per_second"]}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
