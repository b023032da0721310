"""The append-only event store: the events table's owner and its readers' cache.

Callers ``await store.append(...)`` and get control back only once their events are durable:
the single writer (``genesis.store.writer``) folds appends into the cached aggregates, plans
their projection rows and commits many appends per transaction, preparing the next chunk while
the previous one is being committed. Committed events are published on the bus. Readers use
the async engine (aiosqlite in WAL mode, or psycopg on PostgreSQL); they never wait for the
writer.
"""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genesis.bus import EventBus
from genesis.domain.codec import decode
from genesis.domain.events import ACCOUNT_NOT_RECORDED, Event
from genesis.domain.execution import Execution
from genesis.domain.ids import is_store_namespace
from genesis.store import tables as t
from genesis.store.batch import Pending, StoredEvent
from genesis.store.committers import Committer, ProcessCommitter, ThreadCommitter
from genesis.store.db import is_durable, writer_engine
from genesis.store.errors import (CommitOutcomeUnknownError, ConcurrencyError, InvalidEventError, LeaseLostError,
                                  StorageError, StoreClosedError, StoreIdentityError)
from genesis.store.leases import SqlFence
from genesis.store.postgres import PostgresCommitter, PostgresProcessCommitter
from genesis.store.value_checks import UnstorableValueError, check_strings
from genesis.store.writer import Writer
from genesis.tuning import DEFAULT_TUNING, Tuning

_LOAD_BATCH = 500  # aggregates per query (SQLite allows 32,766 bound parameters)

__all__ = ["CommitOutcomeUnknownError", "ConcurrencyError", "EventStore", "InvalidEventError", "LeaseLostError", "StorageError", "StoreClosedError",
           "StoreIdentityError", "StoredEvent"]


