"""The channel through which the supervisor steers a runner between slices."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field


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
        self.wake.set()

    def take_commands(self) -> list[int]:
        ids, self.command_ids = self.command_ids, []
        return ids

    def request_urgency(self, level: str, reason: str, command_id: int | None = None) -> None:
        """Ask the runner to change its urgency (VWAP) before its next slice."""
        self.urgency = (level, reason, command_id)
        self.wake.set()
