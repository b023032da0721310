"""``SliceState``: one planned slice of an execution as its events left it (planned, open or
closed, and what it filled). Held by ``genesis.domain.execution.Execution``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from genesis.domain.fills import FilledFigures, FillTotals


@dataclass(slots=True)
class SliceState(FilledFigures):
    """A slice's plan (``index``, ``scheduled_at``, ``planned_qty``), whether it is closed and
    with which ``status``, and its fills (``FilledFigures``)."""

    index: int
    scheduled_at: datetime
    planned_qty: Decimal
    closed: bool = False
    status: str = "planned"
    fills: FillTotals = FillTotals()
    interval_start: datetime | None = None  # the interval it was sized for, [start, end) (closed slices)
    interval_end: datetime | None = None
