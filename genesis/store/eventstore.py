"""The append-only event store: the events table's owner and its readers' cache.

Callers ``await store.append(...)`` and get control back only once their events are durable:
the single writer (``genesis.store.writer``) folds appends into the cached aggregates, plans
their projection rows and commits many appends per transaction, preparing the next chunk while
the previous one is being committed. Committed events are published on the bus. Readers use
the async (aiosqlite) engine; in WAL mode they never wait for the writer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genesis.bus import EventBus
from genesis.domain.events import Event, decode
from genesis.domain.execution import Execution
from genesis.store import tables as t
from genesis.store.batch import Pending, StoredEvent
from genesis.store.db import writer_engine
from genesis.store.writer import (ConcurrencyError, InvalidEventError, StorageError, StoreClosedError,
                                  Writer)

__all__ = ["ConcurrencyError", "EventStore", "InvalidEventError", "StorageError", "StoreClosedError",
           "StoredEvent"]


class EventStore:
    """Owner of the events table. Use ``async with EventStore(engine) as store``.

    ``chunk_size``: appends folded per chunk by the writer (see ``genesis.store.writer``)."""

    def __init__(self, engine: AsyncEngine, bus: EventBus | None = None, chunk_size: int = 32):
        self._engine = engine
        self._writer_engine: Engine = writer_engine(engine)
        self._aggregates: dict[str, Execution] = {}
        self._writer = Writer(engine, self._writer_engine, self._aggregates, self.load, bus, chunk_size)

    @property
    def writer_engine(self) -> Engine:
        """The blocking engine the writer thread commits through (same file and settings)."""
        return self._writer_engine

    @property
    def commits(self) -> int:
        """Transactions committed so far (group commit makes this far fewer than appends)."""
        return self._writer.commits

    async def __aenter__(self) -> "EventStore":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._writer.start()

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer."""
        await self._writer.stop()
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
        if not events:
            raise ValueError("append needs at least one event")
        agg_id = events[0].execution_id
        if any(e.execution_id != agg_id for e in events):
            raise ValueError("one append takes the events of one aggregate")
        return await self._writer.submit(Pending(agg_id, list(events), expected_version, tuple(done_commands)))

    async def mark_commands(self, done_commands: Sequence[tuple[int, str, str | None]]) -> None:
        """Mark commands processed without events (e.g. a rejected command), through the writer."""
        if done_commands:
            await self._writer.submit(Pending("", [], None, tuple(done_commands)))

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
