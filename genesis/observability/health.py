"""Liveness and readiness as plain functions, for whatever serves them (genesis.observability.http).

``healthz()``: the process is alive and its event loop runs (whoever calls it got scheduled).
``readiness(checks)``: every named check passes. A check is a callable returning
``(ok, detail)`` or an awaitable of it; the daemon's are the store (its writer runs and its
last transaction was not refused) and the venue (it answers). Leases, when they exist, are one
more entry in the same mapping (``Observability.readiness_checks``).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from typing import Awaitable, Callable, Mapping, Union

CheckResult = tuple[bool, str]
ReadinessCheck = Callable[[], Union[CheckResult, Awaitable[CheckResult]]]


def healthz() -> tuple[bool, dict[str, object]]:
    """Liveness: always ok while the process can answer."""
    return True, {"status": "alive", "pid": os.getpid()}


async def readiness(checks: Mapping[str, ReadinessCheck],
                    timeout_seconds: float = 2.0) -> tuple[bool, dict[str, dict[str, object]]]:
    """Run every check (each within ``timeout_seconds``); ok when all pass. ``details`` maps
    each check's name to ``{"ok": bool, "detail": str}``. A check that raises or times out fails."""
    details: dict[str, dict[str, object]] = {}
    for name, check in checks.items():
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, timeout_seconds)
            ok, detail = result  # type: ignore[misc]
        except asyncio.TimeoutError:
            ok, detail = False, f"no answer within {timeout_seconds:g} s"
        except Exception as exc:  # noqa: BLE001 - a broken check is a failed check, reported
            ok, detail = False, f"check raised {type(exc).__name__}: {exc}"
        details[name] = {"ok": bool(ok), "detail": detail}
    return all(d["ok"] for d in details.values()), details


class StoreHealth:
    """Store readiness: the writer runs and its last transaction was committed. Feed it the
    store's commit outcomes (``on_commit``)."""

    def __init__(self, writer_running: Callable[[], bool]):
        self._writer_running = writer_running
        self.last_commit_ok = True

    def on_commit(self, seconds: float, committed: bool) -> None:
        self.last_commit_ok = committed

    def check(self) -> CheckResult:
        if not self._writer_running():
            return False, "the event store writer is not running"
        if not self.last_commit_ok:
            return False, "the last store transaction was refused by the database"
        return True, "writer running, last transaction committed"
