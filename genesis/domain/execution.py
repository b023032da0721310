"""The execution aggregate: its state is a fold over its events.

``Execution.apply`` is the only way state changes; it holds no I/O. The engine asks it what
to do next (which slice, how much is left, which child orders have an unknown outcome) and
appends events; the store's projector writes the same facts into query tables. This module
holds the state and its queries; how each event changes it is ``genesis.domain.execution_fold``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from genesis.domain import events as ev
from genesis.domain.execution_fold import HANDLERS as _HANDLERS
from genesis.domain.fills import FilledFigures, FillTotals
from genesis.domain.orders import ChildOrder, Side
from genesis.domain.slice_state import SliceState
from genesis.domain.state import ExecutionState
from genesis.domain.units import BPS

__all__ = ["ORDER_CUTOFF", "Execution", "SliceState", "slippage_bps"]

# no child order is sent in a window's last second: sent then, it could fill after the end
ORDER_CUTOFF = timedelta(seconds=1)


@dataclass(slots=True)
class Execution(FilledFigures):
    """One execution's state, folded from its events (``replay``, ``apply``), and the queries
    the engine asks it."""

    execution_id: str
    version: int = 0
    state: ExecutionState = ExecutionState.PENDING
    request_id: str = ""
    symbol: str = ""
    side: Side = Side.BUY
    qty: Decimal = Decimal(0)
    algo: str = "twap"
    duration_seconds: int = 0
    slice_count: int | None = None
    limit_price: Decimal | None = None
    execution_style: str = "twap"
    params: dict[str, str] = field(default_factory=dict)
    # trades inside a window that ends at ``end_at`` (TWAP, VWAP...); else (a single order, the
    # router's short TWAP) a nominal end only: the child orders take what they take
    windowed: bool = True
    submitted_at: datetime | None = None
    account: str = ""  # the venue account it trades on ("" : not recorded, see ExecutionSubmitted)
    started_at: datetime | None = None
    end_at: datetime | None = None
    ended_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    # a hold (SlicingHeld) that is not a user pause: state stays running, no new slice starts
    held_since: datetime | None = None
    hold_reason: str | None = None
    held_seconds: float = 0.0  # holds that ended, in total
    arrival_price: Decimal | None = None
    slices: dict[int, SliceState] = field(default_factory=dict)
    orders: dict[str, ChildOrder] = field(default_factory=dict)
    trade_ids: set[str] = field(default_factory=set)
    fills: FillTotals = FillTotals()
    completion_reason: str | None = None
    early_completion_at: datetime | None = None
    urgency: str = "low"
    emergency_at: datetime | None = None
    market_vwap: Decimal | None = None
    slippage_vs_vwap_bps: Decimal | None = None
    # running indexes, so that queries stay O(1) on executions with thousands of slices
    slices_executed: int = 0
    slices_denied: int = 0
    _open: list[int] = field(default_factory=list)  # indices of open slices, ascending
    _orders_by_slice: dict[int, list[ChildOrder]] = field(default_factory=dict)
    _unresolved: dict[str, ChildOrder] = field(default_factory=dict)
    _unmeasured: list[int] = field(default_factory=list)  # closed slices awaiting their realised participation

    @classmethod
    def replay(cls, execution_id: str, history: Iterable[ev.Event]) -> "Execution":
        agg = cls(execution_id)
        for e in history:
            agg.apply(e)
        return agg

    # -- queries ---------------------------------------------------------------------------

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def implementation_shortfall_bps(self) -> Decimal | None:
        """Signed, positive = worse than the arrival price for us."""
        return slippage_bps(self.side, self.avg_price, self.arrival_price)

    def window_over(self, now: datetime) -> bool:
        """The window has ended: nothing more is sent, what is left expires. Neither a stall
        nor a re-spread moves the end; only a pause under the ``extend`` policy does."""
        return self.windowed and self.end_at is not None and now >= self.end_at

    def orders_closed(self, now: datetime) -> bool:
        """No more child orders: the window ends within ``ORDER_CUTOFF``."""
        return self.window_over(now + ORDER_CUTOFF)

    def order_deadline(self) -> datetime | None:
        """When sending child orders stops (``orders_closed`` from then on); None: no window."""
        if not self.windowed or self.end_at is None:
            return None
        return self.end_at - ORDER_CUTOFF

    def unmeasured_slices(self) -> list[SliceState]:
        """Closed slices whose realised participation is not recorded yet, in closing order."""
        return [self.slices[i] for i in self._unmeasured]

    def open_slices(self) -> list[SliceState]:
        """Slices not yet executed, by index."""
        return [self.slices[i] for i in self._open]

    @property
    def open_count(self) -> int:
        return len(self._open)

    def next_open(self, k: int = 0) -> SliceState | None:
        """The ``k``-th open slice (0: the next one), or None."""
        return self.slices[self._open[k]] if k < len(self._open) else None

    def orders_of(self, slice_index: int) -> list[ChildOrder]:
        return list(self._orders_by_slice.get(slice_index, ()))

    def unresolved_orders(self) -> list[ChildOrder]:
        """Child orders whose outcome the store does not know: reconcile before acting."""
        return list(self._unresolved.values())

    def attempts_for(self, slice_index: int) -> int:
        return len(self._orders_by_slice.get(slice_index, ()))

    # -- the fold --------------------------------------------------------------------------

    def apply(self, e: ev.Event) -> None:
        """Fold ``e`` into the state (``genesis.domain.execution_fold``); raises, having
        changed nothing or part of it, on an event the state cannot take."""
        handler = _HANDLERS.get(type(e))
        if handler is None:
            raise TypeError(f"Execution cannot apply {type(e).__name__}")
        handler(self, e)
        self.version += 1


def slippage_bps(side: Side, price: Decimal | None, benchmark: Decimal | None) -> Decimal | None:
    """Signed slippage of ``price`` against ``benchmark`` in basis points; positive = worse for us."""
    if price is None or benchmark is None or benchmark == 0:
        return None
    return (side.sign * (price - benchmark) / benchmark * BPS).quantize(Decimal("0.0001"))
