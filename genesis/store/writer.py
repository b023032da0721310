"""The event store's writer: single writer, pipelined group commit.

Four tasks, in a pipeline. The *preparer* takes what is queued, folds it into the cached
aggregates (so an illegal transition or a version conflict is refused before anything is
written) and plans a chunk's event rows and projection statements as SQL with plain
parameters, on the event loop (``genesis.store.chunk_planner``). The *committer* hands every
chunk ready to a ``Committer`` (by default a separate process, see ``genesis.store.committers``)
at once; the committer runs everything waiting for it as one transaction, so the next one is in
its hands the moment the previous one is durable, and under load transactions grow instead of
queues. The *confirmer* takes the outcomes in order, and the *deliverer* settles the callers'
futures and publishes their events in commit order (``genesis.store.delivery``). The loop's
Python work overlaps the database's.

A refused transaction fails its chunks and every chunk prepared on top of them: those handed
over behind it (which the committer refuses unrun: their ``generation`` is older than its
refusal) and those ready or being prepared. The aggregates they touched are evicted from the
cache and reloaded from what was committed. A chunk whose plan fails on a value the store
cannot take is planned again append by append (``genesis.store.value_replan``).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from datetime import datetime, timezone
from typing import Awaitable, Callable

import structlog
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.bus import EventBus
from genesis.domain.execution import Execution
from genesis.store.append_queue import AppendQueue
from genesis.store.batch import Chunk, Pending, StoredEvent
from genesis.store.chunk_planner import ChunkPlanner
from genesis.store.committers import CommitRefused, Committer, appenders_error
from genesis.store.delivery import Delivery, shifted
from genesis.store.errors import InvalidEventError, StorageError, StoreClosedError
from genesis.store.value_replan import VALUE_ERRORS, check_chunk_texts, drain, replan_one_by_one
from genesis.tuning import DEFAULT_TUNING, Tuning

log = structlog.get_logger("genesis.store")

_DB_ERRORS = (DBAPIError, SQLAlchemyError, OSError)


class Writer:
    """The store's only writer. ``aggregates`` is the store's cache of folded aggregates (the
    writer folds into it and evicts what a failure made unreliable); ``load`` fetches one that
    is not cached. ``committer`` runs the transactions, whose SQL is compiled for ``dialect``.
    ``chunk_size``: appends folded per chunk; when the committer is idle a chunk is committed
    as soon as it is ready, otherwise the chunks ready are committed together. ``tuning``:
    its ``writer_slot_seconds`` bounds the writer's work per loop iteration."""

    def __init__(self, engine: AsyncEngine, committer: Committer, dialect: Dialect,
                 aggregates: dict[str, Execution], load: Callable[[str], Awaitable[Execution]],
                 bus: EventBus | None, chunk_size: int, tuning: Tuning = DEFAULT_TUNING):
        self._planner = ChunkPlanner(engine, dialect, aggregates, load)  # folds and plans the chunks
        self._tuning = tuning  # its writer slot: how long the writer works before it yields
        self._committer = committer
        self._chunk_size = chunk_size
        self._queue: AppendQueue[Pending] = AppendQueue()
        self._ready: asyncio.Queue[Chunk] = asyncio.Queue()
        self._sent: collections.deque[tuple[list[Chunk], asyncio.Future[int | None]]] = collections.deque()
        self._to_confirm: asyncio.Queue[tuple[list[Chunk], asyncio.Future[int | None]]] = asyncio.Queue()
        self._delivery = Delivery(self._queue, bus, tuning)  # settles and publishes what was committed
        self._generation = 0  # refused transactions so far (the committer's count, as last seen)
        # aggregates forgotten while they may have had events in the committer's hands: ``_refresh`` them
        self._stale: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._alive = False  # every writer task running (checked on every append)
        self._failure: asyncio.Future[BaseException] | None = None  # set if the writer ends on its own
        # the loop the writer runs on (asyncio.get_running_loop() costs a getpid() system call: not per append)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0  # the thread of the loop the writer runs on (``submit`` checks it)
        # observability: called with (seconds from a transaction's first chunk prepared to its outcome,
        # committed or refused) for every transaction the committer answers
        self.on_commit: Callable[[float, bool], None] | None = None

    async def start(self) -> None:
        await self._planner.read_next_sequence()
        await self._committer.start()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()  # appends come from this thread's loop only
        self._failure = self._loop.create_future()
        self._tasks = [asyncio.create_task(self._prepare_loop(), name="eventstore-preparer"),
                       asyncio.create_task(self._commit_loop(), name="eventstore-committer"),
                       asyncio.create_task(self._confirm_loop(), name="eventstore-confirmer"),
                       asyncio.create_task(self._delivery.run(), name="eventstore-deliverer")]
        for task in self._tasks:
            task.add_done_callback(self._ended)
        self._alive = True

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if not self._tasks:
            return
        if self.running():
            await self._queue.join()
        self._alive = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._failure is not None and not self._failure.done():
            self._failure.cancel()
        await self._committer.stop()

    def running(self) -> bool:
        return self._alive

    def queue_depths(self) -> tuple[int, int]:
        """Read-only, for metrics: appends queued and not yet prepared, and transactions handed
        to the committer and not yet confirmed."""
        return self._queue.qsize(), len(self._sent)

    @property
    def evictions(self) -> int:
        """Aggregates evicted from the cache so far: a load whose query ran while this changed
        may have read an aggregate before a commit of it, and must not be cached."""
        return self._planner.evictions

    @property
    def commits(self) -> int:
        """Transactions committed so far (group commit makes this far fewer than appends)."""
        return self._committer.commits

    async def failure(self) -> BaseException:
        """Wait until the writer ends on its own (not by ``stop``); the error that ended it."""
        assert self._failure is not None, "the writer has not started"
        return await asyncio.shield(self._failure)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """One writer task ended: stop the others, so nobody waits on a part of a writer."""
        self._alive = False
        if not task.cancelled() and task.exception() is not None:
            log.error("eventstore_writer_failed", task=task.get_name(), error=repr(task.exception()))
            if self._failure is not None and not self._failure.done():
                self._failure.set_result(task.exception())  # type: ignore[arg-type]
        for other in self._tasks:
            other.cancel()

    async def submit(self, item: Pending) -> list[StoredEvent]:
        """Queue ``item`` and wait until it is committed (or refused). Only from the event loop
        the writer runs on: from another thread nothing is queued (``RuntimeError``), since its
        caller could not await the outcome and might append the same events again."""
        if not self._alive:  # (``running()``, on every append)
            raise StoreClosedError("the event store writer is not running")
        if threading.get_ident() != self._thread:
            raise RuntimeError("the event store takes appends on its own event loop only (not from another thread)")
        item.future = self._loop.create_future()  # type: ignore[union-attr]  # (set while running)
        self._queue.put_nowait(item)
        return await item.future

    async def _prepare_loop(self) -> None:
        try:
            while True:
                await self._prepare(await self._queue.take(self._chunk_size))
        finally:
            # whatever ends the writer, nobody may wait forever on a queued append (or in stop())
            self._fail_ready(StoreClosedError("the event store writer stopped"))
            while not self._queue.empty():
                self._settle(self._queue.get_nowait(), StoreClosedError("the event store writer stopped"))

    async def _commit_loop(self) -> None:
        """Hand the chunks ready to the committer at once (it commits all that wait for it as
        one transaction, so the next is in its hands the moment the previous one is durable)."""
        try:
            while True:
                chunks = [await self._ready.get()]
                while not self._ready.empty():
                    chunks.append(self._ready.get_nowait())
                live = [c for c in chunks if c.generation == self._generation]
                for chunk in chunks:
                    if chunk.generation != self._generation:
                        self._fail_chunk(chunk, [], StorageError("an earlier commit failed; nothing was written"))
                if live:
                    sent = (live, self._committer.submit([s for c in live for s in c.transaction], self._generation))
                    self._sent.append(sent)
                    self._to_confirm.put_nowait(sent)
        finally:
            self._fail_ready(StoreClosedError("the event store writer stopped"))

    async def _confirm_loop(self) -> None:
        """Wait for each transaction handed over, in order; hand what committed to the deliverer."""
        try:
            while True:
                live, done = await self._to_confirm.get()
                try:
                    shift = await done
                except CommitRefused as exc:
                    self._observe_commit(live, False)
                    pending = [c for c in live if not c.failed]  # (the rest failed with an earlier one)
                    if pending:
                        refusal = appenders_error(exc)
                        self._lost(pending, refusal, exc.failures)
                        log.error("storage_commit_failed", error=str(exc), events=sum(len(c.rows) for c in pending))
                except BaseException as exc:
                    self._lost([c for c in live if not c.failed], StorageError(f"event store writer failed: {exc!r}"))
                    raise
                else:
                    self._observe_commit(live, True)
                    self._delivery.committed.put_nowait([(item, shifted(stored, shift)) for chunk in live
                                                for item, stored in chunk.accepted])
                finally:
                    self._sent.popleft()
        finally:
            for live, _ in self._sent:  # their outcome will never be known here
                for chunk in live:
                    if not chunk.failed:
                        self._fail_chunk(chunk, [], StoreClosedError("the event store writer stopped"))

    def _observe_commit(self, live: list[Chunk], committed: bool) -> None:
        if self.on_commit is not None and live:
            self.on_commit((datetime.now(timezone.utc) - live[0].created_at).total_seconds(), committed)

    def _settle(self, item: Pending, result: list[StoredEvent] | BaseException) -> None:
        """Settle one queued item's future (unless refused already) and count it done."""
        if not item.future.done():
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
        self._queue.task_done()

    async def _prepare(self, items: list[Pending]) -> None:
        """Fold and plan ``items`` into a chunk (``ChunkPlanner``) and hand it to the committer;
        refused items are settled here. A value the store cannot take fails the plan of the
        whole chunk: only the append that holds it is refused (``genesis.store.value_replan``)."""
        try:
            chunk = await self._plan(items)
        except VALUE_ERRORS as exc:
            await replan_one_by_one(items, exc, self._prepare, self._settle)
            return
        if chunk is not None:
            self._ready.put_nowait(chunk)
            await asyncio.sleep(0)  # let the committer start on it if the disk is idle

    async def _plan(self, items: list[Pending]) -> Chunk | None:
        """``items`` folded and planned into a chunk, or None (they are settled). Raises one of
        ``VALUE_ERRORS`` when planning them failed on a value (nothing settled, the aggregates
        they touched forgotten: ``_refresh`` before the next plan)."""
        chunk = Chunk(self._generation, datetime.now(timezone.utc))
        slot = self._tuning.slot()
        try:
            if self._stale:  # (in the try: should the writer end meanwhile, the items are failed)
                await self._refresh()
                chunk = Chunk(self._generation, datetime.now(timezone.utc))
            next_seq = await self._planner.plan(chunk, items, slot)
            check_chunk_texts(chunk)
        except _DB_ERRORS as exc:  # loading an aggregate failed
            self._fail_chunk(chunk, items, StorageError(f"database read failed: {exc}"))
            self._stale |= chunk.touched
            return None
        except VALUE_ERRORS:  # a value the store cannot take: nothing was written
            chunk.failed = True
            self._planner.forget(chunk.touched)
            self._stale |= chunk.touched
            raise
        except BaseException as exc:
            self._fail_chunk(chunk, items, StorageError(f"event store writer failed: {exc!r}"))
            raise
        if chunk.poisoned:  # evicted for an invalid append: maybe with events being committed
            self._stale |= chunk.poisoned
        if chunk.generation != self._generation:  # a commit failed meanwhile: folded on lost state
            self._fail_chunk(chunk, items, StorageError("an earlier commit failed; nothing was written"))
            return None
        self._planner.planned_on(chunk, next_seq)
        accepted = {id(item) for item, _ in chunk.accepted}
        for item in items:
            if id(item) not in accepted:  # refused: its future holds the reason already
                self._settle(item, InvalidEventError("refused"))
        return chunk

    async def _refresh(self) -> None:
        """Aggregates forgotten (``_stale``) may have had events in chunks still being
        committed, which a reload now would miss. Wait until nothing is in the committer's
        hands, then forget them again (a reader may have loaded one meanwhile), so that they
        are reloaded from what was committed."""
        await drain(self._sent, self._ready)
        self._planner.forget(self._stale)
        self._stale = set()

    def _lost(self, live: list[Chunk], exc: Exception, failures: int | None = None) -> None:
        """A commit failed (the committer's ``failures`` so far): its chunks and every chunk
        prepared after them (handed over behind it, which the committer refuses unrun, or
        ready) are lost."""
        self._generation = self._generation + 1 if failures is None else failures
        self._planner.forget_sequence()
        for chunk in live:
            self._fail_chunk(chunk, [], exc)
        later = StorageError("an earlier commit failed; nothing was written")
        for behind, _ in self._sent:
            for chunk in behind:
                if not chunk.failed:
                    self._fail_chunk(chunk, [], later)
        self._fail_ready(later)

    def _fail_ready(self, exc: Exception) -> None:
        while not self._ready.empty():
            self._fail_chunk(self._ready.get_nowait(), [], exc)

    def _fail_chunk(self, chunk: Chunk, items: list[Pending], exc: Exception) -> None:
        """Forget what the chunk folded and fail its appends (``items``: all of them, when the
        chunk never left the preparer; otherwise its accepted ones)."""
        chunk.failed = True
        self._planner.forget(chunk.touched)
        for item in items or [item for item, _ in chunk.accepted]:
            self._settle(item, exc)

