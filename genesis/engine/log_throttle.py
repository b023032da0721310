"""Rate limit for a log line that would otherwise repeat many times a second (a storage fault
retried by every runner): the first occurrence, then at most one per interval."""

from __future__ import annotations

import time
from typing import Callable


class LogThrottle:
    """``due()`` says whether to log this occurrence; when it is, it returns how many were not
    logged since the last logged one (0 the first time), else None. Wall time, not the
    simulated clock: it limits what reaches the log."""

    def __init__(self, interval_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.interval_seconds, self._clock = interval_seconds, clock
        self._next_at: float | None = None
        self.not_logged = 0

    @property
    def active(self) -> bool:
        """An occurrence was logged since the last ``reset``."""
        return self._next_at is not None

    def due(self) -> int | None:
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            self.not_logged += 1
            return None
        skipped, self.not_logged, self._next_at = self.not_logged, 0, now + self.interval_seconds
        return skipped

    def reset(self) -> int:
        """The condition is over: the count not logged since the last line, and start afresh."""
        skipped, self.not_logged, self._next_at = self.not_logged, 0, None
        return skipped
