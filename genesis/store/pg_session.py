"""Bounds on how long a stalled daemon can hold PostgreSQL locks that others wait for.

A daemon stopped (``SIGSTOP``, a frozen host whose TCP stays up) in the middle of a
transaction keeps that transaction's locks: the lease row (a renewal, a claim, the fencing
check's ``FOR SHARE``), ``LOCK TABLE events`` (every other writer waits), command rows. The
server cannot tell a stopped client from a slow one, so without a bound a standby's claim, or
every other daemon's commits, wait until the stopped one continues. Two bounds, both set to
the daemon's **stall bound** ``B`` (``stall_bound_seconds``: a third of the lease, at least a
second, never more than the lease):

1. ``idle_in_transaction_session_timeout = B`` on the daemon's connections (``session_options``:
   the store's readers and thread committer, the lease keeper; the commit process through
   ``genesis.store.pg_commit_outcome.connect_params``). The server ends a session whose
   transaction has waited ``B`` for its client's next statement. It applies only once the
   server has answered everything it was sent (after a Sync): a transaction sent as one
   pipeline whose client stopped half-way through sending it (a pipeline larger than the
   socket buffers) waits in state ``active``, ``ClientRead``, which no server setting bounds.
2. ``end_stalled_holders`` (run by every lease keeper before each claim and each renewal): it
   terminates a genesis session (``STALLABLE``, by ``application_name``) that holds a
   transaction open, waits for its client (``ClientRead``) since at least ``B`` ago, and
   holds a lock on ``leases`` or ``events`` that can block others (anything but a reader's
   ``AccessShareLock``: a renewal's or claim's row update, the fence's ``FOR SHARE``, the
   commit's ``LOCK TABLE events``). That covers the half-sent pipeline too. (It cannot wait
   for a blocked session to show up: the claim that would be blocked is the keeper's own,
   and it runs after.)

Lease claims and renewals wait for a row lock at most ``B`` (``lock_timeout``): a claim that
waits longer gives up (``LockNotAvailable``) and is tried again, after the holder was ended.

Nothing legitimate is ended: the daemon's transactions are scripted (no human or network wait
inside one), so ``B`` of silence in one means its process is not running. Sessions of other
programs, ``genesis sql``, ``genesis migrate`` and the CLI carry neither bound (another
``application_name``, no ``session_options``): a long migration or an open ``genesis sql``
transaction is never ended by genesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the commit process imports this module without SQLAlchemy
    from sqlalchemy.engine import Connection

DEFAULT_STALL_BOUND_SECONDS = 5.0  # the stall bound of the default 15 s lease
MIN_STALL_BOUND_SECONDS = 1.0
STORE_APPLICATION = "genesis store"  # the daemon's event store: readers, thread committer
LEASES_APPLICATION = "genesis leases"  # the lease keeper's connections
COMMIT_APPLICATION = "genesis commit process"  # genesis.store.pg_commit_process
STALLABLE = (STORE_APPLICATION, LEASES_APPLICATION, COMMIT_APPLICATION)

_END_STALLED = """
    SELECT h.pid, pg_terminate_backend(h.pid)
    FROM pg_stat_activity AS h
    WHERE h.datname = current_database() AND h.application_name IN :names AND h.xact_start IS NOT NULL
      AND h.wait_event_type = 'Client' AND h.wait_event = 'ClientRead'
      AND h.state_change < clock_timestamp() - make_interval(secs => :stalled)
      AND EXISTS (SELECT 1 FROM pg_locks AS l
                  WHERE l.pid = h.pid AND l.granted AND l.mode <> 'AccessShareLock'
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND l.relation IN ('leases'::regclass, 'events'::regclass))"""


def stall_bound_seconds(lease_seconds: float) -> float:
    """The stall bound ``B`` for a lease of ``lease_seconds``: a third of it (renewals come every
    third, so a renewal held up by a stalled session still succeeds within the lease), at least
    ``MIN_STALL_BOUND_SECONDS``, never more than the lease (a standby never waits for a stalled
    holder longer than a lease)."""
    return min(lease_seconds, max(MIN_STALL_BOUND_SECONDS, lease_seconds / 3))


def session_options(stall_bound_s: float) -> str:
    """libpq ``options`` ending a session whose transaction waits ``stall_bound_s`` for its client."""
    return f"-c idle_in_transaction_session_timeout={max(1, round(stall_bound_s * 1000))}"


def bounded_lock_wait(conn: Connection, stall_bound_s: float) -> None:
    """In ``conn``'s open transaction: no lock is waited for longer than ``stall_bound_s``."""
    from sqlalchemy import text

    conn.execute(text(f"SET LOCAL lock_timeout = {max(1, round(stall_bound_s * 1000))}"))


def end_stalled_holders(conn: Connection, stall_bound_s: float) -> list[int]:
    """Terminate the genesis sessions stalled for ``stall_bound_s`` inside a transaction holding
    locks that block lease claims, renewals or commits (module docstring); their pids. Needs the right to signal
    them (the same role, or ``pg_signal_backend``); without it the statement fails."""
    from sqlalchemy import bindparam, text

    sql = text(_END_STALLED).bindparams(bindparam("names", expanding=True))
    rows = conn.execute(sql, {"names": list(STALLABLE), "stalled": stall_bound_s}).all()
    return [pid for pid, ended in rows if ended]
