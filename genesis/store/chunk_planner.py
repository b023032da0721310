"""The writer's request planning: queued appends folded into the cached aggregates and planned
as one chunk's SQL (``genesis.store.batch``), on the event loop.

A ``ChunkPlanner`` holds what planning needs between chunks: the next sequence number (read
from the database at start and after a failed commit) and each execution's state columns as
last planned (so a chunk updates only the rows whose state changed). The writer
(``genesis.store.writer``) decides what a failure costs; it tells the planner what to
``forget``.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genesis.domain.execution import Execution
from genesis.store import tables as t
from genesis.store.batch import (Chunk, Pending, event_rows, fold, plan_commands, plan_events, plan_row_updates,
                                 to_sql)
from genesis.store.errors import InvalidEventError
from genesis.store.row_changes import Steps
from genesis.tuning import Slot

_PLAN_PART = 8  # appends planned between two looks at the clock


class ChunkPlanner:
    """Plans chunks for the writer. ``aggregates`` is the store's cache of folded aggregates
    (planning folds into it); ``load`` fetches one that is not cached; the SQL is compiled for
    ``dialect``; ``engine`` reads the next sequence number."""

    def __init__(self, engine: AsyncEngine, dialect: Dialect, aggregates: dict[str, Execution],
                 load: Callable[[str], Awaitable[Execution]]) -> None:
        self._engine = engine
        self._dialect = dialect
        self._event_rows = event_rows(dialect)  # event rows made as DBAPI tuples at once, if it can
        self._aggregates = aggregates
        self._load = load
        self._rows: dict[str, tuple] = {}  # executions state columns as last planned: update only changes
        self._next_seq: int | None = None
        self.evictions = 0  # aggregates evicted from the cache so far (``EventStore`` loads watch it)

    async def read_next_sequence(self) -> None:
        """Read the next sequence number from the database (at start, and after a failed commit)."""
        async with self._engine.connect() as conn:
            self._next_seq = await _next_sequence(conn)

    async def plan(self, chunk: Chunk, items: list[Pending], slot: Slot) -> int:
        """Fold ``items`` into the aggregates and plan them into ``chunk`` (sharing ``slot``);
        the sequence number after the chunk's events. Refused items are not in
        ``chunk.accepted`` and their futures hold the reason. Raises the database's error
        when loading an aggregate fails, ``TypeError``/``ValueError`` for a value its column
        cannot store (nothing of the chunk is planned for sure then)."""
        if self._next_seq is None:  # unknown after a failed commit
            await self.read_next_sequence()
        next_seq = self._next_seq
        folded: list[tuple[Pending, Execution, list[int]]] = []
        poisoned = chunk.poisoned
        for item in items:
            if slot.over():
                await slot.share()
            if not item.events:
                continue
            agg = self._aggregates.get(item.aggregate_id) or await self._load(item.aggregate_id)
            chunk.touched.add(item.aggregate_id)
            versions = fold(agg, item)
            if isinstance(versions, Exception):
                if not item.future.done():  # (its caller may have cancelled it)
                    item.future.set_exception(versions)
                if isinstance(versions, InvalidEventError):  # possibly half-applied: forget it
                    self._evict(item.aggregate_id)
                    poisoned.add(item.aggregate_id)
            else:
                folded.append((item, agg, versions))
        if poisoned:
            folded = self._unpoisoned(folded, poisoned)
        row_updates: dict[str, tuple[Execution, Steps | None]] = {}
        for start in range(0, len(folded), _PLAN_PART):
            if slot.over():
                await slot.share()
            next_seq = plan_events(chunk, folded[start:start + _PLAN_PART], next_seq, row_updates, self._event_rows)
        plan_row_updates(chunk, row_updates, self._rows)
        chunk.accepted += [(item, []) for item in items if not item.events]
        for item, _ in chunk.accepted:
            if item.command_ids:
                plan_commands(chunk, item, chunk.created_at)
        await to_sql(chunk, self._dialect, slot, self._event_rows)
        return next_seq

    def _unpoisoned(self, folded: list[tuple[Pending, Execution, list[int]]], poisoned: set[str]
                    ) -> list[tuple[Pending, Execution, list[int]]]:
        """``folded`` without the appends to aggregates an invalid append of the chunk left
        unreliable (they are refused, and those aggregates evicted)."""
        for agg_id in poisoned:  # a later item may have re-cached it with refused events
            self._evict(agg_id)
        for item, _, _ in folded:
            if item.aggregate_id in poisoned and not item.future.done():
                item.future.set_exception(InvalidEventError(
                    "refused with an invalid append to the same aggregate in one batch; retry"))
        return [f for f in folded if f[0].aggregate_id not in poisoned]

    def planned_on(self, chunk: Chunk, next_seq: int) -> None:
        """``chunk`` goes to the committer: the next chunk is planned on top of it."""
        self._next_seq = next_seq
        self._rows.update(chunk.written)

    def forget_sequence(self) -> None:
        """A commit failed: the next sequence number is read again before the next chunk."""
        self._next_seq = None

    def forget(self, aggregate_ids: set[str]) -> None:
        """What was folded and planned for these aggregates is unreliable (their chunk failed):
        they are reloaded from what was committed."""
        for agg_id in aggregate_ids:
            self._evict(agg_id)
            self._rows.pop(agg_id, None)

    def _evict(self, aggregate_id: str) -> None:
        self._aggregates.pop(aggregate_id, None)
        self.evictions += 1


async def _next_sequence(conn: AsyncConnection) -> int:
    return (await conn.scalar(select(func.max(t.events.c.sequence_number))) or 0) + 1
