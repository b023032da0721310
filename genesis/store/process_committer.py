"""``ProcessCommitter``: the writer's transactions in the commit process
(``genesis.store.commit_process``), with its own SQLite connection, so the SQLite work and
its fsync run on another core (the contract: ``genesis.store.committers``)."""

from __future__ import annotations

import asyncio
import collections
import marshal
import sys
from pathlib import Path
from typing import Any

from genesis.store import db
from genesis.store.commit_contract import CommitRefused, CommitterLost, Refusals, Transaction, refusal
from genesis.store.commit_process import HEADER_BYTES, frame

STOP_TIMEOUT_SECONDS = 30.0  # the commit process finishes the transactions in hand, then exits


class ProcessCommitter(Refusals):
    """Runs the transactions in the commit process (``genesis.store.commit_process``), in order.
    ``durable=False`` (throwaway backtest files) commits without fsync."""

    driver = "sqlite3"  # the database driver the commit process uses (named in refusals)

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
                    done.set_exception(refusal(reply[1], reply[2], reply[3], self.driver))
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
