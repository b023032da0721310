"""The committers' contract (``genesis.store.committers`` describes it): what a transaction
is, the ``Committer`` protocol and how a committer fails (``CommitRefused``, ``CommitterLost``).
The adapters are ``genesis.store.thread_committer`` and ``genesis.store.process_committer``."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from genesis.store.commit_process import EARLIER_FAILED
from genesis.store.errors import CommitOutcomeUnknownError, LeaseLostError, StorageError
from genesis.store.pg_commit_outcome import OUTCOME_UNKNOWN as PG_OUTCOME_UNKNOWN
from genesis.store.pg_fence import lease_refusal

Transaction = list[tuple[str, list[Any]]]

LEASE_LOST = "LeaseRefused"  # CommitRefused.error_class of a failed fencing check (genesis.store.leases)
# CommitRefused.error_class when a commit's answer was lost and whether it committed could not
# be learned (genesis.store.pg_commit_outcome): not a refusal, an unknown outcome
OUTCOME_UNKNOWN = PG_OUTCOME_UNKNOWN


class CommitRefused(Exception):
    """The database refused the transaction (locked, read-only, full...); nothing was written,
    except with ``error_class == OUTCOME_UNKNOWN`` (it may have committed).
    ``failures``: the committer's refused transactions so far, this one included."""

    def __init__(self, error_class: str, message: str, failures: int, driver: str = "sqlite3") -> None:
        super().__init__(message if error_class == EARLIER_FAILED else f"({driver}.{error_class}) {message}")
        self.error_class = error_class
        self.failures = failures


def refusal(error_class: str, message: str, failures: int, driver: str = "sqlite3") -> CommitRefused:
    """The database's refusal; ``LEASE_LOST`` when it was the lease fence's statement
    (``genesis.store.pg_fence``)."""
    lease = lease_refusal(message)
    if lease is not None:
        return CommitRefused(LEASE_LOST, lease, failures, "genesis")
    return CommitRefused(error_class, message, failures, driver)


def appenders_error(exc: CommitRefused) -> StorageError:
    """What the appenders of the refused transaction ``exc`` are told (``genesis.store.errors``)."""
    if exc.error_class == LEASE_LOST:
        return LeaseLostError(str(exc))
    if exc.error_class == OUTCOME_UNKNOWN:
        return CommitOutcomeUnknownError(f"database commit outcome unknown: {exc}")
    return StorageError(f"database commit failed: {exc}")


class CommitterLost(Exception):
    """The committer can no longer commit, and whether the transactions in hand were committed
    is unknown (the commit process died)."""


class Committer(Protocol):
    """Runs the writer's transactions (``genesis.store.committers``): ``submit`` queues one and
    returns a future of its sequence shift, settled once it is durable or refused."""

    commits: int  # transactions committed so far

    async def start(self) -> None: ...

    def submit(self, transaction: Transaction, generation: int) -> asyncio.Future[int | None]: ...

    async def stop(self) -> None: ...


class Refusals:
    """``commit(transaction)``: submit one and await it, as prepared on every refusal seen so
    far (so it is never refused for an earlier one). For callers without a pipeline."""

    refusals = 0

    async def commit(self, transaction: Transaction) -> None:
        try:
            await self.submit(transaction, self.refusals)  # type: ignore[attr-defined]
        except CommitRefused as exc:
            self.refusals = exc.failures
            raise
