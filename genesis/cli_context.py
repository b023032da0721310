"""What every ``genesis`` command shares: ``--db`` and ``--config`` (``common``) and the
``Context`` they make (the config, the migrated database)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from genesis.cli_support import CommandFailed, one_line_storage_errors
from genesis.defaults import RUNTIME_YAML as PACKAGED_CONFIG
from genesis.requests import cut

if TYPE_CHECKING:
    from genesis.config import RuntimeConfig

DEFAULT_CONFIG = Path("config/runtime.yaml")
DEFAULT_DB = "genesis.db"


class Context:
    """``db``: ``--db`` as typed (None: not given). The database is, in this order, ``--db``,
    ``$GENESIS_DB``, the config's ``store.db``, ``./genesis.db``."""

    def __init__(self, db: str | None, config: str | None, db_explicit: bool = False):
        self.config_path = Path(config) if config else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else PACKAGED_CONFIG)
        self.db_path = _parse_db(*self._db_source(db))  # a Path (SQLite) or a PostgreSQL URL
        self.db_explicit = db_explicit

    def _db_source(self, db: str | None) -> tuple[str, str]:
        """The database as written and where: ``(value, source)``, by precedence."""
        if db is not None:
            return db, "--db"
        env = os.environ.get("GENESIS_DB")
        if env is not None:
            return env, "$GENESIS_DB"
        configured = self.config().store.db
        if configured is not None:
            return configured, f"{self.config_path}: store.db"
        return DEFAULT_DB, "--db"

    def config(self) -> RuntimeConfig:
        from genesis.config import ConfigError, load_config

        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    def engine(self, must_exist: bool = True):  # type: ignore[no-untyped-def]
        """The database migrated to head, or a clear error (no such file, not a database,
        unknown revision...). Only commands that may start a database pass ``must_exist=False``:
        a mistyped ``--db`` must not leave an empty database behind."""
        from genesis.store.db import sync_engine

        if must_exist and isinstance(self.db_path, Path) and not self.db_path.is_file():
            raise click.ClickException(
                f"{cut(self.db_path)}: no such database (use --db, $GENESIS_DB or store.db in the config; "
                "`genesis submit`, `genesis run` or `genesis db upgrade` create one)")
        self.upgrade()
        return sync_engine(self.db_path)

    def upgrade(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        from genesis.store import migrate

        try:
            migrate.upgrade(self.db_path)
        except (SQLAlchemyError, OSError, migrate.command_error()) as exc:  # evaluated only on an error
            reason = (exc.strerror or exc) if isinstance(exc, OSError) else (getattr(exc, "orig", None) or exc)
            raise CommandFailed(f"{cut(self.db_path)}: cannot open or migrate the database: {reason}") from None


def _parse_db(db: str, source: str) -> Any:
    """A file path or a PostgreSQL URL (``genesis.store.location``), else a usage error naming
    where the value came from."""
    from genesis.store.location import DbLocationError, parse_db

    try:
        return parse_db(db, source)
    except DbLocationError as exc:
        raise click.UsageError(str(exc)) from None


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--db`` and ``--config`` to a command and pass a ``Context`` as ``ctx``."""
    @click.option("--db", "db", default=None, show_default="$GENESIS_DB, else store.db in the config, else ./genesis.db",
                  help="SQLite database file, or PostgreSQL URL postgresql+psycopg://user@host/dbname.")
    @click.option("--config", "config", default=None, help="Runtime config YAML (default ./config/runtime.yaml, else the defaults shipped in the package).")
    @functools.wraps(fn)
    def wrapper(db: str | None, config: str | None, **kwargs: Any) -> Any:
        explicit = click.get_current_context().get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE
        ctx = Context(db, config, explicit)
        with one_line_storage_errors(ctx.db_path):
            return fn(ctx, **kwargs)
    return wrapper
