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

``precondition(conn)`` (see ``genesis.store.committers``) runs after the lock, inside the same
transaction: the place for a check that must hold at commit, e.g. a writer lease's epoch.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy.engine import Connection, Engine

from genesis.store.batch import event_insert_sql
from genesis.store.committers import ThreadCommitter, Transaction, run_statements

LOCK_EVENTS = "LOCK TABLE events IN EXCLUSIVE MODE"
NEXT_SEQUENCE = "SELECT COALESCE(MAX(sequence_number), 0) + 1 FROM events"


class PostgresCommitter(ThreadCommitter):
    """``ThreadCommitter`` over a psycopg engine, serialising appends of events by a table
    lock so that sequence numbers follow commit order (module docstring)."""

    def __init__(self, engine: Engine, precondition: Callable[[Connection], None] | None = None) -> None:
        super().__init__(engine, precondition)
        self._events_sql = event_insert_sql(engine.dialect)

    def _execute(self, conn: Connection, transaction: Transaction) -> int:
        event_rows = [rows for sql, rows in transaction if sql == self._events_sql and rows]
        shift = 0
        if event_rows:
            conn.exec_driver_sql(LOCK_EVENTS)
        if self.precondition is not None:
            self.precondition(conn)  # under the lock: nobody appends between the check and the commit
        if event_rows:
            next_free = int(conn.exec_driver_sql(NEXT_SEQUENCE).scalar_one())
            shift = next_free - event_rows[0][0]["sequence_number"]
        if shift:
            transaction = [(sql, _shifted(rows, shift) if sql == self._events_sql else rows)
                           for sql, rows in transaction]
        run_statements(conn, transaction)
        return shift


def _shifted(rows: list[Any], shift: int) -> list[dict[str, Any]]:
    return [{**row, "sequence_number": row["sequence_number"] + shift} for row in rows]

