"""TWAP and router facts: maker/taker split, participation cap
and anomaly flags per slice, early completion, and the router metrics view.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

from genesis.store.types import Money, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROUTER_METRICS_VIEW = """
CREATE VIEW router_metrics AS
SELECT
  SUM(CASE WHEN e.execution_style = 'twap' THEN 1 ELSE 0 END) AS twap_trades_count,
  AVG(CASE WHEN e.execution_style = 'twap' THEN CAST(s.slippage_bps AS DOUBLE PRECISION) END) AS twap_avg_slippage_bps,
  SUM(CASE WHEN e.execution_style = 'single' THEN 1 ELSE 0 END) AS single_trades_count,
  AVG(CASE WHEN e.execution_style = 'single' THEN CAST(s.slippage_bps AS DOUBLE PRECISION) END) AS single_avg_slippage_bps
FROM execution_slices s JOIN executions e ON e.execution_id = s.execution_id
WHERE CAST(s.filled_qty AS DOUBLE PRECISION) > 0
"""


# ADD/DROP COLUMN without batch mode: SQLite (>= 3.35) does both in place, and a batch
# table rebuild would break the views that select from these tables.
def upgrade() -> None:
    op.add_column("execution_slices", sa.Column("maker_qty", Money, nullable=False, server_default="0"))
    op.add_column("execution_slices", sa.Column("taker_qty", Money, nullable=False, server_default="0"))
    op.add_column("execution_slices", sa.Column("cap_bound", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("execution_slices", sa.Column("volume_anomaly", sa.Boolean, nullable=False,
                                                server_default=sa.false()))
    op.add_column("executions", sa.Column("early_completion_at", UtcDateTime, nullable=True))
    op.add_column("executions", sa.Column("maker_qty", Money, nullable=False, server_default="0"))
    op.execute(ROUTER_METRICS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS router_metrics")
    for column in ("maker_qty", "early_completion_at"):
        op.drop_column("executions", column)
    for column in ("volume_anomaly", "cap_bound", "taker_qty", "maker_qty"):
        op.drop_column("execution_slices", column)
