"""Event store append throughput vs raw sqlite3, side by side in one run."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from bench.tuning_off import bench_tuning
from genesis.domain import events as ev
from genesis.domain.codec import encode
from genesis.domain.events import PlannedSlice
from genesis.store import migrate
from genesis.store import tables as t
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


async def store_throughput(path: Path | URL, appenders: int, per_appender: int,
                           **store_options: Any) -> dict[str, float]:
    """``appenders`` tasks each appending ``per_appender`` single events; ``store_options``:
    more ``EventStore`` arguments (the committer, a commit precondition)."""
    migrate.upgrade(path)
    engine = async_engine(path)  # SQLite: WAL, synchronous=FULL; PostgreSQL: synchronous_commit=on
    store = EventStore(engine, tuning=bench_tuning(), **store_options)
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


def bench_execution_row(i: int, now: object) -> dict[str, object]:
    """The executions row of the ``i``-th bench execution, running at version 2 (the columns
    not named here take their defaults)."""
    return {
        "execution_id": _eid(i), "request_id": _eid(i), "algo": "twap", "execution_style": "twap", "symbol": "BTC/USDT",
        "side": "buy", "state": "running", "target_qty": "1", "filled_qty": "0", "remaining_qty": "1",
        "notional_usdt": "0", "fees_usdt": "0", "duration_seconds": 900, "slices_executed": 0,
        "slices_denied": 0, "submitted_at": now, "paused_seconds": 0.0, "version": 2, "maker_qty": "0",
        "urgency": "low"}


def raw_sqlite(path: Path, events: int, batch: int = 100, with_projection: bool = False) -> dict[str, float]:
    """The same event rows inserted with plain sqlite3, 100 per transaction, WAL, synchronous=FULL.

    ``with_projection``: also the executions row UPDATE the store makes for each of these
    events (state, paused_at, version), in the same transaction: the same SQL work as the
    store, without its Python."""
    migrate.upgrade(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    if with_projection:
        conn.execute("BEGIN")
        for i in range(100):
            execution_row = bench_execution_row(i, now)
            conn.execute(f"INSERT INTO executions ({', '.join(execution_row)}) "
                         f"VALUES ({', '.join('?' * len(execution_row))})", tuple(execution_row.values()))
        conn.execute("COMMIT")
    rows, updates = [], []
    for n in range(events):
        e = toggle(_eid(n % 100), n // 100)
        at = e.occurred_at.replace(tzinfo=None).isoformat(sep=" ")
        rows.append((str(uuid.uuid4()), n + 1, e.event_type, e.execution_id, n // 100 + 3, encode(e), at, now))
        paused = e.event_type == "ExecutionPaused"
        updates.append(("paused" if paused else "running", at if paused else None, n // 100 + 3, e.execution_id))
    t0 = time.perf_counter()
    for i in range(0, events, batch):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (event_id, sequence_number, event_type, aggregate_id, aggregate_version, "
            "event_data, occurred_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows[i:i + batch])
        if with_projection:
            conn.executemany("UPDATE executions SET state = ?, paused_at = ?, version = ? WHERE execution_id = ?",
                             updates[i:i + batch])
        conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return {"events": events, "seconds": seconds, "events_per_second": events / seconds}


def run(appenders: int = 100, per_appender: int = 200, rounds: int = 5) -> dict[str, object]:
    """``rounds`` rounds, each the store then the two raw references on fresh files, back to
    back: the machine's noise (it drifts by a third over minutes) hits a round's three runs
    alike. The figures reported are those of the median round by ratio to raw."""
    ours, raw, raw_projection = [], [], []
    for r in range(rounds):
        with tempfile.TemporaryDirectory(prefix="genesis-bench-") as tmp:
            ours.append(asyncio.run(store_throughput(Path(tmp) / "store.db", appenders, per_appender)))
            raw.append(raw_sqlite(Path(tmp) / "raw.db", appenders * per_appender))
            raw_projection.append(raw_sqlite(Path(tmp) / "rawp.db", appenders * per_appender, with_projection=True))

    return median_round(ours, raw, raw_projection, "raw_sqlite3_batch100")


def median_round(ours: list[dict[str, float]], raw: list[dict[str, float]], raw_projection: list[dict[str, float]],
                 raw_name: str) -> dict[str, object]:
    """The figures of the median round by ratio of the store to ``raw``, and every round's rates."""
    def rate(x: dict[str, float]) -> float:
        return x["events_per_second"]

    ratios = [rate(o) / rate(w) for o, w in zip(ours, raw)]
    median = sorted(range(len(ratios)), key=lambda i: ratios[i])[len(ratios) // 2]
    return {"genesis_store": ours[median], raw_name: raw[median],
            f"{raw_name}_with_projection": raw_projection[median],
            "ratio": ratios[median],
            "ratio_with_projection": rate(ours[median]) / rate(raw_projection[median]),
            "runs_events_per_second": {"genesis_store": [rate(x) for x in ours], "raw": [rate(x) for x in raw],
                                       "raw_with_projection": [rate(x) for x in raw_projection]},
            "round_ratios": ratios}


if __name__ == "__main__":
    switch = bench_tuning().switch_interval_seconds
    if switch is not None:
        sys.setswitchinterval(switch)  # as the daemon sets it (genesis.tuning)
    print(json.dumps(run(), indent=2))
