"""Where the event store's writer runs its transactions: two adapters with one contract.

A transaction is a list of ``(sql, rows)``: SQL compiled by SQLAlchemy for the database's
dialect and rows of plain DBAPI values (``genesis.store.bulk.driver_rows``), run in order with
``executemany`` and committed, or not at all. ``submit(transaction, generation)`` queues one
and returns a future that resolves once it is durable, to the amount its event rows'
``sequence_number`` were shifted by at commit (0 unless another writer appended since they
were planned: see ``genesis.store.postgres``). Transactions run in submission order
(the commit process commits all that are waiting as one), and the writer submits the next
before the previous one is confirmed (it was prepared on top of it): ``generation`` is the
number of refused transactions the writer had seen when it prepared this one (``failures``
of the last refusal), and a transaction prepared on a refusal it had not yet seen is refused
unrun (``CommitRefused`` with ``error_class == EARLIER_FAILED``).

Failures: ``CommitRefused`` when the database refused (nothing of it was written; except
``error_class == OUTCOME_UNKNOWN``: the connection was lost while committing and the PostgreSQL
commit process could not learn the outcome in time, ``genesis.store.pg_commit_outcome``);
``CommitterLost`` when the outcome cannot be known (the commit process died): the writer then
stops, and a restart recovers from what the database holds.

The contract is ``genesis.store.commit_contract``; each adapter has its own module, and
every name is importable from here:

- ``ProcessCommitter`` (the default for the daemon, ``genesis.store.process_committer``): a
  child process with its own SQLite connection (``genesis.store.commit_process``), so the
  SQLite work and its fsync run on another core instead of sharing the GIL with the event loop.
- ``ThreadCommitter`` (``genesis.store.thread_committer``): one worker thread through a
  blocking SQLAlchemy engine, in process. Its engine takes SQLAlchemy event hooks (the storage fault tests inject failures through them).
  ``precondition(conn)``, when set, runs first inside every transaction: it refuses the
  transaction by raising (a ``DBAPIError`` refuses it like any database error, a
  ``LeaseRefused`` as ``LEASE_LOST``; anything else stops the writer). The PostgreSQL committer (``genesis.store.postgres``) builds on it.
"""

from __future__ import annotations

from genesis.store.commit_contract import (EARLIER_FAILED, LEASE_LOST, OUTCOME_UNKNOWN, CommitRefused, Committer,
                                           CommitterLost, Refusals, Transaction, appenders_error, refusal)
from genesis.store.process_committer import STOP_TIMEOUT_SECONDS, ProcessCommitter
from genesis.store.thread_committer import ThreadCommitter, run_statements

__all__ = ["EARLIER_FAILED", "LEASE_LOST", "OUTCOME_UNKNOWN", "STOP_TIMEOUT_SECONDS", "CommitRefused", "Committer", "CommitterLost",
           "ProcessCommitter", "Refusals", "ThreadCommitter", "Transaction", "appenders_error", "refusal", "run_statements"]
