"""The writer's share of the event loop."""

from __future__ import annotations

import asyncio
import time

SLOT_SECONDS = 0.0005  # the writer's work per event-loop iteration before it lets others run


class Slot:
    """``share()`` returns at once while the current slot lasts, else yields one loop
    iteration first: folding, planning or settling a chunk of 100 appends must not hold every
    timer and socket for milliseconds."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    async def share(self) -> None:
        if time.perf_counter() - self._started >= SLOT_SECONDS:
            await asyncio.sleep(0)
            self._started = time.perf_counter()
