"""``ThreadCommitter``: the writer's transactions in one worker thread of this process,
through a blocking SQLAlchemy engine (the contract: ``genesis.store.committers``)."""

from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from genesis.store.commit_contract import (EARLIER_FAILED, LEASE_LOST, CommitRefused, Refusals, Transaction,
                                           refusal)
from genesis.store.leases import LeaseRefused
from genesis.store.pg_thread_outcome import SettledRefusal


class ThreadCommitter(Refusals):
    """Runs the transactions in one worker thread, in order, through ``engine`` (blocking, same
    file and settings). ``precondition``: see the module docstring. Group commit, as the
    commit process: whenever the thread is free it commits every transaction submitted
    meanwhile as one (all or none of them), so under load transactions grow instead of the
    queue (one per submission, they were ~14 events each with 100 appenders on PostgreSQL)."""

    def __init__(self, engine: Engine, precondition: Callable[[Connection], None] | None = None) -> None:
        self.engine = engine
        self.precondition = precondition
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="eventstore-commit")
        self._waiting: collections.deque[tuple[Transaction, int, asyncio.Future[int]]] = collections.deque()
        self._failed = 0  # refused transactions so far (in the worker thread)
        self.commits = 0

    async def start(self) -> None:
        pass

    def submit(self, transaction: Transaction, generation: int) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._waiting.append((transaction, generation, done))
        loop.run_in_executor(self._executor, self._run_waiting, loop)  # settles ``done`` (maybe in an earlier run)
        return done

    def _run_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit every transaction waiting as one; settle their futures on ``loop``."""
        batch = []
        while self._waiting:
            batch.append(self._waiting.popleft())
        live = [(transaction, done) for transaction, generation, done in batch if generation >= self._failed]
        for _, generation, done in batch:
            if generation < self._failed:  # prepared on a refused transaction: refused unrun
                loop.call_soon_threadsafe(_settle, done, CommitRefused(
                    EARLIER_FAILED, "an earlier commit failed; nothing was written", self._failed))
        if not live:
            return
        try:
            outcome: int | BaseException = self._run([s for transaction, _ in live for s in transaction])
        except BaseException as exc:  # the futures carry it to the writer, whatever it is
            outcome = exc
        for _, done in live:
            loop.call_soon_threadsafe(_settle, done, outcome)

    def _run(self, transaction: Transaction) -> int:
        try:
            shift = self._commit(transaction)
        except DBAPIError as exc:
            self._failed += 1
            raise refusal(type(exc.orig).__name__, str(exc.orig).strip(), self._failed,
                          type(exc.orig).__module__.split(".")[0]) from exc
        except LeaseRefused as exc:
            self._failed += 1
            raise CommitRefused(LEASE_LOST, str(exc), self._failed, "genesis") from exc
        except SettledRefusal as exc:  # a lost commit that did not commit, or may have
            self._failed += 1
            raise refusal(exc.error_class, exc.message, self._failed, "psycopg") from exc
        except BaseException:
            self._failed += 1  # whatever it was, what was prepared on it must not run
            raise
        self.commits += 1
        return shift

    def _commit(self, transaction: Transaction) -> int:
        """Run ``transaction`` in one database transaction and commit it: its sequence shift."""
        with self.engine.begin() as conn:
            return self._execute(conn, transaction)

    def _execute(self, conn: Connection, transaction: Transaction) -> int:
        """Check the precondition and run the statements inside the open transaction; the
        shift of its sequence numbers."""
        if self.precondition is not None:
            self.precondition(conn)
        run_statements(conn, transaction)
        return 0

    async def stop(self) -> None:
        await asyncio.to_thread(self._executor.shutdown)
        self.engine.dispose()


def _settle(done: asyncio.Future[int], outcome: int | BaseException) -> None:
    if done.done():  # cancelled by its waiter
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def run_statements(conn: Connection, transaction: Transaction) -> None:
    """Each ``(sql, rows)`` of ``transaction`` with one ``executemany``, in order."""
    for sql, rows in transaction:
        conn.exec_driver_sql(sql, rows)
