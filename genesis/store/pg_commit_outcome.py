"""A commit whose answer was lost: find out whether it committed before answering.

The commit process (``genesis.store.pg_commit_process``) sends ``BEGIN`` .. ``COMMIT`` in one
pipeline. When the connection is lost before the answer is read (server crash or restart,
network cut, backend terminated), the transaction may have committed or not; so it may after
any error other than the server refusing a statement on an intact connection
(``refused_by_server``: a backend terminated right after its ``COMMIT`` can surface as psycopg's
"cannot exit pipeline mode while busy" on a connection not yet marked broken): reporting a
refusal could disown committed events (the writer's aggregates would diverge from the
store; an ``OrderIntended`` would be durable while the engine thinks it is not), and
reporting success could claim events that are not there. So the commit process finds out,
before it answers and before anything else commits (``settle``):

1. It reconnects, with a bounded back-off (``FIRST_BACKOFF_SECONDS`` doubling up to
   ``MAX_BACKOFF_SECONDS``), until the server answers or ``OUTCOME_DEADLINE_SECONDS`` pass.
2. It ends the backend that ran the transaction if the server still has it (same pid and
   start time, ``pg_terminate_backend`` waiting for its exit): once that backend is gone its
   transaction is over, committed or rolled back, and can no longer change.
3. It asks: a transaction with events is committed iff its first event row (by ``event_id``,
   unique, drawn when the rows were planned) is in ``events``, and then its sequence shift is
   that row's number less the planned one. A transaction without events (the writer only
   marks commands processed then: updates by key, idempotent) is run again on the new
   connection: once that one commits, the state is what the lost one would have made.

When the server cannot be reached by the deadline the answer is the refusal
``OUTCOME_UNKNOWN`` (its message says so): the events may or may not be stored; the writer
reports ``genesis.store.errors.CommitOutcomeUnknownError`` and readers find out later
from the store (the engine: ``genesis.engine.durable_append``).

The deadline bounds the waits too (``connect_params``): a settling connection is made within
the time left (``connect_timeout``: whole seconds, psycopg takes at least 2) and its statements
end within it (``statement_timeout``, ``tcp_user_timeout``), so a server that accepts TCP
but does not answer, or a half-open socket, cannot hold the answer (and every append after
it) past the deadline. The commit connection is bounded on the network (connecting within
``CONNECT_TIMEOUT_SECONDS``, TCP keepalives, ``tcp_user_timeout``) but has no
``statement_timeout``: a commit waiting for the events lock behind another writer is
legitimate, and cutting it would refuse it for being slow; a dead peer is what the TCP
bounds are for. (A server process that is alive but never answers, its host still
acknowledging TCP, is bounded by nothing client-side.)

An error psycopg raises before sending a statement (a ``DataError`` for a NUL in a text
value, a ``ProgrammingError`` for a parameter count: no SQLSTATE), the ``COMMIT`` not yet
queued and the connection intact, is a refusal like the server's (``refused_by_client``):
that transaction cannot have committed, and running it again would fail the same way.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, NamedTuple, TypeVar

from genesis.store.pg_fence import FENCE_SQL
from genesis.store.pg_session import DEFAULT_STALL_BOUND_SECONDS, session_options

OUTCOME_UNKNOWN = "CommitOutcomeUnknown"  # the refusal's error class when the outcome cannot be learned
OUTCOME_DEADLINE_SECONDS = 30.0  # how long the commit process keeps asking before it answers OUTCOME_UNKNOWN
FIRST_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 2.0
END_WAIT_MS = 5000  # how long one pg_terminate_backend waits for the old backend to exit
CONNECT_TIMEOUT_SECONDS = 10  # the commit connection: how long one connection attempt may take
KEEPALIVE_IDLE_SECONDS, KEEPALIVE_INTERVAL_SECONDS, KEEPALIVE_PROBES = 5, 2, 3  # a silent peer: dropped ~11 s on
TCP_USER_TIMEOUT_MS = 10_000  # data sent and not acknowledged this long: the connection is dropped
MIN_SETTLE_BOUND_MS = 1000  # a settling connection's bounds when less time is left

FIND_EVENT = "SELECT sequence_number FROM events WHERE event_id = %s"
_BACKEND = "SELECT pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()"
_END_BACKEND = ("SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity "
                "WHERE pid = %s AND backend_start::text = %s")

T = TypeVar("T")


class Backend(NamedTuple):
    """The server process of a connection: its pid and start time (a pid alone may be reused)."""

    pid: int
    started: str


def backend_of(conn: Any) -> Backend:
    """The server process serving ``conn`` (one query: run once per connection)."""
    pid, started = conn.execute(_BACKEND).fetchone()
    return Backend(int(pid), str(started))


def end_backend(conn: Any, old: Backend) -> None:
    """Make sure the server process ``old`` has exited (terminate it if it still runs): its
    transaction is then over. Raises ``psycopg.OperationalError`` when it is still running."""
    import psycopg

    for (ended,) in conn.execute(_END_BACKEND, (END_WAIT_MS, old.pid, old.started)).fetchall():
        if not ended:
            raise psycopg.OperationalError(f"the lost transaction's backend {old.pid} has not exited yet")


def idempotent(statements: list[tuple[str, list[Any]]]) -> bool:
    """True when running ``statements`` again leaves what running them once did: updates by
    key and checks only (the commit process's transactions without events)."""
    return all(sql == FENCE_SQL or sql.lstrip()[:6].upper() == "UPDATE" for sql, _ in statements)


def connect_params(options: str, left_s: float | None = None) -> dict[str, Any]:
    """``psycopg.connect``'s keyword arguments bounding a connection's waits, with the server
    settings ``options`` (``-c name=value ...``): the commit connection's (``left_s`` None), or
    a settling connection's within the ``left_s`` seconds left (at least
    ``MIN_SETTLE_BOUND_MS``), ``statement_timeout`` included (module docstring)."""
    params: dict[str, Any] = {"keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
                              "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS, "keepalives_count": KEEPALIVE_PROBES,
                              "tcp_user_timeout": TCP_USER_TIMEOUT_MS, "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                              "options": f"{options} {session_options(DEFAULT_STALL_BOUND_SECONDS)}"}
    if left_s is None:
        return params
    bound_ms = max(MIN_SETTLE_BOUND_MS, int(left_s * 1000))
    return {**params, "connect_timeout": math.ceil(bound_ms / 1000), "tcp_user_timeout": min(TCP_USER_TIMEOUT_MS, bound_ms),
            "options": f"{params['options']} -c statement_timeout={bound_ms}"}


def settle(connect: Callable[[float], Any], old: Backend | None, ask: Callable[[Any], T], deadline_s: float,
           sleep: Callable[[float], None] = time.sleep) -> tuple[Any, T] | None:
    """Reconnect (``connect(seconds left)``: a connection bounded by them, ``connect_params``),
    end ``old`` and ``ask(conn)``, with a bounded back-off until it answers: the new connection
    and the answer, or None when ``deadline_s`` passed first."""
    import psycopg

    end = time.monotonic() + deadline_s
    delay = FIRST_BACKOFF_SECONDS
    while True:
        conn = None
        try:
            conn = connect(end - time.monotonic())
            if old is not None:
                end_backend(conn, old)
            return conn, ask(conn)
        except psycopg.Error:
            if conn is not None:
                conn.close()
        if time.monotonic() + delay > end:
            return None
        sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)


def refused_by_server(exc: BaseException, conn: Any) -> bool:
    """After the error ``exc`` on ``conn``: did the server refuse a statement of the transaction
    (so it rolled back: nothing runs after an error, ``COMMIT`` included) on a connection still
    intact? Anything else leaves the outcome open: the connection lost, the server going away
    (``08``, ``57P`` errors: they may follow a ``COMMIT`` that succeeded), an error of the
    client's pipeline (psycopg reports "cannot exit pipeline mode while busy" in place of
    the error that left results unread)."""
    state = getattr(exc, "sqlstate", None)
    return bool(state) and not state.startswith(("08", "57P")) and not (conn.broken or conn.closed)


def refused_by_client(exc: BaseException, conn: Any, commit_queued: bool) -> bool:
    """After the error ``exc`` on ``conn``: did psycopg refuse a statement before sending it (a
    ``DataError`` or ``ProgrammingError`` without SQLSTATE: a NUL in a text value, a wrong
    parameter count), the transaction's ``COMMIT`` not yet queued (``commit_queued``), on a
    connection still intact? Then it cannot have committed: a refusal (the caller rolls back)."""
    import psycopg

    return (not commit_queued and isinstance(exc, (psycopg.DataError, psycopg.ProgrammingError))
            and getattr(exc, "sqlstate", None) is None and not (conn.broken or conn.closed))


def first_event_id(appends: list[list[Any]], id_at: int) -> str | None:
    """The ``event_id`` of the transaction's first event row (None: no events)."""
    return str(appends[0][0][id_at]) if appends else None


def unknown(exc: BaseException, why: str) -> tuple[str, str]:
    """The ``OUTCOME_UNKNOWN`` refusal after ``exc`` lost the connection (``why``: why asking failed)."""
    return OUTCOME_UNKNOWN, (f"the connection was lost while committing ({str(exc).strip()}) and {why}: "
                             "the transaction may or may not have committed")


def not_committed(exc: BaseException) -> tuple[str, str]:
    """The refusal of a commit whose answer ``exc`` lost, settled as not committed."""
    return type(exc).__name__, f"{str(exc).strip()} (it did not commit: nothing was written)"


def find_event(conn: Any, event_id: str | None) -> Any:
    """The committed row of the event ``event_id`` (its sequence number), or None."""
    return None if event_id is None else conn.execute(FIND_EVENT, (event_id,)).fetchone()
