from __future__ import annotations

import decimal
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import URL

from tests.migrated import drop_templates, migrated_postgres, migrated_sqlite
from tests.postgres import fresh_database


DAEMON_PROCESSES = "daemon-processes"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups off the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test marked ``slow`` or driving the daemon's ``ws`` workspace (``test_daemon_process``):
    a real daemon process, waiting on the wall clock, sensitive to the machine's load. They join
    one pytest-xdist group: under ``make test`` (``-n 2 --dist loadgroup``) one worker runs them
    one after the other while the other worker runs the in-process tests. Without xdist the
    marker changes nothing."""
    for item in items:
        if item.get_closest_marker("slow") or "ws" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(DAEMON_PROCESSES))


_daemon_process_workers: set[str] = set()  # the pytest-xdist workers that ran them (controller side)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under pytest-xdist, note which worker ran each test of the daemon-process group."""
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    if gateway is not None and report.when == "call" and "xdist_group" in report.keywords:
        _daemon_process_workers.add(gateway.id)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when the daemon-process group was split over workers: the grouping stopped
    working (pytest 9.2 with pytest-xdist 3.8 drops it silently: pytest-xdist issue 1386)."""
    if len(_daemon_process_workers) > 1:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"the daemon-process tests ran on {', '.join(sorted(_daemon_process_workers))}, "
                                    f"not on one worker: --dist loadgroup is not grouping (tests/conftest.py)", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def short_tmp_path() -> Iterator[Path]:
    """A fresh directory with a short path (``/tmp/g-XXXXXXXX``), removed afterwards: for tests
    whose message shows a whole path, which ``tmp_path`` can make longer than the 80 characters
    an error message shows (``genesis.requests.SHOWN_CHARS``; under pytest-xdist ``tmp_path``
    gains a ``popen-gwN`` level)."""
    with tempfile.TemporaryDirectory(prefix="g-", dir="/tmp") as directory:
        yield Path(directory)


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