class EventStore:
    """Owner of the events table. Use ``async with EventStore(engine) as store``.

    ``chunk_size``: appends folded per chunk by the writer (see ``genesis.store.writer``).
    ``commit_in``: where the writer's transactions run (``genesis.store.committers``):
    ``"process"``, a commit process with its own connection (the default: the database
    driver's work stays off the event loop's GIL), or ``"thread"``, a worker thread through
    ``writer_engine``. On PostgreSQL both are in ``genesis.store.postgres``.
    ``precondition(conn)``: run inside every commit transaction (after the PostgreSQL events
    lock); it refuses the transaction by raising (the thread committer only).
    ``fence``: PostgreSQL, the account-lease check sent as SQL with every commit, in either
    committer (``genesis.store.leases.SqlFence``).
    ``tuning``: the writer's slot of the event loop (``genesis.tuning``)."""

    def __init__(self, engine: AsyncEngine, bus: EventBus | None = None, chunk_size: int = 32,
                 commit_in: str | None = None, precondition: Callable[[Connection], None] | None = None,
                 tuning: Tuning = DEFAULT_TUNING, fence: SqlFence | None = None):
        self._engine = engine
        self._writer_engine: Engine = writer_engine(engine)
        commit_in = commit_in or "process"
        self._aggregates: dict[str, Execution] = {}
        self._loading: dict[str, asyncio.Future[Execution]] = {}  # cache misses queued for one query
        self._loader: asyncio.Task[None] | None = None
        self._namespace: str | None = None
        self._writer = Writer(engine, _committer(commit_in, engine, self._writer_engine, precondition, fence),
                              self._writer_engine.dialect,
                              self._aggregates, self.load, bus, chunk_size, tuning)

    @property
    def writer_engine(self) -> Engine:
        """The blocking engine of the ``"thread"`` committer (same file and settings); its
        dialect compiles the writer's SQL in either mode."""
        return self._writer_engine

    @property
    def commits(self) -> int:
        """Transactions committed so far (group commit makes this far fewer than appends)."""
        return self._writer.commits

    def writer_running(self) -> bool:
        """For readiness: the writer takes appends (it has started and not stopped or failed)."""
        return self._writer.running()

    def queue_depths(self) -> tuple[int, int]:
        """For metrics: appends waiting for the writer, transactions waiting for the disk."""
        return self._writer.queue_depths()

    def observe_commits(self, callback: Callable[[float, bool], None] | None) -> None:
        """For metrics and alerts: ``callback(seconds, committed)`` after every transaction
        the writer hands over is committed or refused (``seconds``: from its first chunk
        prepared to the outcome). Runs on the event loop: it must be quick and must not raise."""
        self._writer.on_commit = callback

    async def __aenter__(self) -> "EventStore":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the writer, and read the namespace before any runner asks for it (a first read
        racing between runners would make their order depend on I/O timing)."""
        await self.namespace()
        await self._writer.start()

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer (and let a load in flight finish)."""
        await self._writer.stop()
        if self._loader is not None:
            await asyncio.gather(self._loader, return_exceptions=True)
        self._writer_engine.dispose()

    async def writer_failed(self) -> BaseException:
        """Wait until the writer stops on its own (its commit process died, a bug): the error.
        Appends fail with ``StoreClosedError`` from then on; the daemon exits on it."""
        return await self._writer.failure()

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
        if len(events) > 1 and any(e.execution_id != agg_id for e in events):
            raise ValueError("one append takes the events of one aggregate")
        if done_commands:
            _check_commands(done_commands)
        return await self._writer.submit(Pending(agg_id, list(events), expected_version, tuple(done_commands)))

    async def mark_commands(self, done_commands: Sequence[tuple[int, str, str | None]]) -> None:
        """Mark commands processed without events (e.g. a rejected command), through the writer."""
        if done_commands:
            _check_commands(done_commands)
            await self._writer.submit(Pending("", [], None, tuple(done_commands)))

    # -- reading ---------------------------------------------------------------------------

    async def load(self, aggregate_id: str) -> Execution:
        """The aggregate as of its last committed event. Read-only for callers: it is the
        writer's cached copy. Loads that miss the cache in the same event-loop iteration share
        one query (a burst of 1,000 submissions checks for duplicates with a few)."""
        agg = self._aggregates.get(aggregate_id)
        if agg is not None:
            return agg
        waiter = self._loading.get(aggregate_id)
        if waiter is None:
            waiter = self._loading[aggregate_id] = asyncio.get_running_loop().create_future()
            if self._loader is None:
                self._loader = asyncio.create_task(self._load_batches(), name="eventstore-loader")
        return await asyncio.shield(waiter)  # one caller cancelled must not fail the others

    async def _load_batches(self) -> None:
        """Load what ``load`` queued, up to ``_LOAD_BATCH`` aggregates per query."""
        batch: dict[str, asyncio.Future[Execution]] = {}
        try:
            await asyncio.sleep(0)  # the rest of this iteration's loads join the first query
            while self._loading:
                batch = dict(itertools.islice(self._loading.items(), _LOAD_BATCH))
                for agg_id in batch:
                    del self._loading[agg_id]
                loaded = await self._fetch(list(batch))
                for agg_id, waiter in batch.items():
                    if not waiter.done():
                        waiter.set_result(loaded[agg_id])
                batch = {}
        except BaseException as exc:  # task boundary: the failure goes to every waiting caller
            for waiter in [*batch.values(), *self._loading.values()]:
                if waiter.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:
                    waiter.set_exception(exc)
                    waiter.exception()  # retrieved here too: a cancelled caller no longer awaits it
            self._loading.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._loader = None

    async def _fetch(self, aggregate_ids: list[str]) -> dict[str, Execution]:
        """The aggregates ``aggregate_ids`` from the cache, or replayed from one query (and
        cached). Read again if the writer evicted an aggregate while the query ran: it may
        have read one before a commit the eviction waited for (``genesis.store.value_replan``)."""
        while True:
            evictions = self._writer.evictions
            rows = await self._histories(aggregate_ids)
            if self._writer.evictions == evictions:
                break
        history: dict[str, list[Event]] = {a: [] for a in aggregate_ids}
        for agg_id, etype, data in rows:
            history[agg_id].append(decode(etype, data))
        loaded = {}
        for agg_id, events in history.items():
            agg = self._aggregates.get(agg_id)  # the writer may have cached it meanwhile: that copy wins
            if agg is None:
                agg = self._aggregates[agg_id] = Execution.replay(agg_id, events)
            loaded[agg_id] = agg
        return loaded

    async def _histories(self, aggregate_ids: list[str]) -> list[Any]:
        """(aggregate id, event type, event JSON) of every event of ``aggregate_ids``, in order."""
        e = t.events.c
        async with self._engine.connect() as conn:
            return list((await conn.execute(select(e.aggregate_id, e.event_type, e.event_data)
                                            .where(e.aggregate_id.in_(aggregate_ids))
                                            .order_by(e.aggregate_id, e.aggregate_version))).all())

    async def preload(self, aggregate_ids: Sequence[str]) -> None:
        """Load many aggregates with one query per 500 ids (restart recovery of many executions)."""
        missing = [a for a in aggregate_ids if a not in self._aggregates]
        for i in range(0, len(missing), _LOAD_BATCH):
            await self._fetch(missing[i:i + _LOAD_BATCH])

    async def namespace(self) -> str:
        """This database's client order id namespace (``store_identity``, drawn when the
        database was created or upgraded), read once (at ``start``)."""
        if self._namespace is None:
            async with self._engine.connect() as conn:
                rows = (await conn.execute(select(t.store_identity.c.namespace))).scalars().all()
            if len(rows) != 1 or not is_store_namespace(rows[0]):
                raise StoreIdentityError(
                    f"store_identity must hold one namespace of 10 lowercase hex characters, found "
                    f"{rows!r}: run `genesis db upgrade` on a database made by genesis")
            self._namespace = rows[0]
        return self._namespace

    async def read(self, aggregate_id: str | None = None, after_sequence: int = 0,
                   limit: int | None = None) -> list[StoredEvent]:
        async with self._engine.connect() as conn:
            return await _read(conn, aggregate_id, after_sequence, limit)

    async def last_events(self, aggregate_id: str, count: int) -> list[Event]:
        """The aggregate's last ``count`` committed events, oldest first, from the database (an
        append whose outcome was unknown is settled by them, ``genesis.engine.durable_append``).
        ``StorageError`` when the database cannot be read."""
        q = (select(t.events.c.event_type, t.events.c.event_data).where(t.events.c.aggregate_id == aggregate_id)
             .order_by(t.events.c.aggregate_version.desc()).limit(count))
        try:
            async with self._engine.connect() as conn:
                return [decode(etype, data) for etype, data in reversed((await conn.execute(q)).all())]
        except (DBAPIError, OSError) as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    async def net_positions(self) -> dict[str, Decimal]:
        """Signed net quantity genesis has filled per symbol (buys minus sells), from the projection."""
        c = t.executions.c
        out: dict[str, Decimal] = {}
        async with self._engine.connect() as conn:
            for symbol, side, filled in await conn.execute(select(c.symbol, c.side, c.filled_qty)):
                out[symbol] = out.get(symbol, Decimal(0)) + (filled if side == "buy" else -filled)
        return out

    async def live_execution_ids(self, accounts: tuple[str, ...] | None = None) -> list[str]:
        """Executions whose projection is not in a terminal state; with ``accounts``, only
        those of these accounts and those stored with none (``ACCOUNT_NOT_RECORDED``)."""
        e = t.executions.c
        live = e.state.in_(("pending", "running", "paused"))
        if accounts is not None:
            live = live & e.account.in_((*accounts, ACCOUNT_NOT_RECORDED))
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(e.execution_id).where(live).order_by(e.submitted_at))
            return [r[0] for r in rows]


