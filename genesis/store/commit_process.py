"""The event store's commit process: runs the writer's transactions on its own SQLite connection.

The daemon's event loop and a writer thread would share one GIL: every row SQLite binds and
every Python step around a commit would be taken from the loop. Here the SQLite work runs in
a child process on another core, and the loop only prepares what to write. The writer still
decides everything (event rows, projection statements, their SQL, as compiled by SQLAlchemy
for SQLite); this process only executes it, in order.

Standard library only, so it starts in tens of milliseconds. Run as
``python -m genesis.store.commit_process DB_PATH SYNCHRONOUS BUSY_TIMEOUT_MS``.

Protocol, on stdin and stdout: frames of a 4-byte big-endian length and a ``marshal`` payload.
The first reply is ``("ready", sqlite_version)`` (or ``("refused", error class, message, 0)``
if the database cannot be opened). Each request is ``(generation, statements)``, statements
being a list of ``(sql, rows)`` each run with ``executemany``. Every request gets one reply,
in order: ``("ok", failures, commits, 0)`` once committed (durably, with ``synchronous=FULL``) or
``("refused", error class, message, failures)`` after a rollback.

Group commit: whenever it is free, this process commits every request that has arrived as
one transaction (all or none of them), so under load the transactions grow instead of the
queue. ``failures`` counts the transactions refused so far. The writer sends requests
prepared on top of earlier ones before their replies came, with ``generation`` = the
``failures`` it had seen: a request with ``generation < failures`` was prepared on a refused
transaction and is refused unrun (error class ``EARLIER_FAILED``).

Signals are the daemon's: this process ignores SIGINT, SIGTERM, SIGHUP and SIGUSR1/2 (systemd
and a terminal send them to the whole group). It exits when its stdin closes, after finishing
the transaction in hand: when the daemon stops it, and when the daemon dies.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import sqlite3
import sys
from typing import Any, BinaryIO, Callable

HEADER_BYTES = 4
EARLIER_FAILED = "EarlierCommitFailed"


def connection_pragmas(synchronous: str, busy_timeout_ms: int) -> list[str]:
    """The settings of every genesis SQLite connection (``genesis.store.db`` applies the same)."""
    return ["PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={synchronous}",  # FULL: a commit that returned survives power loss
            f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
            "PRAGMA foreign_keys=ON"]


def frame(message: Any) -> bytes:
    payload = marshal.dumps(message)
    return len(payload).to_bytes(HEADER_BYTES, "big") + payload


def run_transaction(conn: sqlite3.Connection, statements: list[tuple[str, list[Any]]]) -> tuple[str, str] | None:
    """All of ``statements`` committed (None), or none of them: (error class, message)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        for sql, rows in statements:
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except (sqlite3.Error, ValueError, OverflowError) as exc:  # (a value it cannot bind: not UTF-8, too big)
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the reply already says the transaction failed; SQLite rolled back
        return type(exc).__name__, str(exc)
    return None


class Requests:
    """Frames from a file descriptor: ``wait()`` blocks until at least one request has arrived
    (False at end of input), ``take()`` returns every request that has arrived."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False

    def _read(self) -> None:
        data = os.read(self.fd, 1 << 20)
        if data:
            self.buffer += data
        else:
            self.eof = True

    def _complete(self) -> bool:
        if len(self.buffer) < HEADER_BYTES:
            return False
        return len(self.buffer) >= HEADER_BYTES + int.from_bytes(self.buffer[:HEADER_BYTES], "big")

    def wait(self) -> bool:
        while not self._complete():
            if self.eof:
                return False
            self._read()
        return True

    def take(self) -> list[Any]:
        while not self.eof and select.select([self.fd], [], [], 0)[0]:
            self._read()  # what else has arrived joins this transaction
        out = []
        while self._complete():
            size = int.from_bytes(self.buffer[:HEADER_BYTES], "big")
            out.append(marshal.loads(self.buffer[HEADER_BYTES:HEADER_BYTES + size]))
            del self.buffer[:HEADER_BYTES + size]
        return out


def serve(db_path: str, synchronous: str, busy_timeout_ms: int, inp: int, out: BinaryIO) -> int:
    """Answer requests from the file descriptor ``inp`` on ``out`` until ``inp`` closes."""
    try:
        conn = sqlite3.connect(db_path, isolation_level=None)
        for pragma in connection_pragmas(synchronous, busy_timeout_ms):
            conn.execute(pragma)
    except sqlite3.Error as exc:
        out.write(frame(("refused", type(exc).__name__, str(exc), 0)))
        out.flush()
        return 1
    out.write(frame(("ready", sqlite3.sqlite_version)))
    out.flush()
    try:
        answer(lambda statements: (run_transaction(conn, statements), 0), inp, out)
    finally:
        conn.close()
    return 0


def answer(run: Callable[[list[tuple[str, list[Any]]]], tuple[tuple[str, str] | None, int]],
           inp: int, out: BinaryIO) -> None:
    """The request loop (group commit, refusals, replies) around ``run(statements)``, which
    commits all of them and returns ``(None, shift)`` or none and returns ``((error class,
    message), 0)``. ``shift``: how far the committed event rows' sequence numbers were moved
    (PostgreSQL, ``genesis.store.pg_commit_process``); replies are ``("ok", failures,
    commits, shift)``."""
    failures = commits = 0
    requests = Requests(inp)
    try:
        while requests.wait():
            batch = requests.take()
            live = [statements for generation, statements in batch if generation >= failures]
            error, shift = run([s for statements in live for s in statements]) if live else (None, 0)
            if live and error is None:
                commits += 1
            failures += error is not None
            for generation, _ in batch:
                if generation < failures - (error is not None):
                    out.write(frame(("refused", EARLIER_FAILED, "an earlier commit failed; nothing was written", failures)))
                elif error is not None:
                    out.write(frame(("refused", *error, failures)))
                else:
                    out.write(frame(("ok", failures, commits, shift)))
            out.flush()
    except BrokenPipeError:
        pass  # the daemon went away while we answered: nothing is waiting for the reply


def protocol_output() -> BinaryIO:
    """Ignore the daemon's signals and take stdout for the replies (a stray print goes to stderr)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    return out


def main(argv: list[str]) -> int:
    db_path, synchronous, busy_timeout_ms = argv[0], argv[1], int(argv[2])
    return serve(db_path, synchronous, busy_timeout_ms, sys.stdin.fileno(), protocol_output())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
