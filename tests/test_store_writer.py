"""The writer's fast paths and its pipeline, on real migrated SQLite files.

- The bulk path stores exactly what SQLAlchemy's own parameter processing stores.
- A commit that fails takes down the chunks prepared on top of it, and nothing else: the
  cached aggregates, the event log and the projections agree afterwards, and the log has
  no gap.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, event as sa_event, insert, text, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.store import tables as t
from genesis.store.batch import uuid4_strings
from genesis.store.bulk import bulk, execute_bulk
from genesis.store.db import async_engine, sync_engine
from genesis.store.eventstore import ConcurrencyError, EventStore, InvalidEventError, StorageError
from genesis.store.projector import rebuild
from genesis.tuning import Tuning
from tests.test_eventstore import T0, paused, resumed, running, submitted
from tests.test_projections import snapshot
from tests.migrated import migrated_sqlite

D = Decimal

_EXEC_INSERT = bulk(insert(t.executions))
_EXEC_UPDATE = bulk(update(t.executions).where(t.executions.c.execution_id == bindparam("_id")))


def _execution(eid: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "execution_id": eid, "request_id": f"r-{eid}", "algo": "twap", "execution_style": "twap",
        "symbol": "BTC/USDT", "side": "buy", "state": "running", "target_qty": D("1.5"),
        "filled_qty": D("0.00000001"), "remaining_qty": D("1.49999999"), "avg_price": None,
        "arrival_price": D("65000.12"), "limit_price": None, "notional_usdt": D("0"), "fees_usdt": D("0E-8"),
        "implementation_shortfall_bps": D("-1.2345"), "duration_seconds": 600, "slice_count": 10,
        "slices_executed": 0, "slices_denied": 0, "submitted_at": T0,
        "started_at": T0 + timedelta(microseconds=7), "end_at": datetime(2025, 6, 10, 13, 10, tzinfo=timezone.utc),
        "ended_at": None, "paused_at": None, "paused_seconds": 12.5, "completion_reason": None,
        "version": 2, "early_completion_at": None, "maker_qty": D("0"), "urgency": "low",
        "market_vwap": None, "slippage_vs_vwap_bps": None,
    }
    return {**row, **overrides}


def test_bulk_path_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    other_tz = timezone(timedelta(hours=-5))
    rows = [_execution("a"), _execution("b", avg_price=D("65001.5"), ended_at=datetime(2025, 6, 10, 9, tzinfo=other_tz))]
    stored = {}
    for path in ("sqlalchemy", "bulk"):
        migrated_sqlite(tmp_path / f"{path}.db")
        engine = sync_engine(tmp_path / f"{path}.db")
        with engine.begin() as conn:
            if path == "bulk":
                execute_bulk(conn, _EXEC_INSERT, rows)
                execute_bulk(conn, _EXEC_UPDATE, [{"_id": "a", "state": "paused", "paused_at": T0, "version": 3}])
            else:
                conn.execute(_EXEC_INSERT, rows)
                conn.execute(_EXEC_UPDATE, [{"_id": "a", "state": "paused", "paused_at": T0, "version": 3}])
            stored[path] = [tuple(r) for r in conn.execute(text("SELECT * FROM executions ORDER BY execution_id"))]
        engine.dispose()
    assert stored["bulk"] == stored["sqlalchemy"]
    assert stored["bulk"][1][stored_index("ended_at")] == "2025-06-10 14:00:00.000000"  # UTC, as text
    assert stored["bulk"][0][stored_index("fees_usdt")] == "0.00000000"  # exact text, not a float


def stored_index(column: str) -> int:
    return [c.name for c in t.executions.columns].index(column)


def test_bulk_path_refuses_float_money_like_sqlalchemy(tmp_path: Path) -> None:
    migrated_sqlite(tmp_path / "x.db")
    engine = sync_engine(tmp_path / "x.db")
    with pytest.raises(TypeError, match="Money columns take Decimal"):
        with engine.begin() as conn:
            execute_bulk(conn, _EXEC_INSERT, [_execution("a", filled_qty=0.1)])
    engine.dispose()


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=64))
def test_uuid4_strings_are_valid_random_uuids(n: int) -> None:
    ids = list(uuid4_strings(n))
    assert len(ids) == len(set(ids)) == n
    for s in ids:
        u = uuid.UUID(s)
        assert (u.version, u.variant, str(u)) == (4, uuid.RFC_4122, s)


class PublishRecorder:
    """Records what the store publishes, in publication order (the bus reorders by priority)."""

    def __init__(self, into: list[ev.Event]) -> None:
        self.publish = into.append


class FailNthCommit:
    """Makes the writer's ``n``-th transaction from now fail at its first statement."""

    def __init__(self, engine: Any, n: int) -> None:
        self.left = n
        self.failed = 0
        sa_event.listen(engine, "before_cursor_execute", self)

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO events"):
            self.left -= 1
            if self.left == 0:
                self.failed += 1
                raise OperationalError(statement, None, Exception("disk I/O error (injected)"))


