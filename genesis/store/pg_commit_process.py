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

A commit whose answer is lost with the connection is settled before it is answered: the
commit process reconnects and finds out whether it committed (``genesis.store.pg_commit_outcome``,
which also bounds every connection's waits: ``connect_params``).

Run as ``python -m genesis.store.pg_commit_process SYNCHRONOUS_COMMIT SEQUENCE_AT EVENT_ID_AT
OUTCOME_DEADLINE_SECONDS [FAULT]`` (FAULT: tests only, ``genesis.store.pg_commit_faults``) with the
connection string in ``$GENESIS_COMMIT_DSN`` (never on the command line: it may hold a
password) and the SQL of the event insert in ``$GENESIS_EVENTS_SQL``. Row values arrive as
str/int/float/None (money and times as text: the SQL casts them).
"""

from __future__ import annotations

import gc
import os
import re
import sys
import time
from typing import Any, Callable

from genesis.store.commit_process import answer, frame, protocol_output
from genesis.store.pg_commit_faults import CommitFault
from genesis.store.pg_commit_outcome import (FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, Backend, backend_of,
                                             connect_params, end_backend, find_event, first_event_id, idempotent,
                                             not_committed, refused_by_client, refused_by_server, settle, unknown)
from genesis.store.pg_fence import hoisted
from genesis.store.pg_pipeline import PreparedPipeline, plan
from genesis.store.pg_set_rows import COLUMN_TYPES_SQL, column_types, merged, set_based

LOCK_EVENTS = "LOCK TABLE events IN EXCLUSIVE MODE"
NEXT_SEQUENCE = "SELECT COALESCE(MAX(sequence_number), 0) + 1 FROM events"
# the cyclic garbage collector's first threshold once started: the rows of a commit (tuples by
# the thousand, freed by reference counting) no longer set off a collection every 700
GC_FIRST_THRESHOLD = 50_000


# under the lock: how far the planned numbers (the first is the parameter) must move to follow
# the last committed event; kept for the transaction, read by the insert, returned to the writer
SET_SHIFT = ("SELECT set_config('genesis.sequence_shift', "
             "(COALESCE(MAX(sequence_number), 0) + 1 - %s::integer)::text, true)::integer FROM events")
_PARAMETER = re.compile(r"%s")
# the event insert's sequence number, set-based (``set_based``'s ``replace``): moved by the shift
# (a sub-select: read once a statement, not once a row)
SHIFTED_SEQUENCE = (("sequence_number",
                     "v.sequence_number + (SELECT current_setting('genesis.sequence_shift')::integer)"),)


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


class Commits:
    """The commit process's transactions on its connection (``run`` is ``answer``'s); a commit
    whose answer was lost is settled before it is answered (``genesis.store.pg_commit_outcome``).
    ``connect()``: the commit connection; ``connect(seconds)``: a settling one, bounded by them."""

    def __init__(self, connect: Callable[..., Any], events_sql: str, seq_at: int, id_at: int, deadline_s: float,
                 fault: CommitFault | None = None) -> None:
        self.connect, self.events_sql, self.seq_at, self.id_at = connect, events_sql, seq_at, id_at
        self.shifting_sql = shifting_insert(events_sql, seq_at)
        self.deadline_s, self.fault = deadline_s, fault
        self.conn = connect()
        self.backend = backend_of(self.conn)
        self.unsettled: Backend | None = None  # ran a commit whose outcome is unknown: ended before the next one
        self.pipe: PreparedPipeline | None = None  # on ``conn``: its prepared statements
        self.commit_queued = False  # the running transaction's COMMIT is queued: it may have been sent
        # the tables' column types, read once (set_based; a table or column made later: row at a time)
        self.types = column_types(self.conn.execute(COLUMN_TYPES_SQL).fetchall())

    def run(self, statements: list[tuple[str, list[Any]]]) -> tuple[tuple[str, str] | None, int]:
        """Commit ``statements`` (``None``, shift) or not: ((error class, message), 0)."""
        import psycopg

        statements = hoisted(statements)  # the lease fence (genesis.store.pg_fence): once, first
        statements = merged(statements, self.events_sql)  # one event insert, fewer updates
        appends = [rows for sql, rows in statements if sql == self.events_sql and rows]
        if self.fault is not None:
            self.fault.begun()
        try:
            if self.conn.broken or self.conn.closed:  # lost since the last commit: nothing of this one is sent yet
                conn = self.connect()
                self.conn, self.backend = conn, backend_of(conn)
            if self.unsettled is not None:  # its transaction is over before this one may commit
                end_backend(self.conn, self.unsettled)
                self.unsettled = None
        except psycopg.Error as exc:
            return (type(exc).__name__, str(exc).strip()), 0
        try:
            return None, self._send(statements, appends)
        except psycopg.Error as exc:
            if self._refused(exc):
                rollback(self.conn)  # a failed statement: the rest, COMMIT too, was skipped or never sent
                return (type(exc).__name__, str(exc).strip()), 0
            return self._settle(exc, statements, appends)
        except (ValueError, OverflowError) as exc:  # a value psycopg cannot send (not UTF-8...): not committed
            rollback(self.conn)  # (the writer refuses such values first: genesis.store.value_checks)
            return (type(exc).__name__, str(exc)), 0

    def _refused(self, exc: Exception) -> bool:
        """Was the transaction refused (by the server, or by psycopg before its COMMIT was queued)
        on an intact connection, so that it did not commit? (``genesis.store.pg_commit_outcome``)"""
        return refused_by_server(exc, self.conn) or refused_by_client(exc, self.conn, self.commit_queued)

    def _send(self, statements: list[tuple[str, list[Any]]], appends: list[list[Any]]) -> int:
        """One pipeline: BEGIN, the lock and shift (with events), the statements, COMMIT; the shift.
        libpq's pipeline of prepared statements (``genesis.store.pg_pipeline``) when it carries
        every value and no fault is injected; psycopg's ``pipeline()`` otherwise."""
        commands, self.commit_queued = None, False
        if self.fault is None and self.conn.info.encoding == "utf-8":  # its text parameters are UTF-8
            commands = plan(self._transaction(statements, appends[0][0][self.seq_at] if appends else None))
        if commands is not None:
            if self.pipe is None or self.pipe.conn is not self.conn:
                self.pipe = PreparedPipeline(self.conn)
            self.commit_queued = True  # the whole transaction goes in one flush
            results = self.pipe.run(commands)
            return int(results[2].get_value(0, 0)) if appends else 0
        conn, fault = self.conn, self.fault
        shift, cur = conn.cursor(), conn.cursor()
        with conn.pipeline() as pipeline:  # one round trip, one sync: nothing waits on a result
            cur.execute("BEGIN")
            if appends:
                cur.execute(LOCK_EVENTS)
                shift.execute(SET_SHIFT, (appends[0][0][self.seq_at],))
            for sql, rows in statements:
                events = bool(appends) and sql == self.events_sql
                one = set_based(sql, rows, SHIFTED_SEQUENCE if events else (), self.types)
                if one is not None:
                    cur.execute(*one)
                else:
                    cur.executemany(self.shifting_sql if events else sql, rows)
            if fault is not None:
                fault.before_commit(conn, pipeline)
            self.commit_queued = True
            cur.execute("COMMIT")
            if fault is not None:
                fault.after_commit(conn, self.connect)
        return int(shift.fetchone()[0]) if appends else 0  # type: ignore[index]

    def _transaction(self, statements: list[tuple[str, list[Any]]], first: Any) -> list[tuple[str, list[Any]]]:
        """``statements`` with the transaction's own: BEGIN, the lock and the shift (when it
        appends: ``first`` is its first planned sequence number), COMMIT; set-based where it can."""
        out: list[tuple[str, list[Any]]] = [("BEGIN", [()])]
        if first is not None:
            out += [(LOCK_EVENTS, [()]), (SET_SHIFT, [(first,)])]
        for sql, rows in statements:
            events = first is not None and sql == self.events_sql
            one = set_based(sql, rows, SHIFTED_SEQUENCE if events else (), self.types)
            out.append((one[0], [one[1]]) if one is not None else (self.shifting_sql if events else sql, rows))
        return [*out, ("COMMIT", [()])]

    def _settle(self, lost: Exception, statements: list[tuple[str, list[Any]]],
                appends: list[list[Any]]) -> tuple[tuple[str, str] | None, int]:
        """The commit's outcome is open (its connection lost...): find out (``pg_commit_outcome``)."""
        import psycopg

        self.conn.close()
        event_id = first_event_id(appends, self.id_at)
        if event_id is None and not idempotent(statements):
            self.unsettled = self.backend
            return unknown(lost, "a transaction without events that cannot be run again"), 0
        end, delay = time.monotonic() + self.deadline_s, FIRST_BACKOFF_SECONDS
        try:
            while (left_s := end - time.monotonic()) > 0:  # first: a run again that fails at once must not spin
                found = settle(self.connect, self.backend, lambda c: (backend_of(c), find_event(c, event_id)), left_s)
                if found is None:
                    break
                self.conn, (self.backend, row) = found
                if event_id is not None:  # committed iff its first event row is there
                    if row is None:
                        return not_committed(lost), 0
                    return None, int(row[0]) - int(appends[0][0][self.seq_at])
                try:  # updates by key only: run them again on the new connection
                    return None, self._send(statements, appends)
                except psycopg.Error as exc:
                    if self._refused(exc):
                        rollback(self.conn)
                        return unknown(exc, "running it again was refused"), 0
                    self.conn.close()
                    lost = exc
                    time.sleep(min(delay, max(0.0, end - time.monotonic())))  # backing off, as settle does
                    delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            self.unsettled = self.backend
            return unknown(lost, f"the server could not be asked within {self.deadline_s:g} s"), 0
        finally:
            self.conn.close()  # a settling connection (its statement_timeout): the next commit connects anew


