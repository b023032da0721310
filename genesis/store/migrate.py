"""Run Alembic migrations from code (``genesis db upgrade``, daemon start, tests)."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine

from genesis.store.location import Db, is_postgres

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"  # genesis/migrations: env.py, versions/
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)
_LITERAL = re.compile(r"""^(["'])([\w.-]+)\1$""")  # a quoted revision id


def sqlite_url(db_path: str | Path, driver: str = "pysqlite") -> URL:
    """The SQLAlchemy URL of the SQLite file ``db_path``, exactly that file: built from parts,
    never parsed, so ``%20``, ``?`` and ``#`` in the path are part of the name."""
    return URL.create(f"sqlite+{driver}", database=str(Path(db_path)))


def alembic_config() -> Config:
    """Alembic's configuration for the migration scripts shipped inside the package: no
    ``alembic.ini`` and nothing relative to the working directory, so an installed wheel
    migrates like a checkout."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))  # %: ConfigParser syntax
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["configure_logging"] = False
    return cfg


def create_private_file(db_path: str | Path) -> None:
    """Create the database file with mode 0600 if it does not exist yet (it holds trading history)."""
    path = Path(db_path)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


MIGRATION_LOCK_KEY = 0x67656E6573697300  # PostgreSQL: one migration at a time per database ("genesis\0")


def _engine(db: str | Path | Db) -> Engine:
    """An engine for migrating or inspecting ``db`` (a SQLite file is created, mode 0600)."""
    if is_postgres(db):
        return create_engine(db)
    create_private_file(db)
    engine = create_engine(sqlite_url(db))
    event.listen(engine, "connect", _pragmas)
    return engine


def _run(db_path: str | Path | Db, fn, *args) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(db_path)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # a daemon and a CLI starting together: one migrates
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            fn(cfg, *args)
    finally:
        engine.dispose()


def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def upgrade(db_path: str | Path | Db, revision: str = "head") -> None:
    """Migrate to ``revision``; a database already at the head costs one query, not an Alembic import."""
    if revision == "head" and _at_head(db_path):
        return
    from alembic import command

    _run(db_path, command.upgrade, revision)


def command_error() -> type[Exception]:
    """Alembic's error class, imported only when a migration failed (a database already at
    head never imports Alembic): use it in an ``except`` clause, evaluated only on an error."""
    from alembic.util import CommandError

    return CommandError


def downgrade(db_path: str | Path | Db, revision: str = "base") -> None:
    from alembic import command

    _run(db_path, command.downgrade, revision)


def _at_head(db_path: str | Path | Db) -> bool:
    """Whether the file exists and its stored revision is the single head of the migration
    scripts (read from their ``revision``/``down_revision`` lines; anything else: False, and
    Alembic decides)."""
    if is_postgres(db_path):
        return False  # Alembic's own check is one query on PostgreSQL too
    path = Path(db_path)
    if not path.is_file():
        return False
    head = _script_head()
    if head is None:
        return False
    try:
        conn = sqlite3.connect(path, timeout=10)
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return rows == [(head,)]


def _script_head() -> str | None:
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(script.read_text(encoding="utf-8")))
        revision = _LITERAL.match(found.get("revision", ""))
        parent = found.get("down_revision", "")
        if revision is None or (parent != "None" and _LITERAL.match(parent) is None):
            return None  # not the plain one-parent form: leave it to Alembic
        revisions.add(revision.group(2))
        if parent != "None":
            parents.add(_LITERAL.match(parent).group(2))  # type: ignore[union-attr]
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(db_path: str | Path | Db) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(db_path) if is_postgres(db_path) else create_engine(sqlite_url(db_path))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def schema_objects_of(dialect_name: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """An Alembic ``include_object`` hook for comparing the code's tables with a database of
    ``dialect_name``: leaves out the indexes the code creates on other dialects only
    (``Index(...).ddl_if(dialect=...)``: ``ix_executions_state`` is SQLite's, migration 0014)."""
    def include(obj: Any, _name: str | None, type_: str, reflected: bool, _compare_to: Any) -> bool:
        only = getattr(obj, "_ddl_if", None)
        if type_ != "index" or reflected or only is None or only.dialect is None:
            return True
        return dialect_name in ((only.dialect,) if isinstance(only.dialect, str) else only.dialect)

    return include
