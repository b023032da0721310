"""An execution's appends that wait out a storage fault (``genesis.engine.runner``): nothing
proceeds until the events are durable, a lost account lease stops the runner, and a fault
that lasts is a few log lines, not one per retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Awaitable, Callable

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.engine.log_throttle import LogThrottle
from genesis.store.eventstore import CommitOutcomeUnknownError, EventStore, LeaseLostError, StorageError

STORAGE_FAULT_LOG_SECONDS = 10.0  # a storage fault is logged at most once per this (wall time)


class DurableAppend:
    """``await append(events, commands)``: the events appended to ``store`` (with the
    ``measured`` ones first), the execution's aggregate after them. ``pace`` yields the loop
    after a commit (one commit wakes many runners); ``retry_seconds`` is the wait on ``clock``
    between two tries on a storage fault."""

    def __init__(self, execution_id: str, store: EventStore, clock: Clock, pace: Callable[[], Awaitable[None]],
                 log: Any, retry_seconds: float):
        self._execution_id, self._store, self._clock = execution_id, store, clock
        self._pace, self._log, self._retry_seconds = pace, log, retry_seconds
        self.measured: list[ev.Event] = []  # realised participations, appended with the next events

    async def __call__(self, events: list[ev.Event], commands: list[int] | None = None) -> Execution:
        """Append durably; on a storage fault wait and retry (fail closed: nothing proceeds);
        ``LeaseLostError`` (the account's lease is gone) is raised: the runner stops. After a
        ``CommitOutcomeUnknownError`` nothing proceeds until the store can be read: when the
        events are its last ones they were committed (no second append, which would double
        them or, for an ``OrderIntended``, be refused), otherwise they are appended again;
        either way an intent is acted on only once the store says it is durable.
        The fault is logged when it starts, then at most once per ``STORAGE_FAULT_LOG_SECONDS``
        with the count of retries not logged; ``storage_fault_cleared`` when a retry succeeds."""
        done = [(cid, "accepted", None) for cid in (commands or [])]
        measured, self.measured = self.measured, []
        events = [*measured, *events]
        faults = LogThrottle(STORAGE_FAULT_LOG_SECONDS)  # this call retries until the fault is over
        unsure = False  # an append's outcome was unknown: only the store can say whether it committed
        while True:
            try:
                if not (unsure and await self._store.last_events(self._execution_id, len(events)) == events):
                    await self._store.append(events, done_commands=done)
                if faults.active:
                    self._log.warning("storage_fault_cleared", repeats_not_logged=faults.reset())
                await self._pace()  # one commit wakes many runners: not all in one iteration
                return await self._store.load(self._execution_id)
            except LeaseLostError:
                raise  # another daemon works this account now: stop (never retried, never a failure)
            except StorageError as exc:
                unsure = unsure or isinstance(exc, CommitOutcomeUnknownError)
                not_logged = faults.due()
                if not_logged is not None:
                    self._log.error("storage_fault_trading_halted", error=str(exc), repeats_not_logged=not_logged)
                await self._clock.sleep_until(self._clock.now() + timedelta(seconds=self._retry_seconds))
