"""Alembic migrations on real SQLite files and PostgreSQL databases: up, down, up again;
schema equals the code's tables."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect, text
from sqlalchemy.engine import URL, Engine

from genesis.store import migrate
from genesis.store.tables import metadata

CODE_TABLES = set(metadata.tables)
VIEWS = {"twap_executions", "twap_slice_history"}


def _head() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def _revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _engine(db: Path | URL) -> Engine:
    return create_engine(db) if isinstance(db, URL) else create_engine(migrate.sqlite_url(db))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | URL:
    """No database file yet, or an empty PostgreSQL database."""
    return tmp_path / "fresh.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def _inspect(path: Path | URL) -> tuple[set[str], set[str]]:
    engine = _engine(path)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            return set(insp.get_table_names()), set(insp.get_view_names())
    finally:
        engine.dispose()


def _schema_diff(path: Path | URL, target: MetaData) -> list:
    engine = _engine(path)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": migrate.schema_objects_of(conn.dialect.name)})
            return compare_metadata(ctx, target)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_db: Path | URL) -> None:
    path = empty_db
    assert isinstance(path, URL) or not path.exists()

    migrate.upgrade(path)
    tables, views = _inspect(path)
    assert tables == CODE_TABLES | {"alembic_version"}
    assert {"events", "commands", "executions", "execution_slices", "child_orders", "fills"} <= tables
    assert VIEWS <= views
    first = (tables, views)
    assert migrate.current_revision(path) == _head()

    migrate.downgrade(path, "base")
    tables, views = _inspect(path)
    assert tables == {"alembic_version"}
    assert views == set()
    assert migrate.current_revision(path) is None

    migrate.upgrade(path)
    assert _inspect(path) == first
    assert migrate.current_revision(path) == _head()
    assert _schema_diff(path, metadata) == []


def test_every_revision_upgrades_and_downgrades_one_step_at_a_time(empty_db: Path | URL) -> None:
    path = empty_db
    revisions = _revisions_base_to_head()
    assert revisions[0] == "0001" and revisions[-1] == _head()
    for rev in revisions:
        migrate.upgrade(path, rev)
        assert migrate.current_revision(path) == rev
    for rev in reversed(revisions[:-1]):
        migrate.downgrade(path, rev)
        assert migrate.current_revision(path) == rev
        migrate.upgrade(path, _head())  # and back up from each intermediate step
        migrate.downgrade(path, rev)
    migrate.downgrade(path, "base")
    assert _inspect(path) == ({"alembic_version"}, set())


def test_upgrade_is_idempotent(any_db: Path | URL) -> None:
    db_path = any_db
    migrate.upgrade(db_path)
    assert migrate.current_revision(db_path) == _head()
    assert _schema_diff(db_path, metadata) == []


def test_migrated_schema_matches_the_code_tables(any_db: Path | URL) -> None:
    db_path = any_db
    assert _schema_diff(db_path, metadata) == []


def test_schema_comparison_detects_drift(db_path: Path) -> None:
    """The comparison above can fail: a table the migrations do not create is reported."""
    drifted = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))
    diff = _schema_diff(db_path, drifted)
    assert [d[0] for d in diff] == ["add_table"]
    assert diff[0][1].name == "not_migrated"


def test_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "private.db"
    migrate.upgrade(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # SQLite gives the WAL side files the database file's permissions
    for side in path.parent.glob("private.db-*"):
        assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side


def test_twap_views_select_without_error(any_db: Path | URL) -> None:
    db_path = any_db
    engine = _engine(db_path)
    try:
        with engine.connect() as conn:
            for view in sorted(_inspect(db_path)[1]):  # every view compiles against the tables
                conn.execute(text(f"SELECT * FROM {view}")).fetchall()
            for view in sorted(VIEWS):
                assert conn.execute(text(f"SELECT * FROM {view}")).fetchall() == []
            cols = conn.execute(text("SELECT * FROM twap_executions")).keys()
            assert {"execution_id", "total_quantity", "executed_quantity", "twap_price", "status"} <= set(cols)
            cols = conn.execute(text("SELECT * FROM twap_slice_history")).keys()
            assert {"slice_number", "executed_quantity", "execution_price", "market_price",
                    "participation_rate"} <= set(cols)
    finally:
        engine.dispose()
