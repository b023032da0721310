"""``SingleOrder``: one child order, now (``--algo single``, or ``--algo auto`` below the
router's minimum notional)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from genesis.algorithms.base import AlgorithmDefaults, Context, SliceSizing
from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState


class SingleOrder(AlgorithmDefaults):
    """The whole parent as one slice; no window (its child order takes what it takes), no
    Strategist tier."""

    name: ClassVar[str] = "single"
    windowed: ClassVar[bool] = False
    tiered: ClassVar[bool] = False

    @classmethod
    def for_execution(cls, agg: Execution, ctx: Context) -> "SingleOrder":
        return cls()

    duration_section: ClassVar[str | None] = None  # the router sets the timing: no --duration
    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        return (PlannedSlice(0, now, agg.qty),), now + timedelta(seconds=max(agg.duration_seconds, 1))

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        return SliceSizing(agg.remaining_qty, agg.remaining_qty, None)
