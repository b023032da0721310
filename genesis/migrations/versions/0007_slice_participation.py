"""Slices: realised participation apart from the forecast, emergency slices flagged.

``execution_slices.market_volume`` and ``participation`` now mean the market volume actually
traded in the slice's interval and the slice's fills over it (``SliceParticipationMeasured``);
what they held until now, the forecast the participation cap was computed on, moves to
``forecast_volume`` and ``forecast_participation`` (the event codec reads old slice events
the same way, so a rebuild gives the same rows). ``cap_overridden`` marks emergency slices
(sized beyond the cap by design), ``interval_start``/``interval_end`` the interval a slice
was sized for. The analysis views (0004) are recreated around the change: their participation
statistics leave out ``cap_overridden`` slices, ``slice_analysis`` shows the new columns.

Revision ID: 0007_slice_participation
Revises: 0006_store_namespace
Create Date: 2026-12-05
"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa

from genesis.store.types import Money, UtcDateTime

revision = "0007_slice_participation"
down_revision = "0006_store_namespace"
branch_labels = None
depends_on = None

PARTICIPATION = "CAST(s.participation AS DOUBLE PRECISION)"
COUNTED_PARTICIPATION = "CAST(CASE WHEN s.cap_overridden THEN NULL ELSE s.participation END AS DOUBLE PRECISION)"
NEW_SLICE_COLUMNS = ("s.cap_bound, s.cap_overridden, s.volume_anomaly, "
                     "CAST(s.forecast_volume AS DOUBLE PRECISION) AS forecast_volume, "
                     "CAST(s.forecast_participation AS DOUBLE PRECISION) AS forecast_participation, "
                     "s.interval_start, s.interval_end,")
ENDED_UNTRADED = "WHEN s.status IN ('planned', 'not_needed', 'expired') THEN NULL"


def _views_0004():  # type: ignore[no-untyped-def]
    """Revision 0004's view builders (its module is not importable by name)."""
    spec = importlib.util.spec_from_file_location("_genesis_views_0004",
                                                  Path(__file__).with_name("0004_analytics_views.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _replace(sql: str, old: str, new: str, count: int) -> str:
    if sql.count(old) != count:
        raise RuntimeError(f"0004's view SQL changed: expected {old!r} {count} time(s)")
    return sql.replace(old, new)


def _drop_views(views) -> None:  # type: ignore[no-untyped-def]
    for name in reversed(views.VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")


def upgrade() -> None:
    views = _views_0004()
    dialect = op.get_bind().dialect.name
    _drop_views(views)
    op.add_column("execution_slices", sa.Column("forecast_volume", Money, nullable=True))
    op.add_column("execution_slices", sa.Column("forecast_participation", Money, nullable=True))
    op.add_column("execution_slices", sa.Column("cap_overridden", sa.Boolean, nullable=False,
                                                server_default=sa.false()))
    op.add_column("execution_slices", sa.Column("interval_start", UtcDateTime, nullable=True))
    op.add_column("execution_slices", sa.Column("interval_end", UtcDateTime, nullable=True))
    op.execute("UPDATE execution_slices SET forecast_volume = market_volume, forecast_participation = participation, "
               "market_volume = NULL, participation = NULL")
    op.execute(_replace(views.execution_analysis(dialect), PARTICIPATION, COUNTED_PARTICIPATION, 2))
    slices = _replace(views.slice_analysis(dialect), "s.cap_bound, s.volume_anomaly,", NEW_SLICE_COLUMNS, 1)
    op.execute(_replace(slices, "WHEN s.status = 'planned' THEN NULL", ENDED_UNTRADED, 1))
    op.execute(views.DAILY_EXECUTION_SUMMARY)


def downgrade() -> None:
    views = _views_0004()
    _drop_views(views)
    op.execute("UPDATE execution_slices SET market_volume = forecast_volume, participation = forecast_participation")
    for column in ("interval_end", "interval_start", "cap_overridden", "forecast_participation", "forecast_volume"):
        op.drop_column("execution_slices", column)
    views.upgrade()