async def test_a_failed_commit_fails_what_was_prepared_on_it_and_loses_nothing(any_db: Path | URL) -> None:
    engine = async_engine(any_db)
    published: list[ev.Event] = []
    bus = PublishRecorder(published)
    store = EventStore(engine, bus, chunk_size=4, commit_in="thread")  # type: ignore[arg-type]  # small chunks: several in the pipeline at once; the thread committer's engine takes the fault hook
    await store.start()
    try:
        ids = [f"e{i:02d}" for i in range(24)]
        await asyncio.gather(*(store.append(running(eid)) for eid in ids))
        fault = FailNthCommit(store.writer_engine, 3)

        async def appender(eid: str) -> list[str]:
            outcomes = []
            for n in range(6):
                event = paused(eid, n) if (await store.load(eid)).state.value == "running" else resumed(eid, n)
                try:
                    await store.append([event])
                    outcomes.append("ok")
                except StorageError:
                    outcomes.append("failed")
            return outcomes

        # (a writer that loses track of a chunk leaves its appenders waiting: fail, don't hang)
        outcomes = await asyncio.wait_for(asyncio.gather(*(appender(eid) for eid in ids)), 60)
        assert fault.failed == 1
        failed = sum(o.count("failed") for o in outcomes)
        assert failed >= 1, outcomes  # the failed commit's appends were refused...
        assert sum(o.count("ok") for o in outcomes) == 24 * 6 - failed  # ...and only those

        stored = await store.read()
        assert [s.sequence_number for s in stored] == list(range(1, len(stored) + 1))  # no gap
        assert len(stored) == 48 + 24 * 6 - failed
        assert [s.event for s in stored] == published  # published = committed, in order
        for eid in ids:  # the cache holds exactly what the log holds
            cached = await store.load(eid)
            replayed = Execution.replay(eid, [s.event for s in stored if s.event.execution_id == eid])
            assert (cached.version, cached.state, cached.paused_at) == \
                   (replayed.version, replayed.state, replayed.paused_at)
    finally:
        await store.stop()
    live = await snapshot(engine)
    async with engine.begin() as conn:
        await rebuild(conn)
    assert await snapshot(engine) == live
    await engine.dispose()


async def test_a_big_chunk_shares_the_event_loop(db_path: Path) -> None:
    """Settling 64 committed appends lets other tasks run in between (with a zero slot the
    writer yields before each one: another task sees the published events grow one append
    at a time, not 64 at once); what is stored and published is unchanged."""
    engine = async_engine(db_path)
    published: list[ev.Event] = []
    store = EventStore(engine, PublishRecorder(published), chunk_size=64,  # type: ignore[arg-type]
                       tuning=Tuning(writer_slot_seconds=0.0))
    await store.start()
    seen: list[int] = []  # len(published) at each turn of another task
    done = asyncio.Event()

    async def watcher() -> None:
        while not done.is_set():
            seen.append(len(published))
            await asyncio.sleep(0)

    try:
        ids = [f"e{i:02d}" for i in range(64)]
        await asyncio.gather(*(store.append(running(eid)) for eid in ids))
        watching = asyncio.create_task(watcher())
        await asyncio.gather(*(store.append([paused(eid)]) for eid in ids))
        done.set()
        await watching
        assert seen[-1] == 3 * 64
        assert max(b - a for a, b in zip(seen, seen[1:])) == 1
        stored = await store.read()
        assert [s.sequence_number for s in stored] == list(range(1, 3 * 64 + 1))
        assert [s.event for s in stored] == published
        assert [(await store.load(eid)).state.value for eid in ids] == ["paused"] * 64
    finally:
        await store.stop()
        await engine.dispose()


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])))
def test_utc_datetime_text_on_sqlite_is_sqlalchemys_own(value: datetime) -> None:
    """``UtcDateTime``'s one-step SQLite conversion writes and reads the text SQLAlchemy's
    DATETIME would (databases written before keep reading back the same instants)."""
    from sqlalchemy import DateTime
    from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

    from genesis.store.types import UtcDateTime

    dialect = sqlite_dialect()
    ours = UtcDateTime().dialect_impl(dialect)
    stock = DateTime().dialect_impl(dialect)
    naive_utc = value.astimezone(timezone.utc).replace(tzinfo=None)
    text_ = ours.bind_processor(dialect)(value)
    assert text_ == stock.bind_processor(dialect)(naive_utc)
    back = ours.result_processor(dialect, None)(text_)
    assert back == value and back.tzinfo is timezone.utc
    assert stock.result_processor(dialect, None)(text_) == naive_utc
    assert ours.bind_processor(dialect)(None) is None and ours.result_processor(dialect, None)(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours.bind_processor(dialect)(naive_utc)


async def test_a_value_its_column_cannot_store_refuses_that_chunk_and_the_writer_goes_on(any_db: Path | URL) -> None:
    engine = async_engine(any_db)
    async with EventStore(engine) as store:
        await store.append(running("good"))
        float_slice = ev.PlannedSlice(0, T0, 0.5)  # type: ignore[arg-type]
        bad = ev.ExecutionStarted("bad", T0, Decimal("100000"), T0 + timedelta(minutes=15), (float_slice,))
        with pytest.raises(InvalidEventError, match="execution_slices.planned_qty: Money columns take Decimal, got float"):
            await store.append([submitted("bad"), bad])
        await store.append(running("also-good"))
        assert [s.event.execution_id for s in await store.read()] == ["good", "good", "also-good", "also-good"]
        with pytest.raises(ConcurrencyError):  # nothing of the refused append was kept, not even in the cache
            await store.append([submitted("bad")], expected_version=2)
    await engine.dispose()
