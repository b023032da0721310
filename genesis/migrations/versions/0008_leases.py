"""Leases: which daemon works which venue account (``genesis.store.leases``).

One row per account: ``owner`` (``host:pid:random``), ``epoch`` (bumped on every claim by a
new owner), ``expires_at`` and ``claimed_at`` (the database's clock). Not a projection: no
event fills it and a rebuild leaves it alone.

Revision ID: 0008_leases
Revises: 0007_slice_participation
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_leases"
down_revision = "0007_slice_participation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
