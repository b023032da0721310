"""VWAP: urgency, market VWAP benchmark per execution and slice, and the
candle cache of the market data service.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

from genesis.store.types import Money, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("urgency", sa.String(16), nullable=False, server_default="low"))
    op.add_column("executions", sa.Column("market_vwap", Money, nullable=True))
    op.add_column("executions", sa.Column("slippage_vs_vwap_bps", Money, nullable=True))
    op.add_column("execution_slices", sa.Column("market_vwap", Money, nullable=True))
    op.add_column("execution_slices", sa.Column("urgency", sa.String(16), nullable=True))
    op.create_table(
        "candles",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("open_time", UtcDateTime, nullable=False),
        sa.Column("open", Money, nullable=False),
        sa.Column("high", Money, nullable=False),
        sa.Column("low", Money, nullable=False),
        sa.Column("close", Money, nullable=False),
        sa.Column("volume", Money, nullable=False),
        sa.PrimaryKeyConstraint("symbol", "open_time", name=op.f("pk_candles")),
    )


def downgrade() -> None:
    op.drop_table("candles")
    for column in ("urgency", "market_vwap"):
        op.drop_column("execution_slices", column)
    for column in ("slippage_vs_vwap_bps", "market_vwap", "urgency"):
        op.drop_column("executions", column)
