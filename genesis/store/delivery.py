"""The writer's last stage (``genesis.store.writer``): what was committed is delivered.

``Delivery`` takes each committed transaction's appends, in commit order, settles their
callers' futures and publishes their events on the bus, sharing the event loop in slots
(``genesis.tuning``) while the committer has already handed the next transaction over.
Whatever stops the writer, what was committed is delivered.
"""

from __future__ import annotations

import asyncio
from genesis.bus import EventBus
from genesis.store.append_queue import AppendQueue
from genesis.store.batch import Pending, StoredEvent
from genesis.tuning import Tuning

Committed = list[tuple[Pending, list[StoredEvent]]]


class Delivery:
    """Delivers committed appends: each settles its caller (unless cancelled) and is counted
    done in ``queue``, the writer's; its events then go to ``bus``. ``committed`` takes each
    transaction's appends with their events as stored, in commit order."""

    def __init__(self, queue: AppendQueue[Pending], bus: EventBus | None, tuning: Tuning) -> None:
        self.committed: asyncio.Queue[Committed] = asyncio.Queue()
        self._queue = queue
        self._bus = bus
        self._tuning = tuning

    async def run(self) -> None:
        """Settle and publish what was committed, in commit order (a writer task)."""
        committed: Committed = []
        delivered = 0
        try:
            while True:
                committed, delivered = await self.committed.get(), 0
                slot = self._tuning.slot()
                for item, stored in committed:
                    if slot.over():
                        await slot.share()
                    self._deliver(item, stored)
                    delivered += 1
        finally:  # what is committed is delivered, whatever stops the writer
            for item, stored in committed[delivered:]:
                self._deliver(item, stored)
            while not self.committed.empty():
                for item, stored in self.committed.get_nowait():
                    self._deliver(item, stored)

    def _deliver(self, item: Pending, stored: list[StoredEvent]) -> None:
        """A committed append: settle its caller, then publish its events."""
        if not item.future.done():
            item.future.set_result(stored)
        self._queue.task_done()
        if self._bus is not None:
            for s in stored:
                self._bus.publish(s.event)


def shifted(stored: list[StoredEvent], shift: int | None) -> list[StoredEvent]:
    """``stored`` as committed: the committer moved their sequence numbers by ``shift`` when
    another writer had appended since they were planned (PostgreSQL, ``genesis.store.postgres``)."""
    if not shift:
        return stored
    return [StoredEvent(s.sequence_number + shift, s.aggregate_version, s.event) for s in stored]
