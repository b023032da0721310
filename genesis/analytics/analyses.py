"""The ``execution_analyses`` table: what ``genesis report`` computed for an execution, kept so
that SQL can compare executions later (one row per execution, replaced by the next run).

A derived cache of the report, not a projection of the events (the report also reads market
candles): ``analysed_at`` says when it was computed, and re-running the report refreshes it.
Columns are documented in ``docs/sql.md``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Float, Integer, delete, insert
from sqlalchemy.engine import Engine

from genesis.store import tables as t
from genesis.store.types import Money, UtcDateTime

# column -> where the report dict holds it: a top-level key, or (section, key)
_SOURCES: dict[str, str | tuple[str, str]] = {
    "window_start": ("window", "start"), "window_end": ("window", "end"),
    "planned_end": ("window", "planned_end"), "elapsed_seconds": ("window", "elapsed_seconds"),
    "paused_seconds": ("window", "paused_seconds"), "held_seconds": ("window", "held_seconds"),
    "market_data_source": ("market_data", "source"), "market_candles": ("market_data", "candles"),
    "window_market_volume": ("market_data", "window_volume"),
    **{k: ("quantities", k) for k in ("target_qty", "filled_qty", "remaining_qty", "fill_ratio",
                                        "filled_notional_usdt")},
    **{k: ("prices", k) for k in ("arrival_price", "avg_price", "market_vwap", "market_vwap_source",
                                    "twap_benchmark", "engine_market_vwap")},
    **{f"{k}_bps": ("costs_bps", k) for k in ("implementation_shortfall", "slippage_vs_vwap", "slippage_vs_twap",
                                                "timing", "execution_cost", "fees")},
    **{k: ("liquidity", k) for k in ("maker_qty", "taker_qty", "maker_ratio")},
    "max_participation": ("participation", "max"), "avg_participation": ("participation", "avg"),
    "window_participation": ("participation", "window"), "participation_cap": ("participation", "cap"),
    **{f"slices_{k}": ("slices", k) for k in ("planned", "executed", "denied", "skipped", "unfilled", "failed",
                                                "open")},
    **{k: ("timing", k) for k in ("avg_delay_seconds", "max_delay_seconds", "schedule_tracking_error",
                                    "volume_curve_tracking_error")},
    **{k: ("best_execution", k) for k in ("best_price", "avg_vs_best_bps", "capped_best_price", "capped_best_qty",
                                            "capped_best_feasible", "avg_vs_capped_best_bps")},
}


def _typed(column: Any, value: Any) -> Any:
    """A report value (exact decimals as strings, times as ISO text) in the column's type."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, Money):
        return Decimal(value)
    if isinstance(kind, UtcDateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, Float):
        return float(value)
    if isinstance(kind, (Integer, Boolean)):
        return value
    return str(value)


def analysis_row(report: dict[str, Any], analysed_at: datetime) -> dict[str, Any]:
    """The ``execution_analyses`` row of a report (``genesis.analytics.report.tca_report``)."""
    row: dict[str, Any] = {"analysed_at": analysed_at}
    for column in t.execution_analyses.columns:
        if column.name == "analysed_at":
            continue
        source = _SOURCES.get(column.name, column.name)
        value = report[source] if isinstance(source, str) else report[source[0]][source[1]]
        row[column.name] = _typed(column, value)
    return row


def save_analysis(engine: Engine, report: dict[str, Any], analysed_at: datetime) -> None:
    """Store the report's row, replacing the execution's previous one, in one transaction."""
    row = analysis_row(report, analysed_at)
    table = t.execution_analyses
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.execution_id == row["execution_id"]))
        conn.execute(insert(table).values(**row))
