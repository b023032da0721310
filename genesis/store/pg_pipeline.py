"""One PostgreSQL transaction as one libpq pipeline of prepared statements: the commit
process' fast path (``genesis.store.pg_commit_process``).

psycopg's ``pipeline()`` sends and polls after every statement it queues (a system call or
two each, ~7 statements a commit) and runs its cursor machinery per statement. Here the
whole transaction is queued on the connection's ``pgconn`` and goes out in one flush, ending
in one sync; each statement's SQL is prepared once per connection (``send_prepare``, in the
same pipeline as its first use) and then run by name (``send_query_prepared``), so the
server parses and plans it once, as psycopg's own automatic preparation would.

What stays psycopg's: connecting and reconnecting (``conn.broken`` reads the same
``pgconn``), waiting (``conn.wait`` with psycopg's ``pipeline_communicate`` and
``fetch_many``), and the error of a refused statement (``psycopg.errors.error_from_result``:
the same class and message as a cursor would raise, e.g. ``UniqueViolation``).

Parameters go as text of unknown type, which the server reads with the type the statement
gives them (its column, or the cast the SQL writes), as psycopg sends Python ``str``. A
transaction ``plan`` cannot carry exactly (a value other than str/int/float/bool/None, a
string with a NUL, which libpq would cut there, or a ``%`` the ``format`` paramstyle does not
know) is None: the caller uses psycopg's pipeline, which sends it or refuses it by name.
"""

from __future__ import annotations

import re
from collections import deque
from functools import lru_cache, partial
from typing import Any, Callable

MAX_PREPARED = 500  # distinct statements prepared per connection; any more run unprepared
_PLACEHOLDER = re.compile(r"%%|%s|%")

Command = tuple[bytes, list[bytes | None]]  # SQL with $n placeholders, text parameters


@lru_cache(maxsize=MAX_PREPARED)  # a few distinct statements, converted once each
def dollar_sql(sql: str) -> bytes | None:
    """``sql`` (paramstyle ``format``: ``%s``, ``%%``) with ``$1``, ``$2``... placeholders, or
    None when it holds any other ``%``."""
    count = 0

    def placeholder(found: re.Match[str]) -> str:
        nonlocal count
        if found[0] == "%%":
            return "%"
        if found[0] == "%":
            raise ValueError(sql)
        count += 1
        return f"${count}"

    try:
        return _PLACEHOLDER.sub(placeholder, sql).encode()
    except ValueError:
        return None


def text_value(value: Any) -> bytes | None:
    """A parameter as the text the server reads; ValueError for a value sent otherwise."""
    kind = type(value)
    if value is None:
        return None
    if kind is str:
        if "\x00" in value:  # libpq reads text parameters up to a NUL: psycopg refuses them
            raise ValueError("NUL in a text value")
        return value.encode()
    if kind is bool:
        return b"true" if value else b"false"
    if kind is int:
        return str(value).encode()
    if kind is float:
        return repr(value).encode()  # round-trips; 'inf', 'nan' are float8 input too
    raise ValueError(f"no text form for {kind.__name__}")


def plan(statements: list[tuple[str, list[Any]]]) -> list[Command] | None:
    """The commands of ``statements`` (each row one execution), or None (module docstring)."""
    out: list[Command] = []
    for sql, rows in statements:
        dollar = dollar_sql(sql)
        if dollar is None:
            return None
        try:
            out.extend((dollar, [text_value(v) for v in row]) for row in rows)
        except ValueError:
            return None
    return out


class PreparedPipeline:
    """Runs lists of commands in one pipeline on ``conn`` (a psycopg connection in autocommit:
    the commands carry their own ``BEGIN`` ... ``COMMIT``), preparing each SQL once. A new
    ``PreparedPipeline`` for every new connection (the names are the session's)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.names: dict[bytes, bytes] = {}
        self._made = 0

    def run(self, commands: list[Command]) -> list[Any]:
        """Send ``commands`` and a sync, wait for every result; the results of the commands, in
        order. Raises the psycopg error of the first statement the server refused (the rest of
        the pipeline was skipped: an open transaction is left failed, for the caller's
        ``ROLLBACK``), or of a lost connection (then closed: ``conn.closed``)."""
        from psycopg import errors, generators, pq

        pgconn = self.conn.pgconn
        queue: deque[Callable[[], None]] = deque()
        preparing: dict[int, bytes] = {}  # result index of a prepare made here -> its SQL
        for sql, params in commands:
            name = self.names.get(sql)
            if name is None and len(self.names) < MAX_PREPARED:
                self._made += 1
                name = self.names[sql] = f"genesis_{self._made}".encode()
                preparing[len(queue)] = sql
                queue.append(partial(pgconn.send_prepare, name, sql))
            if name is None:
                queue.append(partial(pgconn.send_query_params, sql, params))
            else:
                queue.append(partial(pgconn.send_query_prepared, name, params))
        queue.append(pgconn.pipeline_sync)
        pgconn.enter_pipeline_mode()
        try:
            results = self.conn.wait(generators.pipeline_communicate(pgconn, queue))
            while not results or results[-1][0].status != pq.ExecStatus.PIPELINE_SYNC:
                more = self.conn.wait(generators.fetch_many(pgconn))
                if not more:  # the server went away (a terminated backend's FATAL) before the sync
                    raise errors.OperationalError("the connection ended before the pipeline's results")
                results.append(more)
            pgconn.exit_pipeline_mode()
        except BaseException:
            self.conn.close()  # lost, or interrupted with results unread: the caller reconnects
            raise
        last = [r[-1] for r in results[:-1]]  # one result a command, then the sync
        for at, sql in preparing.items():
            if last[at].status != pq.ExecStatus.COMMAND_OK:  # skipped after a failure: not made
                self.names.pop(sql, None)
        failed = next((r for r in last if r.status == pq.ExecStatus.FATAL_ERROR), None)
        if failed is not None:
            raise errors.error_from_result(failed, encoding=self.conn.info.encoding)
        return [r for at, r in enumerate(last) if at not in preparing]