def main(argv: list[str]) -> int:
    import psycopg

    synchronous_commit, seq_at, id_at, deadline_s = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    fault = CommitFault(argv[4]) if len(argv) > 4 else None  # tests only (genesis.store.pg_commit_faults)
    dsn, events_sql = os.environ.pop("GENESIS_COMMIT_DSN"), os.environ["GENESIS_EVENTS_SQL"]
    out = protocol_output()

    def connect(left_s: float | None = None) -> psycopg.Connection:
        """The commit connection, or (``left_s``) a settling one within the seconds left."""
        if fault is not None:
            fault.connecting()
        return psycopg.connect(dsn, **connect_params(f"-c synchronous_commit={synchronous_commit}", left_s),
                               application_name="genesis commit process", autocommit=True)  # BEGIN is ours

    try:
        commits = Commits(connect, events_sql, seq_at, id_at, deadline_s, fault)
    except psycopg.Error as exc:
        out.write(frame(("refused", type(exc).__name__, str(exc).strip(), 0)))
        out.flush()
        return 1
    gc.freeze()  # the modules and the connection live as long as the process: never traversed again
    gc.set_threshold(GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])
    out.write(frame(("ready", str(commits.conn.info.server_version))))
    out.flush()
    try:
        answer(commits.run, sys.stdin.fileno(), out)
    finally:
        commits.conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
