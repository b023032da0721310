"""The append-only event store with a single writer task and group commit.

Callers ``await store.append(...)`` and get control back only once their events are durable.
One writer task takes everything queued, folds each batch into the cached aggregates (so an
illegal transition or a version conflict is refused before it is written) and plans the SQL
on the event loop; then one call in a worker thread inserts the events, updates the
projections and marks processed commands in a single transaction (one thread hop per batch
instead of one per statement). Committed events are published on the bus. Readers use the
async (aiosqlite) engine; in WAL mode they never wait for the writer.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Sequence

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genesis.bus import EventBus
from genesis.domain.events import Event, ExecutionSubmitted, decode, encode
from genesis.domain.execution import Execution
from genesis.domain.state import IllegalTransition
from genesis.store import tables as t
from genesis.store.db import writer_engine
from genesis.store.projector import Statement, execute, execution_row, statements, update_executions

log = structlog.get_logger("genesis.store")


class ConcurrencyError(Exception):
    """``expected_version`` did not match the aggregate's stored version."""


class InvalidEventError(Exception):
    """The events do not apply to the aggregate (illegal transition, inconsistent data)."""


class StorageError(Exception):
    """The database refused the commit (locked, read-only, disk full...). Nothing was written."""


class StoreClosedError(Exception):
    """The store is not running."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    sequence_number: int
    aggregate_version: int
    event: Event


@dataclass(slots=True)
class _Pending:
    aggregate_id: str
    events: list[Event]
    expected_version: int | None
    command_ids: tuple[tuple[int, str, str | None], ...]
    future: asyncio.Future[list[StoredEvent]] = field(default=None)  # type: ignore[assignment]


class EventStore:
    """Owner of the events table. Use ``async with EventStore(engine) as store``."""

    def __init__(self, engine: AsyncEngine, bus: EventBus | None = None, max_batch: int = 2000):
        self._engine = engine
        self._writer_engine: Engine = writer_engine(engine)
        self._bus = bus
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._aggregates: dict[str, Execution] = {}
        self._rows: dict[str, dict] = {}  # executions rows as last written, to update only changes
        self._next_seq: int | None = None
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed (group commit makes this << events)

    @property
    def writer_engine(self) -> Engine:
        """The blocking engine the writer thread commits through (same file and settings)."""
        return self._writer_engine

    async def __aenter__(self) -> "EventStore":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        async with self._engine.connect() as conn:
            self._next_seq = await _next_sequence(conn)
        self._writer = asyncio.create_task(self._write_loop(), name="eventstore-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._writer is None:
            return
        await self._queue.join()
        self._writer.cancel()
        try:
            await self._writer
        except asyncio.CancelledError:
            pass
        self._writer = None
        self._writer_engine.dispose()

    # -- writing ---------------------------------------------------------------------------

    async def append(
        self,
        events: Sequence[Event],
        expected_version: int | None = None,
        done_commands: Sequence[tuple[int, str, str | None]] = (),
    ) -> list[StoredEvent]:
        """Durably append ``events`` (all of one aggregate). ``done_commands`` are
        ``(command_id, outcome, detail)`` marked processed in the same transaction."""
        if self._writer is None or self._writer.done():
            raise StoreClosedError("the event store writer is not running")
        if not events:
            raise ValueError("append needs at least one event")
        agg_id = events[0].execution_id
        if any(e.execution_id != agg_id for e in events):
            raise ValueError("one append takes the events of one aggregate")
        item = _Pending(agg_id, list(events), expected_version, tuple(done_commands))
        item.future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(item)
        return await item.future

    async def mark_commands(self, done_commands: Sequence[tuple[int, str, str | None]]) -> None:
        """Mark commands processed without events (e.g. a rejected command), through the writer."""
        if not done_commands:
            return
        item = _Pending("", [], None, tuple(done_commands))
        item.future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(item)
        await item.future

    async def _write_loop(self) -> None:
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    await self._commit_batch(batch)
                finally:
                    for _ in batch:
                        self._queue.task_done()
        finally:
            # whatever ends the writer, nobody may wait forever on a queued append (or in stop())
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(StoreClosedError("the event store writer stopped"))
                self._queue.task_done()

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        accepted: list[tuple[_Pending, list[StoredEvent]]] = []
        touched: set[str] = set()
        try:
            if self._next_seq is None:  # unknown after a failed commit
                async with self._engine.connect() as conn:
                    self._next_seq = await _next_sequence(conn)
            folded: list[tuple[_Pending, Execution, list[int]]] = []
            poisoned: set[str] = set()
            for n, item in enumerate(batch):
                if n and n % 16 == 0:
                    await asyncio.sleep(0)  # a big batch must not hold the event loop for long
                if not item.events:
                    accepted.append((item, []))
                    continue
                agg = await self._aggregate(item.aggregate_id)
                touched.add(item.aggregate_id)
                versions = self._fold(agg, item)
                if versions is None:
                    if item.aggregate_id not in self._aggregates:  # evicted: half-applied
                        poisoned.add(item.aggregate_id)
                else:
                    folded.append((item, agg, versions))
            for agg_id in poisoned:  # a later item may have re-cached it with refused events
                self._aggregates.pop(agg_id, None)
            now = datetime.now(timezone.utc)
            rows: list[dict] = []
            planned: list[Statement] = []
            row_updates: dict[str, Execution] = {}
            written: dict[str, dict] = {}
            seq = self._next_seq
            for n, (item, agg, versions) in enumerate(folded):
                if n and n % 16 == 0:
                    await asyncio.sleep(0)
                if item.aggregate_id in poisoned:
                    item.future.set_exception(InvalidEventError(
                        "refused with an invalid append to the same aggregate in one batch; retry"))
                    continue
                stored = []
                for version, e in zip(versions, item.events):
                    stored.append(StoredEvent(seq, version, e))
                    rows.append({
                        "event_id": str(uuid.uuid4()), "sequence_number": seq,
                        "event_type": e.event_type, "aggregate_id": item.aggregate_id,
                        "aggregate_version": version, "event_data": encode(e),
                        "occurred_at": e.occurred_at, "created_at": now,
                    })
                    seq += 1
                accepted.append((item, stored))
                planned.extend(statements(agg, item.events, execution_row_update=False))
                if isinstance(item.events[0], ExecutionSubmitted):
                    written[item.aggregate_id] = execution_row(agg)
                else:
                    row_updates[item.aggregate_id] = agg
            updates = []
            for agg_id, agg in row_updates.items():  # one UPDATE per aggregate, changed columns only
                stmt, written[agg_id] = update_executions(agg, self._rows.get(agg_id))
                updates.append(stmt)
            updates.sort(key=lambda st: tuple(st[1]))  # same column sets side by side: executemany
            planned.extend(updates)
            for item, _ in accepted:
                for cmd_id, outcome, detail in item.command_ids:
                    planned.append((update(t.commands).where(t.commands.c.command_id == cmd_id),
                                    {"processed_at": now, "outcome": outcome, "detail": detail}))
            await asyncio.to_thread(self._write, rows, planned)
        except (DBAPIError, SQLAlchemyError, OSError) as exc:
            self._fail(batch, touched, StorageError(f"database commit failed: {exc}"))
            log.error("storage_commit_failed", error=str(exc), events=sum(len(i.events) for i in batch))
            return
        except BaseException as exc:
            self._fail(batch, touched, StorageError(f"event store writer failed: {exc!r}"))
            raise
        self.commits += 1
        self._next_seq = seq
        self._rows.update(written)
        for item, stored in accepted:
            if not item.future.done():
                item.future.set_result(stored)
            if self._bus is not None:
                for s in stored:
                    self._bus.publish(s.event)

    def _write(self, rows: list[dict], planned: list[Statement]) -> None:
        """One transaction, in the writer thread."""
        with self._writer_engine.begin() as conn:
            if rows:
                conn.execute(insert(t.events), rows)
            execute(conn, planned)

    def _fold(self, agg: Execution, item: _Pending) -> list[int] | None:
        """Apply the item's events to the cached aggregate and return their versions; on
        refusal, settle the item's future and forget the (possibly half-applied) aggregate."""
        if item.expected_version is not None and item.expected_version != agg.version:
            item.future.set_exception(ConcurrencyError(
                f"aggregate {item.aggregate_id} is at version {agg.version}, "
                f"expected {item.expected_version}"))
            return None
        versions = []
        try:
            for e in item.events:
                agg.apply(e)
                versions.append(agg.version)
        except (IllegalTransition, ValueError, KeyError, TypeError) as exc:
            self._aggregates.pop(item.aggregate_id, None)
            item.future.set_exception(InvalidEventError(f"{type(exc).__name__}: {exc}"))
            return None
        return versions

    def _fail(self, batch: list[_Pending], touched: set[str], exc: Exception) -> None:
        for agg_id in touched:
            self._aggregates.pop(agg_id, None)
            self._rows.pop(agg_id, None)
        self._next_seq = None
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    async def _aggregate(self, aggregate_id: str) -> Execution:
        return await self.load(aggregate_id)

    # -- reading ---------------------------------------------------------------------------

    async def load(self, aggregate_id: str) -> Execution:
        """The aggregate as of its last committed event. Read-only for callers: it is the
        writer's cached copy."""
        agg = self._aggregates.get(aggregate_id)
        if agg is not None:
            return agg
        async with self._engine.connect() as conn:
            history = await _read(conn, aggregate_id)
        agg = self._aggregates.get(aggregate_id)  # the writer may have loaded it meanwhile
        if agg is None:
            agg = Execution.replay(aggregate_id, [s.event for s in history])
            self._aggregates[aggregate_id] = agg
        return agg

    async def preload(self, aggregate_ids: Sequence[str]) -> None:
        """Load many aggregates with one query per 500 ids (restart recovery of many executions)."""
        missing = [a for a in aggregate_ids if a not in self._aggregates]
        for i in range(0, len(missing), 500):
            chunk = missing[i:i + 500]
            e = t.events.c
            async with self._engine.connect() as conn:
                rows = (await conn.execute(select(e.aggregate_id, e.event_type, e.event_data)
                                           .where(e.aggregate_id.in_(chunk))
                                           .order_by(e.aggregate_id, e.aggregate_version))).all()
            history: dict[str, list[Event]] = {a: [] for a in chunk}
            for agg_id, etype, data in rows:
                history[agg_id].append(decode(etype, data))
            for agg_id, events in history.items():
                self._aggregates.setdefault(agg_id, Execution.replay(agg_id, events))

    async def read(self, aggregate_id: str | None = None, after_sequence: int = 0,
                   limit: int | None = None) -> list[StoredEvent]:
        async with self._engine.connect() as conn:
            return await _read(conn, aggregate_id, after_sequence, limit)

    async def net_positions(self) -> dict[str, Decimal]:
        """Signed net quantity genesis has filled per symbol (buys minus sells), from the projection."""
        c = t.executions.c
        out: dict[str, Decimal] = {}
        async with self._engine.connect() as conn:
            for symbol, side, filled in await conn.execute(select(c.symbol, c.side, c.filled_qty)):
                out[symbol] = out.get(symbol, Decimal(0)) + (filled if side == "buy" else -filled)
        return out

    async def live_execution_ids(self) -> list[str]:
        """Executions whose projection is not in a terminal state."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(t.executions.c.execution_id)
                .where(t.executions.c.state.in_(("pending", "running", "paused")))
                .order_by(t.executions.c.submitted_at))
            return [r[0] for r in rows]


async def _next_sequence(conn: AsyncConnection) -> int:
    return (await conn.scalar(select(func.max(t.events.c.sequence_number))) or 0) + 1


async def _read(conn: AsyncConnection, aggregate_id: str | None, after_sequence: int = 0,
                limit: int | None = None) -> list[StoredEvent]:
    q = select(t.events.c.sequence_number, t.events.c.aggregate_version, t.events.c.event_type,
               t.events.c.event_data).where(t.events.c.sequence_number > after_sequence)
    if aggregate_id is not None:
        q = q.where(t.events.c.aggregate_id == aggregate_id)
    q = q.order_by(t.events.c.sequence_number)
    if limit is not None:
        q = q.limit(limit)
    return [StoredEvent(seq, ver, decode(etype, data)) for seq, ver, etype, data in await conn.execute(q)]