def _check_commands(done_commands: Sequence[tuple[int, str, str | None]]) -> None:
    """``InvalidEventError`` if a command's outcome or detail is not storable text (a lone
    surrogate would stop the commit process: ``genesis.store.value_checks``)."""
    try:
        check_strings([outcome for _, outcome, _ in done_commands], "commands.outcome")
        check_strings([detail for _, _, detail in done_commands], "commands.detail")
    except UnstorableValueError as exc:
        raise InvalidEventError(f"cannot store these events: {exc}") from None


def _committer(commit_in: str, engine: AsyncEngine, sync: Engine,
               precondition: Callable[[Connection], None] | None, fence: SqlFence | None) -> Committer:
    if commit_in not in ("process", "thread"):
        raise ValueError(f"commit_in must be 'process' or 'thread', not {commit_in!r}")
    if engine.dialect.name == "postgresql":
        if commit_in == "thread":
            return PostgresCommitter(sync, precondition, fence)
        if precondition is not None:
            raise ValueError("a precondition needs commit_in='thread' (the commit process runs SQL only)")
        return PostgresProcessCommitter(sync, durable=is_durable(engine), fence=fence)
    if fence is not None:
        raise ValueError("the SQL lease fence is PostgreSQL's (SQLite: one daemon per file, by its lock)")
    if commit_in == "thread":
        return ThreadCommitter(sync, precondition)
    if precondition is not None:
        raise ValueError("a precondition needs commit_in='thread' (the commit process runs SQL only)")
    path = engine.url.database
    if not path or path == ":memory:":
        raise ValueError("commit_in='process' needs a database file; use commit_in='thread' for memory")
    return ProcessCommitter(path, durable=is_durable(engine))


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
