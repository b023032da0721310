"""The one call site where the slice executor consults the algorithm: how big this slice may
be (``size``) and which event closes it (``slice_event``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from genesis.domain import events as ev
from genesis.domain.execution import Execution, SliceState
from genesis.engine.algos import AlgoPolicy, SliceSizing


class SliceAlgorithm(Protocol):
    """What the slice executor asks of an execution's algorithm."""

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        """How much the next slice may trade, and how (maker first, taker fallback)."""
        ...

    def slice_event(self, agg: Execution, fields: dict[str, Any]) -> ev.TwapSliceExecuted:
        """The event that closes a slice, from the facts every slice close carries."""
        ...


class PolicySliceAlgorithm:
    """``SliceAlgorithm`` over an ``engine.algos`` policy: VWAP slices close with
    ``VwapSliceExecuted`` (and the urgency they ran at), every other with ``TwapSliceExecuted``."""

    def __init__(self, policy: AlgoPolicy):
        self.policy = policy

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        return await self.policy.size(agg, s, slices_left, ref, interval_seconds, now)

    def slice_event(self, agg: Execution, fields: dict[str, Any]) -> ev.TwapSliceExecuted:
        if agg.algo == "vwap":
            return ev.VwapSliceExecuted(**fields, urgency=agg.urgency)
        return ev.TwapSliceExecuted(**fields)
