"""Where the event store's writer runs its transactions: two adapters with one contract.

A transaction is a list of ``(sql, rows)``: SQL compiled by SQLAlchemy for the database's
dialect and rows of plain DBAPI values (``genesis.store.bulk.driver_rows``), run in order with
``executemany`` and committed, or not at all. ``submit(transaction, generation)`` queues one
and returns a future that resolves once it is durable, to the amount its event rows'
``sequence_number`` were shifted by at commit (0 unless another writer appended since they
were planned: see ``genesis.store.postgres``). Transactions run in submission order
(the commit process commits all that are waiting as one), and the writer submits the next
before the previous one is confirmed (it was prepared on top of it): ``generation`` is the
number of refused transactions the writer had seen when it prepared this one (``failures``
of the last refusal), and a transaction prepared on a refusal it had not yet seen is refused
unrun (``CommitRefused`` with ``error_class == EARLIER_FAILED``).

Failures: ``CommitRefused`` when the database refused (nothing of it was written);
``CommitterLost`` when the outcome cannot be known (the commit process died): the writer then
stops, and a restart recovers from what the database holds.

- ``ProcessCommitter`` (the default for the daemon): a child process with its own SQLite
  connection (``genesis.store.commit_process``), so the SQLite work and its fsync run on
  another core instead of sharing the GIL with the event loop.
- ``ThreadCommitter``: one worker thread through a blocking SQLAlchemy engine, in process. Its
  engine takes SQLAlchemy event hooks (the storage fault tests inject failures through them).
  ``precondition(conn)``, when set, runs first inside every transaction: it refuses the
  transaction by raising (a ``DBAPIError`` refuses it like any database error, a
  ``LeaseRefused`` as ``LEASE_LOST``; anything else stops the writer). The PostgreSQL committer (``genesis.store.postgres``) builds on it.
"""

from __future__ import annotations

import asyncio
import collections
import marshal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from genesis.store import db
from genesis.store.commit_process import EARLIER_FAILED, HEADER_BYTES, frame
from genesis.store.leases import LeaseRefused
from genesis.store.pg_fence import lease_refusal

Transaction = list[tuple[str, list[Any]]]

LEASE_LOST = "LeaseRefused"  # CommitRefused.error_class of a failed fencing check (genesis.store.leases)
STOP_TIMEOUT_SECONDS = 30.0  # the commit process finishes the transactions in hand, then exits

__all__ = ["EARLIER_FAILED", "CommitRefused", "Committer", "CommitterLost", "ProcessCommitter", "ThreadCommitter"]


class CommitRefused(Exception):
    """The database refused the transaction (locked, read-only, full...); nothing was written.
    ``failures``: the committer's refused transactions so far, this one included."""

    def __init__(self, error_class: str, message: str, failures: int, driver: str = "sqlite3") -> None:
        super().__init__(message if error_class == EARLIER_FAILED else f"({driver}.{error_class}) {message}")
        self.error_class = error_class
        self.failures = failures


def refusal(error_class: str, message: str, failures: int, driver: str = "sqlite3") -> CommitRefused:
    """The database's refusal; ``LEASE_LOST`` when it was the lease fence's statement
    (``genesis.store.pg_fence``)."""
    lease = lease_refusal(message)
    if lease is not None:
        return CommitRefused(LEASE_LOST, lease, failures, "genesis")
    return CommitRefused(error_class, message, failures, driver)


class CommitterLost(Exception):
    """The committer can no longer commit, and whether the transactions in hand were committed
    is unknown (the commit process died)."""


class Committer(Protocol):
    commits: int  # transactions committed so far

    async def start(self) -> None: ...

    def submit(self, transaction: Transaction, generation: int) -> asyncio.Future[int | None]: ...

    async def stop(self) -> None: ...


class _Refusals:
    """``commit(transaction)``: submit one and await it, as prepared on every refusal seen so
    far (so it is never refused for an earlier one). For callers without a pipeline."""

    refusals = 0

    async def commit(self, transaction: Transaction) -> None:
        try:
            await self.submit(transaction, self.refusals)  # type: ignore[attr-defined]
        except CommitRefused as exc:
            self.refusals = exc.failures
            raise


