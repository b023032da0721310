"""Injected faults of the PostgreSQL commit process (tests only; off unless a test passes one).

A ``CommitFault`` cuts the commit process's connection at a fixed point of the ``n``-th
transaction it runs, deterministically, the way a server crash, a network cut or a
terminated backend would:

* ``lost_before_commit:N``: everything but the ``COMMIT`` has reached the server, then the
  connection is cut: the server rolls the transaction back;
* ``answer_lost:N``: the ``COMMIT`` has reached the server and the transaction is committed
  (a second connection waits for ``pg_xact_status`` to say so), then the connection is cut
  before its answer is read;
* either with ``:unreachable``: every connection attempt after the cut fails until that
  transaction is answered (the server cannot be reached in time to learn its outcome).

The cut is a ``shutdown`` of the connection's socket, so psycopg sees what it would see on
a real loss (``server closed the connection unexpectedly``). Production never passes a
fault (``genesis.store.postgres.PostgresProcessCommitter``'s ``fault`` is None).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

FAULTS = ("lost_before_commit", "answer_lost")
_SETTLE_SECONDS = 10.0  # how long answer_lost waits for its transaction to commit (it does at once)


class CommitFault:
    """The fault ``spec`` (``<name>:<n>[:unreachable]``, module docstring)."""

    def __init__(self, spec: str) -> None:
        name, count, *rest = spec.split(":")
        if name not in FAULTS or not count.isdigit() or rest not in ([], ["unreachable"]):
            raise ValueError(f"commit fault {spec!r}: <{'|'.join(FAULTS)}>:<n>[:unreachable]")
        self.name, self.at, self.unreachable = name, int(count), bool(rest)
        self.transactions = 0
        self.fired = False
        self._xid: str | None = None

    def begun(self) -> None:
        """A transaction is being sent."""
        self.transactions += 1

    def _armed(self, name: str) -> bool:
        return not self.fired and self.name == name and self.transactions == self.at

    def before_commit(self, conn: Any, pipeline: Any) -> None:
        """Called with everything but the ``COMMIT`` queued on ``conn``'s ``pipeline``."""
        if self._armed("answer_lost"):  # learn the transaction's id (one round trip, test only)
            cur = conn.cursor()
            cur.execute("SELECT pg_current_xact_id()::text")
            pipeline.sync()
            self._xid = cur.fetchone()[0]
        elif self._armed("lost_before_commit"):
            self._cut(conn)

    def after_commit(self, conn: Any, connect: Callable[[], Any]) -> None:
        """Called with the ``COMMIT`` queued, its answer not yet read."""
        if not self._armed("answer_lost"):
            return
        _flush(conn)
        with connect() as side:
            deadline = time.monotonic() + _SETTLE_SECONDS
            while side.execute("SELECT pg_xact_status(%s::xid8)", (self._xid,)).fetchone()[0] != "committed":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"commit fault: transaction {self._xid} did not commit")
                time.sleep(0.01)
        self._cut(conn)

    def connecting(self) -> None:
        """Called before every connection attempt: fails it, with ``unreachable``, from the cut
        until the next transaction."""
        if self.fired and self.unreachable and self.transactions == self.at:
            import psycopg

            raise psycopg.OperationalError("commit fault: the server cannot be reached")

    def _cut(self, conn: Any) -> None:
        _flush(conn)
        self.fired = True
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


def _flush(conn: Any) -> None:
    """Send what libpq holds for ``conn`` (pipeline mode queues without sending everything)."""
    while conn.pgconn.flush():
        time.sleep(0.001)
