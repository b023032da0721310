"""Command claims: ``commands.claimed_by``, the daemon (lease owner, ``host:pid:random``) that
took a pending command, so that several daemons reading one inbox never take the same command
twice (``genesis.store.inbox.claim_commands``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
A claim whose owner no longer holds a live lease is taken over by the next daemon.

And the view ``account_owners`` (``genesis sql``): which daemon owns which venue account, by
the database's clock: ``account``, ``owner`` (``host:pid:random``), ``epoch``, ``held``
(the lease is live), ``held_until`` and ``claimed_at``.

Revision ID: 0010_command_claims
Revises: 0009_slicing_hold
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_command_claims"
down_revision = "0009_slicing_hold"
branch_labels = None
depends_on = None


NOW = {"postgresql": "clock_timestamp()", "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')"}


def upgrade() -> None:
    op.add_column("commands", sa.Column("claimed_by", sa.String(300), nullable=True))
    now = NOW[op.get_bind().dialect.name]
    op.execute(f"CREATE VIEW account_owners AS SELECT account, owner, epoch, expires_at > {now} AS held, "
               f"expires_at AS held_until, claimed_at FROM leases")


def downgrade() -> None:
    op.execute("DROP VIEW account_owners")
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("claimed_by")
