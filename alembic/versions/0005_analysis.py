"""Post-trade analysis: ``router_metrics`` gets a bucket for every algorithm (VWAP was
counted nowhere). Documented in ``docs/sql.md``.

``router_metrics`` buckets by ``executions.algo`` (``twap``, ``vwap``, ``single``; the router
records ``--algo auto`` as ``twap`` or ``single``).

Revision ID: 0005_analysis
Revises: 0004
Create Date: 2026-12-05
"""
from alembic import op

revision = "0005_analysis"
down_revision = "0004"
branch_labels = None
depends_on = None

ALGOS = ("twap", "single", "vwap")  # the patch's two buckets first, as before


def _router_metrics(algos: tuple[str, ...], column: str) -> str:
    buckets = ",\n".join(
        f"  SUM(CASE WHEN e.{column} = '{a}' THEN 1 ELSE 0 END) AS {a}_trades_count,\n"
        f"  AVG(CASE WHEN e.{column} = '{a}' THEN CAST(s.slippage_bps AS DOUBLE PRECISION) END)"
        f" AS {a}_avg_slippage_bps" for a in algos)
    return f"""
CREATE VIEW router_metrics AS
SELECT
{buckets}
FROM execution_slices s JOIN executions e ON e.execution_id = s.execution_id
WHERE CAST(s.filled_qty AS DOUBLE PRECISION) > 0
"""


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS router_metrics")
    op.execute(_router_metrics(ALGOS, "algo"))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS router_metrics")
    op.execute(_router_metrics(("twap", "single"), "execution_style"))  # the view of 0002
