"""Post-trade analysis, kept: ``router_metrics`` gets a bucket for every algorithm (VWAP was
counted nowhere), and ``execution_analyses`` stores the figures of each ``genesis report``
run (one row per execution, replaced by the next run) so that SQL can compare executions.
Documented in ``docs/sql.md``.

``router_metrics`` buckets by ``executions.algo`` (``twap``, ``vwap``, ``single``; the router
records ``--algo auto`` as ``twap`` or ``single``). ``execution_analyses`` is a derived cache,
not a projection: the report reads market candles that the events do not hold, so
``genesis db rebuild-projections`` leaves it alone. Prices, quantities and USDT amounts are
exact decimal text like the base tables; bps, ratios and seconds are floats.

Revision ID: 0005_analysis
Revises: 0004
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

from genesis.store.types import Money, UtcDateTime

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


def _money(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, Money, nullable=nullable)


def _float(name: str) -> sa.Column:
    return sa.Column(name, sa.Float, nullable=True)


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS router_metrics")
    op.execute(_router_metrics(ALGOS, "algo"))
    op.create_table(
        "execution_analyses",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("analysed_at", UtcDateTime, nullable=False),
        sa.Column("algo", sa.String(16), nullable=False),
        sa.Column("execution_style", sa.String(16), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("urgency", sa.String(16), nullable=True),
        sa.Column("completion_reason", sa.Text, nullable=True),
        sa.Column("window_start", UtcDateTime, nullable=True),
        sa.Column("window_end", UtcDateTime, nullable=True),
        sa.Column("planned_end", UtcDateTime, nullable=True),
        _float("elapsed_seconds"), _float("paused_seconds"),
        sa.Column("market_data_source", sa.Text, nullable=False),
        sa.Column("market_candles", sa.Integer, nullable=False),
        _money("window_market_volume"),
        _money("target_qty", False), _money("filled_qty", False), _money("remaining_qty", False),
        _float("fill_ratio"), _money("filled_notional_usdt", False),
        _money("arrival_price"), _money("avg_price"), _money("market_vwap"),
        sa.Column("market_vwap_source", sa.Text, nullable=True),
        _money("twap_benchmark"), _money("engine_market_vwap"),
        _float("implementation_shortfall_bps"), _float("slippage_vs_vwap_bps"), _float("slippage_vs_twap_bps"),
        _float("timing_bps"), _float("execution_cost_bps"), _float("fees_bps"),
        _money("fees_usdt", False), _money("maker_qty", False), _money("taker_qty", False), _float("maker_ratio"),
        _float("max_participation"), _float("avg_participation"), _float("window_participation"),
        _float("participation_cap"),
        *(sa.Column(f"slices_{n}", sa.Integer, nullable=False)
          for n in ("planned", "executed", "denied", "skipped", "unfilled", "failed", "open")),
        _float("avg_delay_seconds"), _float("max_delay_seconds"),
        _float("schedule_tracking_error"), _float("volume_curve_tracking_error"),
        _money("best_price"), _float("avg_vs_best_bps"), _money("capped_best_price"), _money("capped_best_qty"),
        sa.Column("capped_best_feasible", sa.Boolean, nullable=True), _float("avg_vs_capped_best_bps"),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_execution_analyses")),
    )


def downgrade() -> None:
    op.drop_table("execution_analyses")
    op.execute("DROP VIEW IF EXISTS router_metrics")
    op.execute(_router_metrics(("twap", "single"), "execution_style"))  # the view of 0002
