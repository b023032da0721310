"""Table definitions (SQLAlchemy Core). Alembic migrations create them; this module is what
the code reads and writes through. Keep the two in step (``tests/test_migrations.py`` checks)."""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String,
                        Table, Text, UniqueConstraint, false)

from genesis.store.types import Money, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

events = Table(
    "events", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("sequence_number", Integer, nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("aggregate_version", Integer, nullable=False),
    Column("event_data", Text, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("aggregate_id", "aggregate_version"),
)

commands = Table(
    "commands", metadata,
    Column("command_id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(128), unique=True, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("execution_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("processed_at", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("detail", Text, nullable=True),
    Column("claimed_by", String(300), nullable=True),  # the daemon (lease owner) that took it; 0010
    # the venue account whose daemon takes it (0011); NULL: any daemon (a submission then
    # trades on the taking daemon's account)
    Column("account", String(200), nullable=True),
    Index("ix_commands_pending", "processed_at", "command_id"),
)

executions = Table(
    "executions", metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("request_id", String(128), nullable=False),
    Column("algo", String(16), nullable=False),
    Column("execution_style", String(16), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("state", String(16), nullable=False),
    Column("target_qty", Money, nullable=False),
    Column("filled_qty", Money, nullable=False),
    Column("remaining_qty", Money, nullable=False),
    Column("avg_price", Money),
    Column("arrival_price", Money),
    Column("limit_price", Money),
    Column("notional_usdt", Money, nullable=False),
    Column("fees_usdt", Money, nullable=False),
    Column("implementation_shortfall_bps", Money),
    Column("duration_seconds", Integer, nullable=False),
    Column("slice_count", Integer),
    Column("slices_executed", Integer, nullable=False),
    Column("slices_denied", Integer, nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("end_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("paused_at", UtcDateTime),
    Column("paused_seconds", Float, nullable=False),
    Column("completion_reason", Text),
    Column("version", Integer, nullable=False),
    Column("early_completion_at", UtcDateTime),
    Column("maker_qty", Money, nullable=False, server_default="0"),
    Column("urgency", String(16), nullable=False, server_default="low"),
    Column("market_vwap", Money),
    Column("slippage_vs_vwap_bps", Money),
    Column("held_since", UtcDateTime),
    Column("hold_reason", String(64)),
    Column("held_seconds", Float, nullable=False, server_default="0"),
    Column("account", String(200), nullable=False, server_default=""),  # 0011; "": not recorded
    # SQLite only: on PostgreSQL an index on ``state`` would make the updates that change it
    # non-HOT (migration 0014); the live executions are read there by a sequential scan
    Index("ix_executions_state", "state").ddl_if(dialect="sqlite"),
    Index("ix_executions_symbol_submitted", "symbol", "submitted_at"),
    postgresql_with={"fillfactor": 80},  # room on each page for HOT updates (migration 0014)
)

execution_slices = Table(
    "execution_slices", metadata,
    Column("execution_id", String(64), ForeignKey("executions.execution_id"), primary_key=True),
    Column("slice_index", Integer, primary_key=True),
    Column("scheduled_at", UtcDateTime, nullable=False),
    Column("planned_qty", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("executed_at", UtcDateTime),
    Column("filled_qty", Money, nullable=False),
    Column("avg_price", Money),
    Column("reference_price", Money),
    Column("slippage_bps", Money),
    Column("fee", Money, nullable=False),
    Column("market_volume", Money),
    Column("participation", Money),
    Column("attempts", Integer, nullable=False),
    Column("client_order_id", String(64)),
    Column("risk_reason", Text),
    Column("reason", Text),
    Column("maker_qty", Money, nullable=False, server_default="0"),
    Column("taker_qty", Money, nullable=False, server_default="0"),
    Column("cap_bound", Boolean, nullable=False, server_default=false()),
    Column("volume_anomaly", Boolean, nullable=False, server_default=false()),
    Column("market_vwap", Money),
    Column("urgency", String(16)),
    # market_volume/participation above are realised (SliceParticipationMeasured); the
    # forecast the participation cap was computed on has its own columns
    Column("forecast_volume", Money),
    Column("forecast_participation", Money),
    Column("cap_overridden", Boolean, nullable=False, server_default=false()),
    Column("interval_start", UtcDateTime),
    Column("interval_end", UtcDateTime),
)

candles = Table(
    "candles", metadata,
    Column("symbol", String(32), primary_key=True),
    Column("open_time", UtcDateTime, primary_key=True),
    Column("open", Money, nullable=False),
    Column("high", Money, nullable=False),
    Column("low", Money, nullable=False),
    Column("close", Money, nullable=False),
    Column("volume", Money, nullable=False),
)

child_orders = Table(
    "child_orders", metadata,
    Column("client_order_id", String(64), primary_key=True),
    Column("execution_id", String(64), ForeignKey("executions.execution_id"), nullable=False),
    Column("slice_index", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("order_type", String(16), nullable=False),
    Column("time_in_force", String(16), nullable=False),
    Column("qty", Money, nullable=False),
    Column("limit_price", Money),
    Column("reference_price", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("venue_order_id", String(64)),
    Column("filled_qty", Money, nullable=False),
    Column("reason", Text),
    Column("intended_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Index("ix_child_orders_execution", "execution_id", "slice_index"),
)

fills = Table(
    "fills", metadata,
    Column("execution_id", String(64), ForeignKey("executions.execution_id"), primary_key=True),
    Column("trade_id", String(64), primary_key=True),
    Column("client_order_id", String(64), ForeignKey("child_orders.client_order_id"), nullable=False),
    Column("slice_index", Integer, nullable=False),
    Column("qty", Money, nullable=False),
    Column("price", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("fee_asset", String(16), nullable=False),
    Column("liquidity", String(8), nullable=False),
    Column("filled_at", UtcDateTime, nullable=False),
    Index("ix_fills_client_order", "client_order_id"),
)



def _money(name: str, nullable: bool = True) -> Column:  # type: ignore[type-arg]
    return Column(name, Money, nullable=nullable)


def _float(name: str) -> Column:  # type: ignore[type-arg]
    return Column(name, Float)


# What `genesis report` computed, one row per execution (replaced by the next run): a derived
# cache, not a projection (the report also reads market candles the events do not hold), so
# rebuilding the projections leaves it alone. Columns as in docs/sql.md.
execution_analyses = Table(
    "execution_analyses", metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("analysed_at", UtcDateTime, nullable=False),
    Column("algo", String(16), nullable=False),
    Column("execution_style", String(16), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("state", String(16), nullable=False),
    Column("urgency", String(16)),
    Column("completion_reason", Text),
    Column("window_start", UtcDateTime),
    Column("window_end", UtcDateTime),
    Column("planned_end", UtcDateTime),
    _float("elapsed_seconds"), _float("paused_seconds"), _float("held_seconds"),
    Column("market_data_source", Text, nullable=False),
    Column("market_candles", Integer, nullable=False),
    _money("window_market_volume"),
    _money("target_qty", False), _money("filled_qty", False), _money("remaining_qty", False),
    _float("fill_ratio"), _money("filled_notional_usdt", False),
    _money("arrival_price"), _money("avg_price"), _money("market_vwap"),
    Column("market_vwap_source", Text),
    _money("twap_benchmark"), _money("engine_market_vwap"),
    _float("implementation_shortfall_bps"), _float("slippage_vs_vwap_bps"), _float("slippage_vs_twap_bps"),
    _float("timing_bps"), _float("execution_cost_bps"), _float("fees_bps"),
    _money("fees_usdt", False), _money("maker_qty", False), _money("taker_qty", False), _float("maker_ratio"),
    _float("max_participation"), _float("avg_participation"), _float("window_participation"),
    _float("participation_cap"),
    *(Column(f"slices_{n}", Integer, nullable=False)
      for n in ("planned", "executed", "denied", "skipped", "unfilled", "failed", "open")),
    _float("avg_delay_seconds"), _float("max_delay_seconds"),
    _float("schedule_tracking_error"), _float("volume_curve_tracking_error"),
    _money("best_price"), _float("avg_vs_best_bps"), _money("capped_best_price"), _money("capped_best_qty"),
    Column("capped_best_feasible", Boolean), _float("avg_vs_capped_best_bps"),
)


# one row: the random namespace in every client order id this database makes (never rebuilt)
store_identity = Table(
    "store_identity", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("namespace", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

# which daemon works which venue account (genesis.store.leases); not a projection
leases = Table(
    "leases", metadata,
    Column("account", String(200), primary_key=True),
    Column("owner", String(300), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)

# the daemon's use of each venue account's limits (genesis.store.venue_usage); not a projection
venue_usage = Table(
    "venue_usage", metadata,
    Column("account", String(200), primary_key=True),
    Column("venue", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("weight_used_1m", Float),
    Column("weight_limit_1m", Float),
    Column("weight_source", String(16)),
    Column("order_count_10s", Integer),
    Column("order_limit_10s", Integer),
    Column("order_count_1d", Integer),
    Column("order_limit_1d", Integer),
    Column("requests", BigInteger, nullable=False),
    Column("rate_limited", BigInteger, nullable=False),
    Column("weight_since_start", Float, nullable=False),
    Column("slices_since_start", BigInteger, nullable=False),
)

PROJECTION_TABLES = (fills, child_orders, execution_slices, executions)  # delete order (FKs)
