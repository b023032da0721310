"""Forced crash points for the chaos test: ``GENESIS_KILL_POINT=<name>[:<n>]`` makes the daemon
SIGKILL itself the n-th time (default 1st) it reaches ``<name>``. Unset, this costs one dict
lookup. Names:

* ``after_intent``: the intent to send is committed, the order not yet sent;
* ``after_send``: the venue accepted the order, its acknowledgement is not yet recorded;
* ``between_fills``: the first of several fills of an order is recorded, the others not yet.
"""

from __future__ import annotations

import os
import signal

_armed: dict[str, int] = {}
_spec = os.environ.get("GENESIS_KILL_POINT", "")
if _spec:
    name, _, count = _spec.partition(":")
    _armed[name] = int(count or "1")

KILL_POINTS = ("after_intent", "after_send", "between_fills")


def armed(name: str) -> bool:
    return name in _armed


def reach(name: str) -> None:
    """Die here (SIGKILL, no cleanup) when this kill point is armed and its count is reached."""
    if name not in _armed:
        return
    _armed[name] -= 1
    if _armed[name] <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
