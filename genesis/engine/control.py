"""The channel through which the supervisor steers a runner between slices."""

from __future__ import annotations

import asyncio
import enum
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator


class Desire(str, enum.Enum):
    RUN = "run"
    PAUSE = "pause"
    CANCEL = "cancel"
    STOP = "stop"  # daemon shutdown: leave the execution as it is, it resumes at next start


@dataclass(slots=True)
class Control:
    desire: Desire = Desire.RUN
    reason: str = ""
    command_ids: list[int] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    urgency: tuple[str, str, int | None] | None = None  # (level, reason, command id) not yet applied
    # set with ``wake`` while a runner waits on more than its control (``wakes``)
    _also_wake: set[asyncio.Event] = field(default_factory=set, compare=False, repr=False)

    @contextmanager
    def wakes(self, event: asyncio.Event) -> Iterator[None]:
        """Within the block, every request that sets ``wake`` sets ``event`` too (a runner
        waits for its control or something else on one event, without a task relaying ``wake``)."""
        self._also_wake.add(event)
        try:
            yield
        finally:
            self._also_wake.discard(event)

    def _wake(self) -> None:
        self.wake.set()
        for event in self._also_wake:
            event.set()

    def request(self, desire: Desire, reason: str, command_id: int | None = None) -> None:
        """Ask the runner to move to ``desire`` at its next safe point. Cancel and stop win
        over pause/run; a later pause/run replaces an earlier one."""
        if self.desire in (Desire.CANCEL, Desire.STOP) and desire in (Desire.RUN, Desire.PAUSE):
            if command_id is not None:
                self.command_ids.append(command_id)
            return
        self.desire, self.reason = desire, reason
        if command_id is not None:
            self.command_ids.append(command_id)
        self._wake()

    def take_commands(self) -> list[int]:
        ids, self.command_ids = self.command_ids, []
        return ids

    def request_urgency(self, level: str, reason: str, command_id: int | None = None) -> None:
        """Ask the runner to change its urgency (VWAP) before its next slice."""
        self.urgency = (level, reason, command_id)
        self._wake()
