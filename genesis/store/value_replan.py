"""The writer's way out of a chunk whose plan failed on a value (``genesis.store.writer``).

A value the store cannot take (``VALUE_ERRORS`` while planning: a column's type refusing it,
a string that is not text, arithmetic that fails) fails the plan of the whole chunk. Its
appends are then planned again one by one (``replan_one_by_one``), so that only the append
that holds it is refused (``InvalidEventError`` naming the field) and the others go on.

The aggregates the failed plan touched are forgotten, as are those of a chunk failed on a
database read or left unreliable by an invalid append: they may have had events in chunks
still being committed, which a reload now would miss. Before the next plan the writer waits
until nothing is in the committer's hands (``drain``) and forgets them again; a load whose
query began before that is read again (``ChunkPlanner.evictions``).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Awaitable, Callable

from genesis.store.batch import _EVENT_KEYS, Chunk, Pending, StoredEvent
from genesis.store.errors import InvalidEventError, StoreClosedError
from genesis.store.value_checks import check_event_texts, describe

# what planning raises for a value the store cannot take: a value its column's type refuses
# (``UnstorableValueError`` is a ValueError), a Decimal whose arithmetic fails
VALUE_ERRORS = (TypeError, ValueError, ArithmeticError)
# where the event rows of a chunk hold their type and JSON text: tuples (``EventRows``), or dicts
_EVENT_TEXT_AT = ((_EVENT_KEYS.index("event_type"), _EVENT_KEYS.index("event_data")), ("event_type", "event_data"))

Settle = Callable[[Pending, "list[StoredEvent] | BaseException"], None]


def check_chunk_texts(chunk: Chunk) -> None:
    """``UnstorableValueError`` if a string of the chunk's events is not text (lone surrogate,
    NUL): its JSON shows it."""
    if chunk.rows:
        check_event_texts(chunk.rows, *_EVENT_TEXT_AT[type(chunk.rows[0]) is dict])


async def replan_one_by_one(items: list[Pending], error: BaseException,
                            prepare: Callable[[list[Pending]], Awaitable[None]], settle: Settle) -> None:
    """The plan of ``items`` failed on a value (``error``): refuse the one append, or prepare
    each of several alone. Whatever ends the writer meanwhile, every item is settled."""
    if len(items) == 1:
        settle(items[0], InvalidEventError(f"cannot store these events: {describe(items[0].events, error)}"))
        return
    for at, item in enumerate(items):
        try:
            if item.future.done():  # refused by its fold already
                settle(item, InvalidEventError("refused"))
            else:
                await prepare([item])
        except BaseException:  # (prepare settled this one)
            for rest in items[at + 1:]:
                settle(rest, StoreClosedError("the event store writer stopped"))
            raise


async def drain(sent: collections.deque[tuple[Any, asyncio.Future[Any]]], ready: asyncio.Queue[Chunk]) -> None:
    """Wait until no chunk is ready or in the committer's hands (``sent``: the transactions
    handed over and not yet confirmed, oldest first)."""
    while sent or not ready.empty():
        if sent:
            await asyncio.wait([sent[-1][1]])
        await asyncio.sleep(0)  # the committer and confirmer take their turn
