"""PostgreSQL: ``executions`` row updates made HOT (heap-only: no new index entries). The
projection updates an ``executions`` row on nearly every event; PostgreSQL writes a new
version of the row and, unless the update is HOT, a new entry in every index of the table.
An update is HOT only when it changes no indexed column and the new version fits on the
row's page. So, on PostgreSQL only:

- ``ix_executions_state`` is dropped: ``state`` changes with pause, resume, start and the end.
  What it served (the live executions at start and failover, ``genesis watch``, the metrics'
  count by state) reads the table sequentially instead: ~14-24 ms at 100,000 executions
  (docs/performance.md, "PostgreSQL append: HOT projection updates..."). SQLite keeps the index (no
  such cost there).
- ``fillfactor = 80``: inserts leave a fifth of each page free, so the updates of the live
  executions, which are the newest rows, find room on their own page.

Revision ID: 0014_executions_hot_updates
Revises: 0013_held_in_analyses
Create Date: 2026-12-05
"""
from alembic import op

revision = "0014_executions_hot_updates"
down_revision = "0013_held_in_analyses"
branch_labels = None
depends_on = None

FILLFACTOR = 80  # as genesis.store.tables' ``executions`` (postgresql_with)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_executions_state", table_name="executions")
    op.execute(f"ALTER TABLE executions SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE executions RESET (fillfactor)")
    op.create_index("ix_executions_state", "executions", ["state"])
