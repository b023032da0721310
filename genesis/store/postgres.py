"""The PostgreSQL adapter of the event store's commit path: global order = commit order.

On SQLite one writer holds the database's write lock for the whole transaction, so the
sequence numbers the writer planned (``max + 1`` onwards) are committed in their order. On
PostgreSQL transactions run concurrently (another daemon taking over, a second writer by
mistake), and a ``SERIAL``/``IDENTITY`` value is drawn at insert time, not at commit: a
transaction may commit number 11 after a reader has already seen 12 and moved past it.

``PostgresCommitter`` closes that hole the way the ``eventsourcing`` library's PostgreSQL
recorder does: every transaction that appends events first takes
``LOCK TABLE events IN EXCLUSIVE MODE``. That mode conflicts with itself and with every
writer of ``events``, not with plain ``SELECT``s: readers never wait, and appenders are
serialised from the lock to their commit. Under the lock the transaction reads
``max(sequence_number)`` (one index lookup) and, if another writer appended since the rows
were planned, shifts its rows' sequence numbers to follow it. Numbers are therefore assigned
in commit order with no gaps: a reader that has seen N never later finds a new event below N.
The writer learns the shift from the committer's future and reports the committed numbers.

``fence`` (``genesis.store.leases.SqlFence``, both committers): the daemon's account-lease
check as a statement sent with every transaction (``genesis.store.pg_fence``); the commit
process runs it in the same pipeline as the lock, the shift, the statements and the commit.
``precondition(conn)`` (see ``genesis.store.committers``; the thread committer only) runs
after the lock, inside the same transaction: a check in Python that must hold at commit.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError

from genesis.store.batch import event_id_at, event_insert_sql
from genesis.store.committers import LEASE_LOST, CommitRefused, ProcessCommitter, ThreadCommitter, Transaction
from genesis.store.leases import SqlFence
from genesis.store.pg_commit_outcome import OUTCOME_DEADLINE_SECONDS, refused_by_server
from genesis.store.pg_commit_process import LOCK_EVENTS, NEXT_SEQUENCE, shift_for, shifted
from genesis.store.pg_fence import hoisted
from genesis.store.pg_set_rows import COLUMN_TYPES_SQL, column_types, merged, set_based
from genesis.store.pg_thread_outcome import LostCommits, Planned


def fenced(fence: SqlFence | None, transaction: Transaction, submit: Callable[[Transaction], asyncio.Future[Any]]
           ) -> asyncio.Future[Any]:
    """``submit(transaction)`` with the fence's statement first; a refusal by the fence is
    reported to ``fence.refused``."""
    if fence is None:
        return submit(transaction)
    done = submit([fence.statement(), *transaction])
    done.add_done_callback(lambda f: _report_refusal(fence, f))
    return done


def _report_refusal(fence: SqlFence, done: asyncio.Future[Any]) -> None:
    if done.cancelled():
        return
    exc = done.exception()
    if isinstance(exc, CommitRefused) and exc.error_class == LEASE_LOST:
        fence.refused(str(exc))


class PostgresCommitter(ThreadCommitter):
    """``ThreadCommitter`` over a psycopg engine, serialising appends of events by a table
    lock so that sequence numbers follow commit order (module docstring)."""

    def __init__(self, engine: Engine, precondition: Callable[[Connection], None] | None = None,
                 fence: SqlFence | None = None, outcome_deadline_s: float = OUTCOME_DEADLINE_SECONDS) -> None:
        super().__init__(engine, precondition)
        self.fence = fence
        self._events_sql, self._seq_at = event_insert_sql(engine.dialect)
        self._id_at = event_id_at(engine.dialect)
        self._lost = LostCommits(engine, outcome_deadline_s)  # a COMMIT whose answer was lost: settled
        self._planned = Planned(None, None, [])
        self._types: dict[str, dict[str, str]] | None = None  # the tables' column types (set_based), read once

    def _commit(self, transaction: Transaction) -> int:
        """Commit as ``ThreadCommitter`` does; a ``COMMIT`` sent whose answer was lost is settled
        (``genesis.store.pg_thread_outcome``) instead of being reported refused."""
        with self.engine.connect() as conn:
            self._lost.end_unsettled(conn)
            committing = False
            try:
                with conn.begin():
                    shift = self._execute(conn, transaction)
                    planned, old, driver = self._planned, self._lost.backend(conn), conn.connection.driver_connection
                    committing = True  # leaving the block sends COMMIT
            except DBAPIError as exc:
                if not committing or refused_by_server(exc.orig, driver):
                    raise
                lost: BaseException = exc.orig
            else:
                return shift
        self.engine.dispose()  # the next commit connects anew
        return self._lost.settle(lost, old, planned, lambda: ThreadCommitter._commit(self, transaction))

    def submit(self, transaction: Transaction, generation: int) -> asyncio.Future[int]:
        return fenced(self.fence, transaction, lambda t: super(PostgresCommitter, self).submit(t, generation))

    def _execute(self, conn: Connection, transaction: Transaction) -> int:
        transaction = merged(hoisted(transaction), self._events_sql)  # one check, one event insert
        event_rows = [rows for sql, rows in transaction if sql == self._events_sql and rows]
        self._planned = Planned(str(event_rows[0][0][self._id_at]), event_rows[0][0][self._seq_at], transaction
                                ) if event_rows else Planned(None, None, transaction)
        shift = 0
        if event_rows:
            conn.exec_driver_sql(LOCK_EVENTS)
        if self.precondition is not None:
            self.precondition(conn)  # under the lock: nobody appends between the check and the commit
        if event_rows:
            next_free = int(conn.exec_driver_sql(NEXT_SEQUENCE).scalar_one())
            shift = shift_for(next_free, event_rows[0][0], self._seq_at)
        if shift:
            transaction = [(sql, shifted(rows, self._seq_at, shift) if sql == self._events_sql else rows)
                           for sql, rows in transaction]
        if self._types is None:
            self._types = column_types(conn.exec_driver_sql(COLUMN_TYPES_SQL).all())
        for sql, rows in transaction:  # many rows of one statement: one set-based statement
            one = set_based(sql, rows, types=self._types)
            if one is not None:
                conn.exec_driver_sql(*one)
            else:
                conn.exec_driver_sql(sql, rows)
        return shift




class PostgresProcessCommitter(ProcessCommitter):
    """The commit process on PostgreSQL (``genesis.store.pg_commit_process``): same locking
    and shifting as ``PostgresCommitter``, with psycopg's per-row work on another core.
    Money and times travel as text (the SQL casts them); the ``fence`` goes as SQL; no
    ``precondition`` (Python would have to run in the child: use ``PostgresCommitter``)."""

    driver = "psycopg"

    def __init__(self, engine: Engine, durable: bool = True, fence: SqlFence | None = None,
                 outcome_deadline_s: float = OUTCOME_DEADLINE_SECONDS, fault: str | None = None) -> None:
        super().__init__("", durable)
        self.fence = fence
        self.outcome_deadline_s = outcome_deadline_s  # a lost commit's answer: how long to keep asking
        self.fault = fault  # tests only: a ``genesis.store.pg_commit_faults`` spec the commit process injects
        self.url: URL = engine.url
        self._events_sql, self._seq_at = event_insert_sql(engine.dialect)
        self._id_at = event_id_at(engine.dialect)
        if not isinstance(self._seq_at, int):
            raise ValueError("the PostgreSQL commit process takes positional rows (paramstyle 'format')")

    def submit(self, transaction: Transaction, generation: int) -> asyncio.Future[int | None]:
        return fenced(self.fence, transaction, lambda t: super(PostgresProcessCommitter, self).submit(t, generation))

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        env = {**os.environ, "GENESIS_COMMIT_DSN": self.url.set(drivername="postgresql").render_as_string(
            hide_password=False), "GENESIS_EVENTS_SQL": self._events_sql}
        return [sys.executable, "-m", "genesis.store.pg_commit_process", "on" if self.durable else "off",
                str(self._seq_at), str(self._id_at), str(self.outcome_deadline_s),
                *([self.fault] if self.fault else [])], env

    def _plain(self, transaction: Transaction) -> Transaction:
        """Rows the fast path could not send as they are (the writer's dialect binds money and
        times as text already: ``genesis.store.db.writer_engine``)."""
        return [(sql, [tuple(_plain_value(v) for v in row) for row in rows]) for sql, rows in transaction]


def _plain_value(value: Any) -> Any:
    """A driver value as marshal carries it: Decimal and datetime as text the server casts."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if type(value) in (str, int, float, bool) or value is None:
        return value
    if isinstance(value, str):
        return value[:]
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"a row value is not a plain DBAPI value: {type(value).__name__} {value!r}")
