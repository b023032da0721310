"""Waiters on a symbol's counted volume: a runner waiting for room under the participation cap
is woken when the trade stream has counted enough since its interval's start, instead of at its
next timed look (``genesis.engine.cap_room``).

``VolumeWaiters`` holds, per interval start, the events of those waiting and the volume each
needs. ``wake`` is called by whoever counts trades (``TradeVolume.ingest``) with a way to read
the volume counted since a start; the volume is read once per distinct start (the runners
slicing at the same instant share one), and every waiter whose need it reaches is set.

A wake is only a hint to look again: the waiter reads the traded volume through the venue as
it would at a timed look, and the cap is computed from that read alone.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from decimal import Decimal
from typing import Callable, Iterator


class VolumeWaiters:
    """The events waiting on one symbol's counted volume, by interval start (epoch ms)."""

    def __init__(self) -> None:
        self._waiting: dict[int, dict[asyncio.Event, Decimal]] = {}

    def __len__(self) -> int:
        return sum(len(events) for events in self._waiting.values())

    @contextmanager
    def waiter(self, start_ms: int, volume: Decimal,
               counted_since: Callable[[int], Decimal] | None = None) -> Iterator[asyncio.Event]:
        """An event set once the volume counted since ``start_ms`` reaches ``volume``, for the
        duration of the ``with`` block (then forgotten). ``counted_since``: the count now (the
        event is set at once when it already reaches ``volume``)."""
        event = asyncio.Event()
        if counted_since is not None and counted_since(start_ms) >= volume:
            event.set()
        self._waiting.setdefault(start_ms, {})[event] = volume
        try:
            yield event
        finally:
            events = self._waiting.get(start_ms)
            if events is not None:
                events.pop(event, None)
                if not events:
                    del self._waiting[start_ms]

    def wake(self, counted_since: Callable[[int], Decimal]) -> int:
        """Set every waiter whose volume the count since its start reaches (each start read
        once); returns how many were set. Set waiters stay registered until their block ends
        (setting them again is harmless)."""
        woken = 0
        for start_ms, events in list(self._waiting.items()):
            pending = [(e, v) for e, v in events.items() if not e.is_set()]
            if not pending:
                continue
            counted = counted_since(start_ms)
            for event, volume in pending:
                if counted >= volume:
                    event.set()
                    woken += 1
        return woken
