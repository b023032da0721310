from __future__ import annotations

import decimal
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import URL

from tests.migrated import drop_templates, migrated_postgres, migrated_sqlite
from tests.postgres import fresh_database


@pytest.fixture(scope="session", autouse=True)
def _migrated_templates() -> Iterator[None]:
    """Drop the session's migrated PostgreSQL template at the end (``tests.migrated``)."""
    yield
    drop_templates()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file at the head revision: a copy of the session's Alembic-migrated
    template with its own namespace (``tests.migrated``)."""
    return migrated_sqlite(tmp_path / "genesis.db")


@pytest.fixture
def pg_url() -> Iterator[URL]:
    """A fresh, empty PostgreSQL database (dropped afterwards); skipped when the server is
    unreachable, failed under CI=true."""
    yield from fresh_database()


@pytest.fixture
def pg_db() -> Iterator[URL]:
    """A fresh PostgreSQL database at the head revision (a copy of the session's migrated
    template, ``tests.migrated``), dropped afterwards; skipped or failed like ``pg_url``."""
    yield from migrated_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | URL:
    """A fresh database at the head revision, once per backend: the store's contract holds on both."""
    if request.param == "sqlite":
        return migrated_sqlite(tmp_path / "genesis.db")
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
