"""Databases migrated to head for tests, without running the Alembic chain once per test.

The chain runs once per test session and backend, for real (``migrate.upgrade`` on an empty
SQLite file and on an empty PostgreSQL database): that is the template. Each test then gets a
copy: the SQLite file copied byte for byte (mode 0600, as ``migrate`` creates it), the
PostgreSQL database made by ``CREATE DATABASE ... TEMPLATE``. The one row a migration draws at
random, the database's client id namespace (``store_identity``, 0006), is drawn again for each
copy, so two test databases never share it unless a test makes them. The migration tests
(``test_migrations.py``) and the tests of the daemon's or the CLI's own migrating keep running
the chain on empty databases.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from genesis.domain.ids import new_store_namespace
from genesis.store import migrate
from tests.postgres import fresh_database

_templates: dict[str, object] = {}  # "sqlite": the template file; "postgresql": its database's URL


def _sqlite_template() -> Path:
    if "sqlite" not in _templates:
        directory = Path(tempfile.mkdtemp(prefix="genesis-template-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "template.db"
        migrate.upgrade(path)  # the real chain, once
        assert not path.with_name(path.name + "-wal").exists(), "the template's WAL was not checkpointed"
        _templates["sqlite"] = path
    return _templates["sqlite"]  # type: ignore[return-value]


def migrated_sqlite(path: Path) -> Path:
    """``path`` at the head revision, like ``migrate.upgrade``: a new file is a copy of the
    session's template with its own namespace; an existing file is upgraded by Alembic (one
    query when it is at head)."""
    if path.exists():
        migrate.upgrade(path)
        return path
    template = _sqlite_template()
    migrate.create_private_file(path)  # 0600: copyfile writes into it, keeping the mode
    shutil.copyfile(template, path)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("UPDATE store_identity SET namespace = ?", (new_store_namespace(),))
    finally:
        conn.close()
    return path


def _postgres_template() -> str:
    """The name of the session's migrated PostgreSQL template database (made on first use)."""
    if "postgresql" not in _templates:
        database = fresh_database()  # skips, or fails under CI=true, when the server is unreachable
        url = next(database)
        migrate.upgrade(url)  # the real chain, once
        _templates["postgresql"] = (url, database)
    url, _ = _templates["postgresql"]  # type: ignore[misc]
    return url.database  # type: ignore[no-any-return]


def migrated_postgres() -> Iterator[URL]:
    """A new PostgreSQL database at the head revision (a copy of the session's template with its
    own namespace), dropped afterwards; skipped or failed like ``fresh_database``."""
    for url in fresh_database(template=_postgres_template()):
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE store_identity SET namespace = :ns"), {"ns": new_store_namespace()})
        finally:
            engine.dispose()
        yield url


def drop_templates() -> None:
    """Remove the session's PostgreSQL template database (the SQLite one goes at exit)."""
    made = _templates.pop("postgresql", None)
    if made is not None:
        _url, database = made  # type: ignore[misc]
        database.close()  # runs fresh_database's drop

