from __future__ import annotations

import decimal
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import URL

from genesis.store import migrate
from tests.postgres import fresh_database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file migrated to head by Alembic."""
    path = tmp_path / "genesis.db"
    migrate.upgrade(path)
    return path


@pytest.fixture
def pg_url() -> Iterator[URL]:
    """A fresh, empty PostgreSQL database (dropped afterwards); skipped when the server is
    unreachable, failed under CI=true."""
    yield from fresh_database()


@pytest.fixture
def pg_db(pg_url: URL) -> URL:
    """A fresh PostgreSQL database migrated to head by Alembic."""
    migrate.upgrade(pg_url)
    return pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | URL:
    """A fresh database migrated to head, once per backend: the store's contract holds on both."""
    if request.param == "sqlite":
        path = tmp_path / "genesis.db"
        migrate.upgrade(path)
        return path
    return request.getfixturevalue("pg_db")


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    """Put structlog's global configuration back after a test whose command configures it
    (``genesis backtest`` in-process sets the level to error for the rest of the session)."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(autouse=True)
def default_decimal_context() -> Iterator[None]:
    """Every test starts on Python's default decimal context (ROUND_HALF_EVEN): a test that
    drives ccxt directly (its ``decimal_to_precision`` sets the current context to ROUND_HALF_UP)
    must not change the rounding of the tests after it. The engine's own guard is tested in
    ``test_fault_matrix.py``."""
    decimal.setcontext(decimal.Context(**{k: getattr(decimal.DefaultContext, k) for k in (
        "prec", "rounding", "Emin", "Emax", "capitals", "clamp")}, traps=[t for t, on in
        decimal.DefaultContext.traps.items() if on]))
    yield
