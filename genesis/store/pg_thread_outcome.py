"""The thread committer's lost commits on PostgreSQL, settled as the commit process settles
them (``genesis.store.pg_commit_outcome``: the same steps, the same answers).

The thread committer (``genesis.store.postgres.PostgresCommitter``) sends its statements one
by one and then ``COMMIT``. A connection lost before the ``COMMIT`` was sent leaves nothing
committed (the server rolls back): a refusal, as before. A ``COMMIT`` sent whose answer is
lost (the backend terminated, the server restarted, the network cut) may have committed:
``LostCommits.settle`` reconnects, ends the old backend if it still runs, and asks whether
the transaction's first event row is in ``events`` (then it committed, and its sequence
shift is that row's number less the planned one). A transaction without events made of
updates by key only (``idempotent``) is run again. When the server cannot be asked within
the deadline the answer is ``OUTCOME_UNKNOWN`` (``CommitOutcomeUnknownError`` for the
appenders), and the old backend is ended before the next commit (``end_unsettled``).

Each pooled connection's backend (pid and start time) is read once, when it connects.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from genesis.store.pg_commit_outcome import (OUTCOME_DEADLINE_SECONDS, Backend, backend_of, connect_params,
                                             end_backend, find_event, idempotent, not_committed, settle, unknown)

_BACKEND_KEY = "genesis_backend"  # in a pooled connection's ``info``: its ``Backend``


class SettledRefusal(Exception):
    """A lost commit settled as not committed, or as unknown (``error_class``: ``OUTCOME_UNKNOWN``)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class, self.message = error_class, message


class Planned(NamedTuple):
    """What settling a transaction needs: its first event row's id and planned sequence number
    (None without events) and its statements (may they run again?)."""

    event_id: str | None
    first_sequence: int | None
    statements: list[tuple[str, Any]]


class LostCommits:
    """Settles the lost commits of a thread committer on ``engine`` (module docstring)."""

    def __init__(self, engine: Engine, deadline_s: float = OUTCOME_DEADLINE_SECONDS) -> None:
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.deadline_s = deadline_s
        self.unsettled: Backend | None = None  # ran a commit whose outcome is unknown
        event.listen(engine, "connect", _remember_backend)

    @staticmethod
    def backend(conn: Connection) -> Backend | None:
        """The backend serving ``conn`` (read when it connected)."""
        return conn.connection.info.get(_BACKEND_KEY)

    def end_unsettled(self, conn: Connection) -> None:
        """Before the next commit: the backend of a commit whose outcome stayed unknown has
        exited (its transaction can no longer change), or ``SettledRefusal``."""
        import psycopg

        if self.unsettled is None:
            return
        driver = conn.connection.driver_connection
        try:
            end_backend(driver, self.unsettled)
            driver.commit()
        except psycopg.Error as exc:
            raise SettledRefusal(type(exc).__name__, str(exc).strip()) from exc
        self.unsettled = None

    def settle(self, lost: BaseException, old: Backend | None, planned: Planned, rerun: Callable[[], int]) -> int:
        """The shift of the lost commit if it committed; ``SettledRefusal`` if it did not or
        if that cannot be learned in time. ``rerun()``: the transaction again (updates only)."""
        import psycopg

        if old is None or (planned.event_id is None and not idempotent(planned.statements)):
            self.unsettled = old
            raise SettledRefusal(*unknown(lost, "a transaction without events that cannot be run again"))
        found = settle(self._connect, old, lambda c: find_event(c, planned.event_id), self.deadline_s)
        if found is None:
            self.unsettled = old
            raise SettledRefusal(*unknown(lost, f"the server could not be asked within {self.deadline_s:g} s"))
        found[0].close()
        row = found[1]
        if planned.event_id is None:  # updates by key only, the old backend gone: run them again
            try:
                return rerun()
            except (psycopg.Error, DBAPIError, SettledRefusal) as exc:
                why = getattr(exc, "orig", None) or exc
                raise SettledRefusal(*unknown(lost, f"running it again failed ({str(why).strip()})")) from exc
        if row is None:
            raise SettledRefusal(*not_committed(lost))
        return int(row[0]) - int(planned.first_sequence)  # type: ignore[arg-type]

    def _connect(self, left_s: float) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, **connect_params("", left_s), autocommit=True,
                               application_name="genesis commit settling")


def _remember_backend(dbapi_conn: Any, record: Any) -> None:
    record.info[_BACKEND_KEY] = backend_of(dbapi_conn)
    dbapi_conn.rollback()  # the query began a transaction (the driver's, not autocommit)
