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
