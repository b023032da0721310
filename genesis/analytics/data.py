"""What the TCA report and the chart read: one execution's rows (exact ``Decimal``) and the
market candles of its window.

Market data for the window ``[started_at, ended_at)`` (for a live execution: up to its
latest event) comes from the ``candles`` table when it covers the window (at least one
candle per whole minute), else from the candles shipped for the simulated venue
(``genesis.venue.candles.shipped_candles``), else there is none and only the engine's own
benchmark (``executions.market_vwap``) is available. ``market_source`` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from genesis.store import tables as t
from genesis.venue.base import Candle

SOURCE_TABLE = "candles table"
SOURCE_SHIPPED = "shipped candles (sim venue)"
SOURCE_NONE = "none (engine benchmark only)"


@dataclass(frozen=True, slots=True)
class ExecutionHistory:
    execution: dict[str, Any]  # the executions row
    slices: list[dict[str, Any]]  # execution_slices rows by index
    fills: list[dict[str, Any]]  # fills rows in time order
    window_start: datetime | None
    window_end: datetime | None
    candles: list[Candle]  # the window's 1-minute candles (may be empty)
    market_source: str


def window_minutes(start: datetime, end: datetime) -> int:
    """Whole minutes in ``[start, end)``: the candles a covering source must have at least."""
    return int(round((end - start).total_seconds())) // 60


def _covers(candles: list[Candle], start: datetime, end: datetime) -> bool:
    return bool(candles) and len(candles) >= window_minutes(start, end)


def market_window(conn: Connection, symbol: str, start: datetime, end: datetime) -> tuple[list[Candle], str]:
    """The candles opening in ``[start, end)`` and where they came from."""
    c = t.candles.c
    rows = conn.execute(select(c.open_time, c.open, c.high, c.low, c.close, c.volume)
                        .where((c.symbol == symbol) & (c.open_time >= start) & (c.open_time < end))
                        .order_by(c.open_time)).all()
    candles = [Candle(*r) for r in rows]
    if _covers(candles, start, end):
        return candles, SOURCE_TABLE
    from genesis.venue.candles import shipped_candles, shipped_symbols

    if symbol in shipped_symbols():
        shipped = shipped_candles(symbol).range(start, end)
        if _covers(shipped, start, end):
            return shipped, SOURCE_SHIPPED
    return [], SOURCE_NONE


def load_history(engine: Engine, execution_id: str) -> ExecutionHistory:
    """Everything the report needs about ``execution_id``; ``LookupError`` if it is unknown."""
    e, s, f = t.executions.c, t.execution_slices.c, t.fills.c
    with engine.connect() as conn:
        row = conn.execute(select(t.executions).where(e.execution_id == execution_id)).mappings().first()
        if row is None:
            raise LookupError(f"no execution {execution_id!r}")
        slices = [dict(r) for r in conn.execute(
            select(t.execution_slices).where(s.execution_id == execution_id).order_by(s.slice_index)).mappings()]
        fills = [dict(r) for r in conn.execute(
            select(t.fills).where(f.execution_id == execution_id).order_by(f.filled_at, f.trade_id)).mappings()]
        start = row["started_at"]
        end = row["ended_at"] or conn.scalar(
            select(func.max(t.events.c.occurred_at)).where(t.events.c.aggregate_id == execution_id))
        candles, source = ([], SOURCE_NONE)
        if start is not None and end is not None and end > start:
            candles, source = market_window(conn, row["symbol"], start, end)
    return ExecutionHistory(dict(row), slices, fills, start, end, candles, source)
