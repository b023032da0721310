"""Alembic environment: synchronous migrations, batch mode for SQLite's limited ALTER."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from genesis.store.migrate import schema_objects_of
from genesis.store.tables import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> URL:
    """``-x db=...``: a URL, or a file path taken literally (``%20``, ``?``, ``#`` included)."""
    db = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get("GENESIS_DB") or "genesis.db"
    return make_url(db) if "://" in db else URL.create("sqlite", database=db)


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url())
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=schema_objects_of(connection.dialect.name),  # autogenerate: this dialect's indexes
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations()
