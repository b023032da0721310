"""Post-trade analysis views (transaction cost analysis): ``execution_analysis`` (one row per
execution), ``slice_analysis`` (one row per slice) and ``daily_execution_summary`` (per day,
symbol and algo). ``router_metrics`` (0002) is kept as it is. Documented in ``docs/sql.md``.

Every figure is a float (``CAST(... AS DOUBLE PRECISION)``: REAL on SQLite, float8 on
PostgreSQL) so that analysts can sort, compare and aggregate; the exact decimals stay in the
base tables. The SQL is standard except where no portable form exists (time differences,
day and hour of a timestamp): those come from the dialect helpers below, julianday/strftime
on SQLite and EXTRACT on PostgreSQL.

Views depend on ``executions``, ``execution_slices`` and ``candles``: later migrations must
alter those tables without batch mode (a batch rebuild would break the views), or drop and
recreate the views around it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

VIEWS = ("execution_analysis", "slice_analysis", "daily_execution_summary")  # creation order


def _num(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE PRECISION)"


def _seconds(dialect: str, later: str, earlier: str) -> str:
    """``later - earlier`` in seconds, rounded to the millisecond (julianday is only good to
    about 30 microseconds)."""
    if dialect == "postgresql":
        return f"ROUND(CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS NUMERIC), 3)"
    return f"ROUND((julianday({later}) - julianday({earlier})) * 86400.0, 3)"


def _day(dialect: str, ts: str) -> str:
    return f"CAST({ts} AS DATE)" if dialect == "postgresql" else f"date({ts})"


def _hour(dialect: str, ts: str) -> str:
    if dialect == "postgresql":
        return f"CAST(EXTRACT(HOUR FROM {ts}) AS INTEGER)"
    return f"CAST(strftime('%H', {ts}) AS INTEGER)"


def execution_analysis(d: str) -> str:
    # Market data over the window [started_at, ended_at or end_at): the candles that open in it.
    # They are used only when they cover it (at least one per whole minute of the window);
    # otherwise the engine's own benchmark (executions.market_vwap) stands.
    window_minutes = f"CAST(ROUND({_seconds(d, 'COALESCE(e.ended_at, e.end_at)', 'e.started_at')}) AS INTEGER) / 60"
    typical = f"({_num('c.high')} + {_num('c.low')} + {_num('c.close')})"
    sign = "CASE WHEN b.side = 'buy' THEN 1 ELSE -1 END"
    return f"""
CREATE VIEW execution_analysis AS
WITH window_candles AS (
  SELECT e.execution_id,
         COUNT(*) AS candle_count,
         SUM({_num('c.volume')}) AS market_volume,
         SUM({typical} * {_num('c.volume')}) AS hlc_volume,
         AVG({typical} / 3.0) AS twap_benchmark
  FROM executions e
  JOIN candles c ON c.symbol = e.symbol AND c.open_time >= e.started_at
                AND c.open_time < COALESCE(e.ended_at, e.end_at)
  GROUP BY e.execution_id, e.started_at, e.ended_at, e.end_at
  HAVING COUNT(*) >= {window_minutes}
), slice_stats AS (
  SELECT s.execution_id,
         MAX({_num('s.participation')}) AS max_participation,
         AVG(CASE WHEN {_num('s.filled_qty')} > 0 THEN {_num('s.participation')} END) AS avg_participation,
         SUM(CASE WHEN s.status = 'skipped' THEN 1 ELSE 0 END) AS slices_skipped,
         SUM(CASE WHEN s.status IN ('planned', 'sent') THEN 1 ELSE 0 END) AS slices_open,
         AVG({_seconds(d, 's.executed_at', 's.scheduled_at')}) AS avg_delay_seconds,
         MAX({_seconds(d, 's.executed_at', 's.scheduled_at')}) AS max_delay_seconds
  FROM execution_slices s
  GROUP BY s.execution_id
), base AS (
  SELECT e.*,
         CASE WHEN w.market_volume > 0 THEN w.hlc_volume / (3.0 * w.market_volume)
              ELSE {_num('e.market_vwap')} END AS bench_vwap,
         CASE WHEN w.market_volume > 0 THEN 'candles'
              WHEN e.market_vwap IS NOT NULL THEN 'engine' END AS bench_vwap_source,
         w.twap_benchmark, w.market_volume AS window_market_volume, w.candle_count,
         st.max_participation, st.avg_participation, st.slices_skipped, st.slices_open,
         st.avg_delay_seconds, st.max_delay_seconds
  FROM executions e
  LEFT JOIN window_candles w ON w.execution_id = e.execution_id
  LEFT JOIN slice_stats st ON st.execution_id = e.execution_id
)
SELECT b.execution_id, b.algo, b.execution_style, b.symbol, b.side, b.state, b.urgency,
       {_day(d, 'COALESCE(b.started_at, b.submitted_at)')} AS trade_date,
       {_hour(d, 'COALESCE(b.started_at, b.submitted_at)')} AS start_hour_utc,
       {_num('b.target_qty')} AS target_qty, {_num('b.filled_qty')} AS filled_qty,
       {_num('b.remaining_qty')} AS remaining_qty,
       {_num('b.filled_qty')} / NULLIF({_num('b.target_qty')}, 0) AS fill_ratio,
       {_num('b.notional_usdt')} AS filled_notional_usdt,
       b.submitted_at, b.started_at, b.end_at, b.ended_at, b.duration_seconds,
       {_seconds(d, 'b.ended_at', 'b.started_at')} AS elapsed_seconds, b.paused_seconds,
       {_num('b.arrival_price')} AS arrival_price, {_num('b.avg_price')} AS avg_price,
       {_num('b.implementation_shortfall_bps')} AS implementation_shortfall_bps,
       b.bench_vwap AS market_vwap, b.bench_vwap_source AS market_vwap_source,
       {sign} * ({_num('b.avg_price')} - b.bench_vwap) / NULLIF(b.bench_vwap, 0) * 10000.0
         AS slippage_vs_vwap_bps,
       b.twap_benchmark,
       {sign} * ({_num('b.avg_price')} - b.twap_benchmark) / NULLIF(b.twap_benchmark, 0) * 10000.0
         AS slippage_vs_twap_bps,
       b.window_market_volume,
       {_num('b.filled_qty')} / NULLIF(b.window_market_volume, 0) AS window_participation,
       b.max_participation, b.avg_participation,
       {_num('b.maker_qty')} AS maker_qty,
       {_num('b.maker_qty')} / NULLIF({_num('b.filled_qty')}, 0) AS maker_ratio,
       {_num('b.fees_usdt')} AS fees_usdt,
       b.slice_count AS slices_planned, b.slices_executed, b.slices_denied,
       COALESCE(b.slices_skipped, 0) AS slices_skipped, COALESCE(b.slices_open, 0) AS slices_open,
       b.avg_delay_seconds, b.max_delay_seconds,
       b.early_completion_at, b.completion_reason
