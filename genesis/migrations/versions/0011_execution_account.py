"""The venue account of an execution: ``executions.account`` (from
``ExecutionSubmitted.account``; rows projected before it was recorded get the event's default,
``""``, so the projection still equals a replay), and ``commands.account``: the account whose
daemon takes the command (NULL: any daemon). Several daemons holding different accounts on
one database each work only the executions, and take only the commands, of the accounts they
hold.

Revision ID: 0011_execution_account
Revises: 0010_command_claims
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

revision = "0011_execution_account"
down_revision = "0010_command_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("account", sa.String(200), nullable=False, server_default=""))
    op.add_column("commands", sa.Column("account", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("commands", "account")
    op.drop_column("executions", "account")
