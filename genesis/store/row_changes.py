"""Which ``executions`` state columns an event's fold can change: the writer's row diff reads
only those.

The writer updates each execution's ``executions`` row once per transaction, setting only the
state columns whose values changed since the row was last written (``projector.update_executions``
reads all 26 of them and compares them with the last written ones). Folding one event changes
few of them (a pause: ``state``, ``paused_at``, ``version``), so ``COLUMNS_CHANGED`` lists, per
event type, the columns its fold in ``genesis.domain.execution_fold`` can change, and
``update_changed`` reads and compares only those; every other column keeps its last written
value, which the fold did not touch. An event type not listed here (``ExecutionSubmitted``:
its row is inserted whole) takes the full diff. ``tests/test_row_changes.py`` folds random
histories of every event type and fails when a fold changes a column not listed for it, or
when the two diffs disagree.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, Iterable

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.store.projector import _EXECUTION_UPDATE, STATE_COLUMNS, Statement, _q8, update_executions

_FILLS = ("filled_qty", "notional_usdt", "fees_usdt", "maker_qty", "remaining_qty", "avg_price",
          "implementation_shortfall_bps")  # what a fill changes (the last three derived from the fills)
_PAUSE = ("paused_at", "paused_seconds")
_HOLD = ("held_since", "hold_reason", "held_seconds")
_END = ("state", "ended_at", "completion_reason", *_HOLD)
_MARKET_VWAP = ("market_vwap", "slippage_vs_vwap_bps")

# per event type, the state columns (besides ``version``) its fold can change
COLUMNS_CHANGED: dict[type[ev.Event], tuple[str, ...]] = {
    ev.ExecutionStarted: ("state", "started_at", "arrival_price", "end_at", "slice_count",
                          "implementation_shortfall_bps"),
    ev.ScheduleReplanned: ("end_at", "slice_count"),
    ev.ExecutionPaused: ("state", "paused_at"),
    ev.ExecutionResumed: ("state", *_PAUSE),
    ev.SlicingHeld: ("held_since", "hold_reason"),
    ev.SlicingResumed: _HOLD,
    ev.RiskDenied: (),
    ev.OrderIntended: (),
    ev.OrderAcknowledged: (),
    ev.FillRecorded: _FILLS,
    ev.OrderClosed: (),
    ev.TwapSliceExecuted: ("slices_executed", "slices_denied", *_MARKET_VWAP),
    ev.VwapSliceExecuted: ("slices_executed", "slices_denied", *_MARKET_VWAP),
    ev.SliceParticipationMeasured: (),
    ev.UrgencyChanged: ("urgency",),
    ev.EmergencyLiquidationStarted: ("urgency",),
    ev.EarlyCompletionTriggered: ("early_completion_at",),
    ev.TwapCompleted: (*_END, *_MARKET_VWAP),
    ev.VwapCompleted: (*_END, *_MARKET_VWAP),
    ev.ExecutionCancelled: (*_END, *_PAUSE),
    ev.ExecutionFailed: (*_END, *_PAUSE),
}

# how each state column is read from the aggregate (as ``projector.state_columns`` reads it)
_READERS: dict[str, Callable[[Execution], Any]] = {
    **{name: attrgetter(name) for name in STATE_COLUMNS},
    "state": attrgetter("state.value"),
    "notional_usdt": attrgetter("filled_notional"),
    "fees_usdt": attrgetter("fees"),
    "slice_count": lambda agg: len(agg.slices) or agg.slice_count,
    "avg_price": lambda agg: _q8(agg.avg_price),
}

Steps = tuple[tuple[int, str, Callable[[Execution], Any]], ...]  # (index, column, reader), by index


def _steps(columns: Iterable[str]) -> Steps:
    indexes = sorted({STATE_COLUMNS.index(name) for name in (*columns, "version")})
    return tuple((i, STATE_COLUMNS[i], _READERS[STATE_COLUMNS[i]]) for i in indexes)


_STEPS: dict[type[ev.Event], Steps] = {cls: _steps(columns) for cls, columns in COLUMNS_CHANGED.items()}


def steps_of(events: list[ev.Event]) -> Steps | None:
    """The columns that folding ``events`` can change, as ``update_changed`` reads them;
    None: any of them."""
    steps = _STEPS.get(type(events[0]))
    for e in events[1:]:
        steps = merged(steps, _STEPS.get(type(e)))
    return steps


def merged(steps: Steps | None, more: Steps | None) -> Steps | None:
    """The columns of ``steps`` and of ``more`` (two appends to one aggregate in a transaction)."""
    if steps is None or more is None:
        return None
    if steps is more:
        return steps
    return _steps({name for _, name, _ in (*steps, *more)})


def update_changed(agg: Execution, previous: tuple[Any, ...] | None, steps: Steps | None
                   ) -> tuple[Statement, tuple[Any, ...]]:
    """``projector.update_executions(agg, previous)``, reading only the columns of ``steps``
    (``steps_of`` the events folded since ``previous`` was written): the same statement, and
    state columns equal to those it returns."""
    if previous is None or steps is None:
        return update_executions(agg, previous)
    row = list(previous)
    changed: dict[str, Any] = {"_execution_id": agg.execution_id}
    for i, name, read in steps:
        value = read(agg)
        old = previous[i]
        if value is not old:
            row[i] = value
            if value != old:
                changed[name] = value
    return (_EXECUTION_UPDATE, changed), tuple(row)
