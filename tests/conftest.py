from __future__ import annotations

from pathlib import Path

import pytest

from genesis.store import migrate


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file migrated to head by Alembic."""
    path = tmp_path / "genesis.db"
    migrate.upgrade(path)
    return path


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    """Put structlog's global configuration back after a test whose command configures it
    (``genesis backtest`` in-process sets the level to error for the rest of the session)."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