class ThreadCommitter(_Refusals):
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
            with self.engine.begin() as conn:
                shift = self._execute(conn, transaction)
        except DBAPIError as exc:
            self._failed += 1
            raise refusal(type(exc.orig).__name__, str(exc.orig).strip(), self._failed,
                          type(exc.orig).__module__.split(".")[0]) from exc
        except LeaseRefused as exc:
            self._failed += 1
            raise CommitRefused(LEASE_LOST, str(exc), self._failed, "genesis") from exc
        except BaseException:
            self._failed += 1  # whatever it was, what was prepared on it must not run
            raise
        self.commits += 1
        return shift

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


class ProcessCommitter(_Refusals):
    """Runs the transactions in the commit process (``genesis.store.commit_process``), in order.
    ``durable=False`` (throwaway backtest files) commits without fsync."""

    def __init__(self, db_path: str | Path, durable: bool = True) -> None:
        self.db_path = Path(db_path)
        self.durable = durable
        self._proc: asyncio.subprocess.Process | None = None
        self._waiting: collections.deque[asyncio.Future[int | None]] = collections.deque()
        self._reader: asyncio.Task[None] | None = None
        self._lost: CommitterLost | None = None
        self.sqlite_version = ""
        self.commits = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        """The commit process' command line and environment (None: this process')."""
        return [sys.executable, "-m", "genesis.store.commit_process", str(self.db_path),
                "FULL" if self.durable else "OFF", str(db.BUSY_TIMEOUT_MS)], None

    async def start(self) -> None:
        argv, env = self._command()
        self._proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        try:
            reply = await self._reply()
        except CommitterLost:
            await self.stop()
            raise
        if reply[0] != "ready":
            await self.stop()
            raise CommitRefused(reply[1], f"cannot open {self.db_path}: {reply[2]}", reply[3])
        self.sqlite_version = reply[1]
        self._reader = asyncio.create_task(self._read_replies(), name="eventstore-commit-replies")

    def submit(self, transaction: Transaction, generation: int) -> asyncio.Future[int | None]:
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        if self._lost is not None or self._proc is None or self._proc.stdin is None:
            done.set_exception(self._lost or CommitterLost("the commit process is not running"))
            return done
        try:
            request = frame((generation, transaction))
        except ValueError:  # marshal takes exact types only: str/int/float subclasses (enums) as sqlite3 would
            try:
                request = frame((generation, self._plain(transaction)))
            except TypeError as exc:  # a bug upstream: nothing was sent
                done.set_exception(exc)
                return done
        self._proc.stdin.write(request)  # buffered by the transport until the pipe takes it
        self._waiting.append(done)
        return done

    async def _read_replies(self) -> None:
        """Settle the submitted transactions' futures, in order, as their replies come."""
        try:
            while True:
                reply = await self._reply()
                done = self._waiting.popleft()
                if done.done():
                    continue
                if reply[0] == "ok":
                    self.commits = reply[2]
                    done.set_result(reply[3])  # the shift of the event rows' sequence numbers
                else:
                    done.set_exception(refusal(reply[1], reply[2], reply[3]))
        except CommitterLost as exc:
            self._lost = exc
        finally:
            self._lost = self._lost or CommitterLost("the commit process was stopped")
            while self._waiting:
                done = self._waiting.popleft()
                if not done.done():
                    done.set_exception(self._lost)

    async def _reply(self) -> tuple[Any, ...]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            header = await self._proc.stdout.readexactly(HEADER_BYTES)
            payload = await self._proc.stdout.readexactly(int.from_bytes(header, "big"))
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            code = await self._proc.wait()
            raise CommitterLost(f"the commit process exited (code {code}) without replying") from exc
        return tuple(marshal.loads(payload))

    async def stop(self) -> None:
        """Close the request pipe; the process finishes the transactions in hand and exits."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)  # ends at EOF: settles what is left
        self._proc = None

    def _plain(self, transaction: Transaction) -> Transaction:
        """``transaction`` in the types the protocol carries (``marshal`` takes exact types)."""
        return _exact_types(transaction)


def _exact_types(transaction: Transaction) -> Transaction:
    """``transaction`` with str, int and float subclasses (enum members...) as the plain values
    sqlite3 would bind; any other value is a bug upstream, refused before anything is sent."""
    def plain(value: Any) -> Any:
        if value is None or type(value) in (str, int, float, bytes, bool):
            return value
        if isinstance(value, str):
            return value[:]  # a str subclass sliced whole is an exact str, with the same text
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            return float(value)
        raise TypeError(f"a row value is not a plain DBAPI value: {type(value).__name__} {value!r}")

    return [(sql, [tuple(plain(v) for v in row) for row in rows]) for sql, rows in transaction]
