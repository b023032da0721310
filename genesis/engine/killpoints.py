"""Forced crash points for the chaos harness. An armed ``KillPoints`` makes the process SIGKILL
itself the n-th time (default 1st) it reaches a point; the engine's default, ``NO_KILL_POINTS``,
does nothing. Only ``genesis run --kill-point <name>[:<n>]`` (the chaos harness passes it)
arms one. Names:

* ``after_intent``: the intent to send is committed, the order not yet sent;
* ``after_send``: the venue accepted the order, its acknowledgement is not yet recorded;
* ``between_fills``: the first of several fills of an order is recorded, the others not yet.
"""

from __future__ import annotations

import os
import signal
from typing import Mapping

KILL_POINTS = ("after_intent", "after_send", "between_fills")


class KillPoints:
    """``armed`` maps a kill point's name to the reach that kills (1: the first)."""

    def __init__(self, armed: Mapping[str, int] | None = None):
        self._armed = dict(armed or {})

    @classmethod
    def parse(cls, spec: str) -> "KillPoints":
        """``<name>[:<n>]``; ``ValueError`` naming the problem for anything else."""
        name, _, count = spec.partition(":")
        if name not in KILL_POINTS:
            raise ValueError(f"kill point {name!r} is not one of {', '.join(KILL_POINTS)}")
        if count and not (count.isdigit() and int(count) >= 1):
            raise ValueError(f"kill point count {count!r} is not a whole number >= 1")
        return cls({name: int(count or "1")})

    def armed(self, name: str) -> bool:
        return name in self._armed

    def reach(self, name: str) -> None:
        """Die here (SIGKILL, no cleanup) when this kill point is armed and its count is reached."""
        if name not in self._armed:
            return
        self._armed[name] -= 1
        if self._armed[name] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


NO_KILL_POINTS = KillPoints()