FROM base b
"""


def slice_analysis(d: str) -> str:
    return f"""
CREATE VIEW slice_analysis AS
SELECT s.execution_id, e.symbol, e.side, e.algo, s.slice_index, s.status,
       s.scheduled_at, s.executed_at,
       {_seconds(d, 's.executed_at', 's.scheduled_at')} AS delay_seconds,
       {_num('s.planned_qty')} AS planned_qty, {_num('s.filled_qty')} AS filled_qty,
       {_num('s.filled_qty')} / NULLIF({_num('s.planned_qty')}, 0) AS fill_ratio,
       {_num('s.avg_price')} AS avg_price, {_num('s.reference_price')} AS reference_price,
       {_num('s.slippage_bps')} AS slippage_bps,
       {_num('s.maker_qty')} AS maker_qty, {_num('s.taker_qty')} AS taker_qty,
       {_num('s.fee')} AS fee, s.client_order_id, s.attempts,
       {_num('s.market_volume')} AS market_volume, {_num('s.participation')} AS participation,
       s.cap_bound, s.volume_anomaly, {_num('s.market_vwap')} AS market_vwap, s.urgency,
       CASE WHEN s.status = 'denied' THEN 'denied'
            WHEN s.status = 'skipped' THEN 'not_checked'
            WHEN s.status = 'planned' THEN NULL
            ELSE 'approved' END AS risk_decision,
       s.risk_reason, s.reason
FROM execution_slices s
JOIN executions e ON e.execution_id = s.execution_id
"""


DAILY_EXECUTION_SUMMARY = """
CREATE VIEW daily_execution_summary AS
SELECT trade_date, symbol, algo,
       COUNT(*) AS executions,
       SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END) AS completed,
       SUM(filled_qty) AS filled_qty,
       SUM(filled_notional_usdt) AS filled_notional_usdt,
       AVG(implementation_shortfall_bps) AS avg_is_bps,
       SUM(implementation_shortfall_bps * filled_notional_usdt)
         / NULLIF(SUM(CASE WHEN implementation_shortfall_bps IS NOT NULL THEN filled_notional_usdt END), 0)
         AS notional_weighted_is_bps,
       AVG(slippage_vs_vwap_bps) AS avg_slippage_vs_vwap_bps,
       SUM(fees_usdt) AS fees_usdt,
       SUM(maker_qty) / NULLIF(SUM(filled_qty), 0) AS maker_ratio
FROM execution_analysis
WHERE started_at IS NOT NULL
GROUP BY trade_date, symbol, algo
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name in reversed(VIEWS):  # create/replace: SQLite has no CREATE OR REPLACE VIEW
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute(execution_analysis(dialect))
    op.execute(slice_analysis(dialect))
    op.execute(DAILY_EXECUTION_SUMMARY)


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
