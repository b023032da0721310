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
from genesis.store.pg_pipeline import PreparedPipeline, plan
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
    pipe = PreparedPipeline(conn)

    def one_transaction(statements: list[tuple[str, list[Any]]], first: Any) -> list[tuple[str, list[Any]]]:
        """``statements`` with the transaction's own: BEGIN, the lock and the shift (when it
        appends: ``first`` is its first planned sequence number), COMMIT; set-based where it can."""
        out: list[tuple[str, list[Any]]] = [("BEGIN", [()])]
        if first is not None:
            out += [(LOCK_EVENTS, [()]), (SET_SHIFT, [(first,)])]
        for sql, rows in statements:
            events = first is not None and sql == events_sql
            one = set_based(sql, rows, SHIFTED_SEQUENCE if events else ())
            out.append((one[0], [one[1]]) if one is not None else (shifting_sql if events else sql, rows))
        return [*out, ("COMMIT", [()])]

    def run(statements: list[tuple[str, list[Any]]]) -> tuple[tuple[str, str] | None, int]:
        nonlocal conn, pipe
        statements = hoisted(statements)  # the lease fence (genesis.store.pg_fence): once, first
        statements = merged(statements, events_sql)  # one event insert, fewer updates
        appends = [rows for sql, rows in statements if sql == events_sql and rows]
        transaction = one_transaction(statements, appends[0][0][seq_at] if appends else None)
        try:
            if conn.closed:
                conn = connect()
                pipe = PreparedPipeline(conn)
            commands = plan(transaction) if conn.info.encoding == "utf-8" else None  # its text is UTF-8
            try:
                if commands is not None:  # one flush, one sync, prepared statements
                    results = pipe.run(commands)
                    return None, int(results[2].get_value(0, 0)) if appends else 0
                with conn.pipeline():  # psycopg's: one round trip, one sync
                    cursors = [conn.cursor() for _ in transaction]
                    for cur, (sql, rows) in zip(cursors, transaction):
                        if len(rows) == 1:
                            cur.execute(sql, rows[0] or None)
                        else:
                            cur.executemany(sql, rows)
            except psycopg.Error:
                rollback(conn)  # a failed statement: the server skipped the rest, COMMIT too
                raise
            return None, int(cursors[2].fetchone()[0]) if appends else 0  # type: ignore[index]
        except psycopg.Error as exc:
            return (type(exc).__name__, str(exc).strip()), 0

    try:
        answer(run, sys.stdin.fileno(), out)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
