"""Hooks the engine calls at fixed points for the tools beside it (the chaos harness, the
engine bench). By default none does anything; the wiring injects others
(``genesis.runtime.wiring``) and the runners reach them as ``runner.hooks``. This is the one
owner of the injected hooks: the slice executor sees only ``kill_points``, through the narrow
port ``engine.ports.KillPointPort``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from genesis.engine.killpoints import KillPoints


def _ignore(_seconds: float) -> None:
    return None


@dataclass(frozen=True, slots=True)
class EngineHooks:
    """``kill_points``: forced crashes (chaos). ``decision_seconds``: called with the seconds each
    child decision took, sizing and risk check (the engine bench's decision latency)."""

    kill_points: KillPoints = field(default_factory=KillPoints)
    decision_seconds: Callable[[float], None] = _ignore


NO_HOOKS = EngineHooks()
