"""The database's identity: ``store_identity``, one row holding the random namespace that is
part of every client order id this database makes (``genesis.domain.ids.client_order_id``), so
two databases trading one account never send the same client order id.

The namespace is drawn once, here: when a new database is created, or when an existing one is
upgraded (its executions already started keep their stored ids). A copy of the file shares it.

Revision ID: 0006_store_namespace
Revises: 0005_analysis
Create Date: 2026-12-05
"""
import secrets
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from genesis.store.types import UtcDateTime

revision = "0006_store_namespace"
down_revision = "0005_analysis"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "store_identity",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("namespace", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_store_identity_one_row")),
    )
    # 10 lowercase hex characters, as genesis.domain.ids.new_store_namespace draws them
    op.bulk_insert(table, [{"id": 1, "namespace": secrets.token_hex(5),
                            "created_at": datetime.now(timezone.utc)}])


def downgrade() -> None:
    op.drop_table("store_identity")
