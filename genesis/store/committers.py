"""Where the event store's writer runs its transactions: two adapters with one contract.

A transaction is a list of ``(sql, rows)``: SQL compiled by SQLAlchemy for the database's
dialect and rows of plain DBAPI values (``genesis.store.bulk.driver_rows``), run in order with
``executemany`` and committed, or not at all. ``commit`` returns once the transaction is
durable; it raises ``CommitRefused`` when the database refused it (nothing was written) and
``CommitterLost`` when the outcome cannot be known (the commit process died): the writer
then stops, and a restart recovers from what the database holds.

- ``ProcessCommitter`` (the default for the daemon): a child process with its own SQLite
  connection (``genesis.store.commit_process``), so the SQLite work and its fsync run on
  another core instead of sharing the GIL with the event loop.
- ``ThreadCommitter``: a worker thread through a blocking SQLAlchemy engine, in process. Its
  engine takes SQLAlchemy event hooks (the storage fault tests inject failures through them).
"""

from __future__ import annotations

import asyncio
import marshal
import sys
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from genesis.store import db
from genesis.store.commit_process import HEADER_BYTES, frame

Transaction = list[tuple[str, list[Any]]]

STOP_TIMEOUT_SECONDS = 30.0  # the commit process finishes the transaction in hand, then exits


class CommitRefused(Exception):
    """The database refused the transaction (locked, read-only, full...); nothing was written."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(f"(sqlite3.{error_class}) {message}")
        self.error_class = error_class


class CommitterLost(Exception):
    """The committer can no longer commit, and whether the transaction in hand was committed is
    unknown (the commit process died or its replies are out of step)."""


class Committer(Protocol):
    async def start(self) -> None: ...

    async def commit(self, transaction: Transaction) -> None: ...

    async def stop(self) -> None: ...


class ThreadCommitter:
    """Runs each transaction in a worker thread through ``engine`` (blocking, same file and
    settings)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def start(self) -> None:
        pass

    async def commit(self, transaction: Transaction) -> None:
        try:
            await asyncio.to_thread(self._run, transaction)
        except DBAPIError as exc:
            raise CommitRefused(type(exc.orig).__name__, str(exc.orig)) from exc

    def _run(self, transaction: Transaction) -> None:
        with self.engine.begin() as conn:
            for sql, rows in transaction:
                conn.exec_driver_sql(sql, rows)

    async def stop(self) -> None:
        self.engine.dispose()


class ProcessCommitter:
    """Runs each transaction in the commit process (``genesis.store.commit_process``), one at a
    time. ``durable=False`` (throwaway backtest files) commits without fsync."""

    def __init__(self, db_path: str | Path, durable: bool = True) -> None:
        self.db_path = Path(db_path)
        self.durable = durable
        self._proc: asyncio.subprocess.Process | None = None
        self._in_step = True  # False while a request awaits its reply (or after one was abandoned)
        self.sqlite_version = ""

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genesis.store.commit_process", str(self.db_path),
            "FULL" if self.durable else "OFF", str(db.BUSY_TIMEOUT_MS),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        reply = await self._reply()
        if reply[0] != "ready":
            await self.stop()
            raise CommitRefused(reply[1], f"cannot open {self.db_path}: {reply[2]}")
        self.sqlite_version = reply[1]

    async def commit(self, transaction: Transaction) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise CommitterLost("the commit process is not running")
        if not self._in_step:
            raise CommitterLost("a transaction was abandoned half-way: its outcome is unknown")
        try:
            request = frame(transaction)
        except ValueError:  # marshal takes exact types only: str/int/float subclasses (enums) as sqlite3 would
            request = frame(_exact_types(transaction))
        self._in_step = False
        try:
            proc.stdin.write(request)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise CommitterLost(f"the commit process is gone ({exc!r})") from exc
        reply = await self._reply()
        self._in_step = True
        if reply[0] != "ok":
            raise CommitRefused(reply[1], reply[2])

    async def _reply(self) -> tuple[Any, ...]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            header = await self._proc.stdout.readexactly(HEADER_BYTES)
            payload = await self._proc.stdout.readexactly(int.from_bytes(header, "big"))
        except asyncio.IncompleteReadError as exc:
            code = await self._proc.wait()
            raise CommitterLost(f"the commit process exited (code {code}) without replying") from exc
        return tuple(marshal.loads(payload))

    async def stop(self) -> None:
        """Close the request pipe; the process finishes the transaction in hand and exits."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


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
