"""Slicing holds and the venue's use of the exchange's limits.

``executions.held_since``/``hold_reason``: a hold of new slices that is not a user pause
(``SlicingHeld``: the venue's market data has been down past its limit), open until
``SlicingResumed``; ``held_seconds``: the holds that ended, in total. Projections: a rebuild
gives the same values.

``venue_usage``: one row per venue account, written by the daemon every few seconds (not a
projection: no event fills it and a rebuild leaves it alone): the request weight used in the
exchange's last minute and its limit, the order counts per 10 s and per day with their
limits, and the weight per slice since the daemon started, for ``genesis status`` (another
process) to show.

Revision ID: 0009_slicing_hold
Revises: 0008_leases
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

from genesis.store.types import UtcDateTime

revision = "0009_slicing_hold"
down_revision = "0008_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("held_since", UtcDateTime, nullable=True))
    op.add_column("executions", sa.Column("hold_reason", sa.String(64), nullable=True))
    op.add_column("executions", sa.Column("held_seconds", sa.Float, nullable=False, server_default="0"))
    op.create_table(
        "venue_usage",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weight_used_1m", sa.Float, nullable=True),
        sa.Column("weight_limit_1m", sa.Float, nullable=True),
        sa.Column("weight_source", sa.String(16), nullable=True),
        sa.Column("order_count_10s", sa.Integer, nullable=True),
        sa.Column("order_limit_10s", sa.Integer, nullable=True),
        sa.Column("order_count_1d", sa.Integer, nullable=True),
        sa.Column("order_limit_1d", sa.Integer, nullable=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("rate_limited", sa.BigInteger, nullable=False),
        sa.Column("weight_since_start", sa.Float, nullable=False),
        sa.Column("slices_since_start", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("venue_usage")
    for column in ("held_seconds", "hold_reason", "held_since"):
        op.drop_column("executions", column)
