"""The event store's commit process on PostgreSQL: the writer's transactions on a psycopg
connection of its own, in a child process (as ``genesis.store.commit_process`` does for
SQLite): psycopg's per-row work runs on another core instead of taking the event loop's GIL.

Same protocol and group commit as ``genesis.store.commit_process`` (``answer``). Every
transaction that appends events first takes ``LOCK TABLE events IN EXCLUSIVE MODE``; under
it the server computes how far the planned sequence numbers must move to follow the last
committed event (0 unless another writer appended since they were planned:
``genesis.store.postgres`` explains why) and the insert applies it, so the whole transaction
goes in one pipeline, one round trip; the reply carries the shift. The lease fence, when the
daemon sends one (``genesis.store.pg_fence``), is a statement of the transaction like the
others: run once per commit, first, in the same pipeline. Many rows of one statement
go as one set-based statement (``genesis.store.pg_set_rows``): the event rows, the
projection updates of a whole transaction; the requests committed together are merged first
(``merged``: one event insert per commit, updates of one shape together where that gives the
same result).

Run as ``python -m genesis.store.pg_commit_process SYNCHRONOUS_COMMIT SEQUENCE_AT`` with the
connection string in ``$GENESIS_COMMIT_DSN`` (never on the command line: it may hold a
password) and the SQL of the event insert in ``$GENESIS_EVENTS_SQL``. Row values arrive as
str/int/float/None (money and times as text: the SQL casts them).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from genesis.store.commit_process import answer, frame, protocol_output
from genesis.store.pg_fence import hoisted
from genesis.store.pg_set_rows import merged, set_based

LOCK_EVENTS = "LOCK TABLE events IN EXCLUSIVE MODE"
NEXT_SEQUENCE = "SELECT COALESCE(MAX(sequence_number), 0) + 1 FROM events"


# under the lock: how far the planned numbers (the first is the parameter) must move to follow
# the last committed event; kept for the transaction, read by the insert, returned to the writer
SET_SHIFT = ("SELECT set_config('genesis.sequence_shift', "
             "(COALESCE(MAX(sequence_number), 0) + 1 - %s::integer)::text, true)::integer FROM events")
_PARAMETER = re.compile(r"%s")
# the event insert's sequence number, set-based (``set_based``'s ``replace``): moved by the shift
SHIFTED_SEQUENCE = (("sequence_number", "v.sequence_number + current_setting('genesis.sequence_shift')::integer"),)


def shifting_insert(events_sql: str, seq_at: int) -> str:
    """The event insert with its ``seq_at``-th parameter (the sequence number) moved by the
    transaction's ``genesis.sequence_shift``."""
    found = list(_PARAMETER.finditer(events_sql))[seq_at]
    return (events_sql[:found.start()] + "(%s + current_setting('genesis.sequence_shift')::integer)"
            + events_sql[found.end():])


def shifted(rows: list[Any], at: int | str, shift: int) -> list[Any]:
    """Event rows with their sequence number (at index or key ``at``) moved by ``shift``."""
    if isinstance(at, str):
        return [{**row, at: row[at] + shift} for row in rows]
    return [(*row[:at], row[at] + shift, *row[at + 1:]) for row in rows]


def shift_for(next_free: int, first_row: Any, at: int | str) -> int:
    """How far the planned event rows must move so that the first (``first_row``) takes ``next_free``."""
    return next_free - first_row[at]


def rollback(conn: Any) -> None:
    """End the failed transaction on ``conn`` (nothing to do if the connection is lost: the
    server rolled back, and the next transaction reconnects)."""
    import psycopg

    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass


def main(argv: list[str]) -> int:
    import psycopg

    synchronous_commit, seq_at = argv[0], int(argv[1])
    dsn, events_sql = os.environ.pop("GENESIS_COMMIT_DSN"), os.environ["GENESIS_EVENTS_SQL"]
    out = protocol_output()

    def connect() -> psycopg.Connection:
        return psycopg.connect(dsn, options=f"-c synchronous_commit={synchronous_commit}",
                               application_name="genesis commit process", autocommit=True)  # BEGIN is ours

    try:
        conn = connect()
    except psycopg.Error as exc:
        out.write(frame(("refused", type(exc).__name__, str(exc).strip(), 0)))
        out.flush()
        return 1
    out.write(frame(("ready", str(conn.info.server_version))))
    out.flush()

    shifting_sql = shifting_insert(events_sql, seq_at)

    def run(statements: list[tuple[str, list[Any]]]) -> tuple[tuple[str, str] | None, int]:
        nonlocal conn
        statements = hoisted(statements)  # the lease fence (genesis.store.pg_fence): once, first
        statements = merged(statements, events_sql)  # one event insert, fewer updates
        appends = [rows for sql, rows in statements if sql == events_sql and rows]
        try:
            if conn.broken:
                conn = connect()
            shift, cur = conn.cursor(), conn.cursor()
            try:
                with conn.pipeline():  # one round trip, one sync: nothing waits on a result
                    cur.execute("BEGIN")
                    if appends:
                        cur.execute(LOCK_EVENTS)
                        shift.execute(SET_SHIFT, (appends[0][0][seq_at],))
                    for sql, rows in statements:
                        events = bool(appends) and sql == events_sql
                        one = set_based(sql, rows, SHIFTED_SEQUENCE if events else ())
                        if one is not None:
                            cur.execute(*one)
                        else:
                            cur.executemany(shifting_sql if events else sql, rows)
                    cur.execute("COMMIT")
            except psycopg.Error:
                rollback(conn)  # a failed statement: the server skipped the rest, COMMIT too
                raise
            return None, int(shift.fetchone()[0]) if appends else 0  # type: ignore[index]
        except psycopg.Error as exc:
            return (type(exc).__name__, str(exc).strip()), 0

    try:
        answer(run, sys.stdin.fileno(), out)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
