"""The base of every domain event: ``Event`` (the aggregate it belongs to and when it
happened) and its ``EventPriority``. The event classes are in ``genesis.domain.events``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


class EventPriority(enum.IntEnum):
    HIGH = 0  # execution lifecycle and slice outcomes
    NORMAL = 1  # progress: intents, acknowledgements, fills


@dataclass(frozen=True, slots=True)
class Event:
    execution_id: str
    occurred_at: datetime

    priority: ClassVar[EventPriority] = EventPriority.HIGH

    @property
    def event_type(self) -> str:
        return type(self).__name__
