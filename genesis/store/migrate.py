"""Run Alembic migrations from code (``genesis db upgrade``, daemon start, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event

REPO_ROOT = Path(__file__).resolve().parents[2]


def sqlite_url(db_path: str | Path, driver: str = "pysqlite") -> str:
    return f"sqlite+{driver}:///{Path(db_path)}"


def alembic_config() -> Config:
    ini = REPO_ROOT / "alembic.ini"
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(REPO_ROOT / "alembic"))
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


def _run(db_path: str | Path, fn, *args) -> None:  # type: ignore[no-untyped-def]
    create_private_file(db_path)
    engine = create_engine(sqlite_url(db_path))
    event.listen(engine, "connect", _pragmas)
    try:
        with engine.begin() as conn:
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


def upgrade(db_path: str | Path, revision: str = "head") -> None:
    _run(db_path, command.upgrade, revision)


def downgrade(db_path: str | Path, revision: str = "base") -> None:
    _run(db_path, command.downgrade, revision)


def current_revision(db_path: str | Path) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(sqlite_url(db_path))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
