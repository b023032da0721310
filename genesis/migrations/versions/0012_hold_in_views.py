"""``held_seconds`` (0009: the time slicing was held, not by a user, in holds that ended) in
the views that show an execution's timing, beside ``paused_seconds``: ``execution_analysis``
(0004, as 0007 left it) and ``twap_executions`` (0001). ``daily_execution_summary`` reads
``execution_analysis`` and is recreated with it (unchanged); ``slice_analysis`` is left alone.
The downgrade restores the previous definitions.

``execution_analysis`` read ``e.*`` in its ``base`` step, which PostgreSQL expands when the
view is created: recreated now, it would depend on every later column of ``executions``
(``account``, the hold columns), and their own downgrades could not drop them. Both versions
recreated here name the columns the view reads instead; what the view shows is unchanged.

Revision ID: 0012_hold_in_views
Revises: 0011_execution_account
Create Date: 2026-12-05
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = "0012_hold_in_views"
down_revision = "0011_execution_account"
branch_labels = None
depends_on = None

# the executions columns execution_analysis reads (its ``e.*`` as of 0007, less what it does not use)
EXECUTION_COLUMNS = ("execution_id", "algo", "execution_style", "symbol", "side", "state", "urgency", "submitted_at",
                     "started_at", "end_at", "ended_at", "duration_seconds", "paused_seconds", "target_qty",
                     "filled_qty", "remaining_qty", "notional_usdt", "arrival_price", "avg_price",
                     "implementation_shortfall_bps", "market_vwap", "maker_qty", "fees_usdt", "slice_count",
                     "slices_executed", "slices_denied", "early_completion_at", "completion_reason")
ALL_COLUMNS = "SELECT e.*,"
PAUSED = "b.paused_seconds,"  # execution_analysis's timing columns end with it
PAUSED_AND_HELD = "b.paused_seconds, b.held_seconds,"
TWAP_PAUSED = "fees_usdt, paused_seconds,"
TWAP_PAUSED_AND_HELD = "fees_usdt, paused_seconds, held_seconds,"


def _revision(file_name: str):  # type: ignore[no-untyped-def]
    """An earlier revision's module (a revision module is not importable by name)."""
    spec = importlib.util.spec_from_file_location(f"_genesis_{Path(file_name).stem}",
                                                  Path(__file__).with_name(file_name))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _replace(sql: str, old: str, new: str) -> str:
    if sql.count(old) != 1:
        raise RuntimeError(f"an earlier revision's view SQL changed: expected {old!r} once")
    return sql.replace(old, new)


def _execution_analysis_0007(dialect: str, *extra_columns: str) -> str:
    """``execution_analysis`` as 0007 created it, reading the named ``EXECUTION_COLUMNS``
    (and ``extra_columns``) of ``executions``."""
    views, participation = _revision("0004_analytics_views.py"), _revision("0007_slice_participation.py")
    sql = participation._replace(views.execution_analysis(dialect), participation.PARTICIPATION,
                                 participation.COUNTED_PARTICIPATION, 2)
    named = ", ".join(f"e.{c}" for c in (*EXECUTION_COLUMNS, *extra_columns))
    return _replace(sql, ALL_COLUMNS, f"SELECT {named},")


def _recreate(execution_analysis: str, twap_executions: str) -> None:
    views = _revision("0004_analytics_views.py")
    for name in ("daily_execution_summary", "execution_analysis", "twap_executions"):  # dependants first
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute(execution_analysis)
    op.execute(views.DAILY_EXECUTION_SUMMARY)
    op.execute(twap_executions)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    twap = _revision("0001_event_store_and_projections.py").TWAP_EXECUTIONS_VIEW
    _recreate(_replace(_execution_analysis_0007(dialect, "held_seconds"), PAUSED, PAUSED_AND_HELD),
              _replace(twap, TWAP_PAUSED, TWAP_PAUSED_AND_HELD))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _recreate(_execution_analysis_0007(dialect), _revision("0001_event_store_and_projections.py").TWAP_EXECUTIONS_VIEW)
