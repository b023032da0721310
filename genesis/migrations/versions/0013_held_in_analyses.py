"""``execution_analyses.held_seconds``: the time slicing was held without a pause (``SlicingHeld``:
market data unavailable, an order of unknown outcome past its deadline), as ``genesis report``
now shows it in its ``window`` section beside ``paused_seconds``. Rows stored before this
revision have NULL there until the report is run again (the table is a derived cache).

Revision ID: 0013_held_in_analyses
Revises: 0012_hold_in_views
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

revision = "0013_held_in_analyses"
down_revision = "0012_hold_in_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("execution_analyses", sa.Column("held_seconds", sa.Float, nullable=True))


def downgrade() -> None:
    op.drop_column("execution_analyses", "held_seconds")
