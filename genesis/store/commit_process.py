"""The event store's commit process: runs the writer's transactions on its own SQLite connection.

The daemon's event loop and a writer thread would share one GIL: every row SQLite binds and
every Python step around a commit would be taken from the loop. Here the SQLite work runs in
a child process on another core, and the loop only prepares what to write. The writer still
decides everything (event rows, projection statements, their SQL, as compiled by SQLAlchemy
for SQLite); this process only executes it, one transaction per request, in order.

Standard library only, so it starts in tens of milliseconds. Run as
``python -m genesis.store.commit_process DB_PATH SYNCHRONOUS BUSY_TIMEOUT_MS``.

Protocol, on stdin and stdout: frames of a 4-byte big-endian length and a ``marshal`` payload.
The first reply is ``("ready", sqlite_version)`` (or ``("refused", error class, message)`` if
the database cannot be opened). Each request is a transaction: a list of ``(sql, rows)``, each
run with ``executemany``; its reply is ``("ok",)`` once committed (durably, with
``synchronous=FULL``) or ``("refused", error class, message)`` after a rollback.

Requests are pipelined: the writer may send the next transaction before the reply to the
previous one, and it was prepared on top of it. So each request is ``(generation,
statements)``, ``generation`` being the number of refusals the writer had seen when it
prepared it; a request prepared before a refusal the writer had not yet seen (its generation
is below the number of refusals so far) is refused unrun, as ``EARLIER_FAILED``.

Signals are the daemon's: this process ignores SIGINT, SIGTERM, SIGHUP and SIGUSR1/2 (systemd
and a terminal send them to the whole group). It exits when its stdin closes, after finishing
the transaction in hand: when the daemon stops it, and when the daemon dies.
"""

from __future__ import annotations

import marshal
import os
import signal
import sqlite3
import sys
from typing import Any, BinaryIO

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


def run_transaction(conn: sqlite3.Connection, statements: list[tuple[str, list[Any]]]) -> tuple[Any, ...]:
    """One request: all of ``statements`` committed, or none of them."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        for sql, rows in statements:
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the reply below already says the transaction failed; SQLite rolled back
        return ("refused", type(exc).__name__, str(exc))
    return ("ok",)


def _read_frame(inp: BinaryIO) -> Any | None:
    header = inp.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        return None  # stdin closed: the daemon is done with us
    size = int.from_bytes(header, "big")
    payload = inp.read(size)
    if len(payload) < size:
        return None
    return marshal.loads(payload)


def serve(db_path: str, synchronous: str, busy_timeout_ms: int, inp: BinaryIO, out: BinaryIO) -> int:
    """Answer requests from ``inp`` on ``out`` until ``inp`` closes."""
    try:
        conn = sqlite3.connect(db_path, isolation_level=None)
        for pragma in connection_pragmas(synchronous, busy_timeout_ms):
            conn.execute(pragma)
    except sqlite3.Error as exc:
        out.write(frame(("refused", type(exc).__name__, str(exc))))
        out.flush()
        return 1
    out.write(frame(("ready", sqlite3.sqlite_version)))
    out.flush()
    refusals = 0
    try:
        while (request := _read_frame(inp)) is not None:
            generation, statements = request
            if generation < refusals:
                reply: tuple[Any, ...] = ("refused", EARLIER_FAILED, "an earlier commit failed; nothing was written")
            else:
                reply = run_transaction(conn, statements)
                refusals += reply[0] != "ok"
            out.write(frame(reply))
            out.flush()
    except BrokenPipeError:
        pass  # the daemon went away while we answered: nothing is waiting for the reply
    finally:
        conn.close()
    return 0


def main(argv: list[str]) -> int:
    db_path, synchronous, busy_timeout_ms = argv[0], argv[1], int(argv[2])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    return serve(db_path, synchronous, busy_timeout_ms, sys.stdin.buffer, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
