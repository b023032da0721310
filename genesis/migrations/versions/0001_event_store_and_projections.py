"""Event store, command inbox, execution projections and the TWAP story's views.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

from genesis.store.types import Money, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TWAP_EXECUTIONS_VIEW = """
CREATE VIEW twap_executions AS
SELECT execution_id, symbol, side, state AS status, target_qty AS total_quantity,
       filled_qty AS executed_quantity, remaining_qty, duration_seconds,
       slice_count, slices_executed, arrival_price, avg_price AS twap_price,
       implementation_shortfall_bps, fees_usdt, paused_seconds,
       started_at, end_at, ended_at AS completed_at, completion_reason
FROM executions WHERE algo = 'twap'
"""

TWAP_SLICE_HISTORY_VIEW = """
CREATE VIEW twap_slice_history AS
SELECT s.execution_id, s.slice_index AS slice_number, s.scheduled_at, s.executed_at,
       s.planned_qty, s.filled_qty AS executed_quantity, s.avg_price AS execution_price,
       s.reference_price AS market_price, s.slippage_bps, s.fee, s.market_volume,
       s.participation AS participation_rate, s.status, s.client_order_id, s.risk_reason
FROM execution_slices s JOIN executions e ON e.execution_id = s.execution_id
WHERE e.algo = 'twap'
"""


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("sequence_number", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("aggregate_id", sa.String(64), nullable=False),
        sa.Column("aggregate_version", sa.Integer, nullable=False),
        sa.Column("event_data", sa.Text, nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
        sa.UniqueConstraint("sequence_number", name=op.f("uq_events_sequence_number")),
        sa.UniqueConstraint("aggregate_id", "aggregate_version",
                            name=op.f("uq_events_aggregate_id_aggregate_version")),
    )
    op.create_table(
        "commands",
        sa.Column("command_id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("processed_at", UtcDateTime, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_commands")),
        sa.UniqueConstraint("request_id", name=op.f("uq_commands_request_id")),
    )
    op.create_index("ix_commands_pending", "commands", ["processed_at", "command_id"])
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("algo", sa.String(16), nullable=False),
        sa.Column("execution_style", sa.String(16), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("target_qty", Money, nullable=False),
        sa.Column("filled_qty", Money, nullable=False),
        sa.Column("remaining_qty", Money, nullable=False),
        sa.Column("avg_price", Money),
        sa.Column("arrival_price", Money),
        sa.Column("limit_price", Money),
        sa.Column("notional_usdt", Money, nullable=False),
        sa.Column("fees_usdt", Money, nullable=False),
        sa.Column("implementation_shortfall_bps", Money),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("slice_count", sa.Integer),
        sa.Column("slices_executed", sa.Integer, nullable=False),
        sa.Column("slices_denied", sa.Integer, nullable=False),
        sa.Column("submitted_at", UtcDateTime, nullable=False),
        sa.Column("started_at", UtcDateTime),
        sa.Column("end_at", UtcDateTime),
        sa.Column("ended_at", UtcDateTime),
        sa.Column("paused_at", UtcDateTime),
        sa.Column("paused_seconds", sa.Float, nullable=False),
        sa.Column("completion_reason", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_executions")),
    )
    op.create_index("ix_executions_state", "executions", ["state"])
    op.create_index("ix_executions_symbol_submitted", "executions", ["symbol", "submitted_at"])
    op.create_table(
        "execution_slices",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("slice_index", sa.Integer, nullable=False),
        sa.Column("scheduled_at", UtcDateTime, nullable=False),
        sa.Column("planned_qty", Money, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("executed_at", UtcDateTime),
        sa.Column("filled_qty", Money, nullable=False),
        sa.Column("avg_price", Money),
        sa.Column("reference_price", Money),
        sa.Column("slippage_bps", Money),
        sa.Column("fee", Money, nullable=False),
        sa.Column("market_volume", Money),
        sa.Column("participation", Money),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("client_order_id", sa.String(64)),
        sa.Column("risk_reason", sa.Text),
        sa.Column("reason", sa.Text),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.execution_id"],
                                name=op.f("fk_execution_slices_execution_id_executions")),
        sa.PrimaryKeyConstraint("execution_id", "slice_index", name=op.f("pk_execution_slices")),
    )
    op.create_table(
        "child_orders",
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("slice_index", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("time_in_force", sa.String(16), nullable=False),
        sa.Column("qty", Money, nullable=False),
        sa.Column("limit_price", Money),
        sa.Column("reference_price", Money, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("venue_order_id", sa.String(64)),
        sa.Column("filled_qty", Money, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("intended_at", UtcDateTime, nullable=False),
        sa.Column("closed_at", UtcDateTime),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.execution_id"],
                                name=op.f("fk_child_orders_execution_id_executions")),
        sa.PrimaryKeyConstraint("client_order_id", name=op.f("pk_child_orders")),
    )
    op.create_index("ix_child_orders_execution", "child_orders", ["execution_id", "slice_index"])
    op.create_table(
        "fills",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("slice_index", sa.Integer, nullable=False),
        sa.Column("qty", Money, nullable=False),
        sa.Column("price", Money, nullable=False),
        sa.Column("fee", Money, nullable=False),
        sa.Column("fee_asset", sa.String(16), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("filled_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.execution_id"],
                                name=op.f("fk_fills_execution_id_executions")),
        sa.ForeignKeyConstraint(["client_order_id"], ["child_orders.client_order_id"],
                                name=op.f("fk_fills_client_order_id_child_orders")),
        sa.PrimaryKeyConstraint("execution_id", "trade_id", name=op.f("pk_fills")),
    )
    op.create_index("ix_fills_client_order", "fills", ["client_order_id"])
    op.execute(TWAP_EXECUTIONS_VIEW)
    op.execute(TWAP_SLICE_HISTORY_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS twap_slice_history")
    op.execute("DROP VIEW IF EXISTS twap_executions")
    op.drop_index("ix_fills_client_order", table_name="fills")
    op.drop_table("fills")
    op.drop_index("ix_child_orders_execution", table_name="child_orders")
    op.drop_table("child_orders")
    op.drop_table("execution_slices")
    op.drop_index("ix_executions_symbol_submitted", table_name="executions")
    op.drop_index("ix_executions_state", table_name="executions")
    op.drop_table("executions")
    op.drop_index("ix_commands_pending", table_name="commands")
    op.drop_table("commands")
    op.drop_table("events")
