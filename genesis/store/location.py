"""Where the store lives: a SQLite file path or a PostgreSQL URL (``--db``, ``$GENESIS_DB``).

``parse_db`` reads what the user typed: a URL ``postgresql+psycopg://user@host:5432/dbname``
(``postgresql://`` means the same: psycopg 3 is the one PostgreSQL driver genesis ships), or
else a file path, taken literally. Any other URL is refused with a one-line error naming
``--db`` and the accepted forms. The rest of genesis passes the result around as ``Db``: a
``Path`` for SQLite, a SQLAlchemy ``URL`` for PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

Db = Union[Path, URL]

POSTGRES_DRIVER = "postgresql+psycopg"
ACCEPTED_FORMS = ("a SQLite file path (genesis.db) or a PostgreSQL URL "
                  "(postgresql+psycopg://user:password@host:5432/dbname)")


class DbLocationError(ValueError):
    """``--db`` is neither a file path nor a PostgreSQL URL genesis can use."""


def parse_db(value: str | Path | URL, source: str = "--db") -> Db:
    """A file path (SQLite) or a PostgreSQL URL, from ``--db``/``$GENESIS_DB``/the config;
    ``source`` names where it came from in the error (``--db``, ``$GENESIS_DB``, ``store.db``)."""
    if isinstance(value, (Path, URL)):
        return value
    if "://" not in value:
        if not value.strip():
            raise DbLocationError(f"{source} is empty: give {ACCEPTED_FORMS}")
        return Path(value)
    try:
        url = make_url(value)
    except ArgumentError:
        raise DbLocationError(f"{source} {_scheme(value)}://...: not a valid URL; give {ACCEPTED_FORMS}") from None
    if url.drivername not in ("postgresql", POSTGRES_DRIVER):
        raise DbLocationError(f"{source} {url.drivername}://...: unsupported database; give {ACCEPTED_FORMS}")
    if not url.database:
        raise DbLocationError(f"{source} {url.render_as_string(hide_password=True)}: the URL names no database; "
                              f"give {ACCEPTED_FORMS}")
    return url.set(drivername=POSTGRES_DRIVER)


def _scheme(value: str) -> str:
    return value.split("://", 1)[0][:40]


def is_postgres(db: Db) -> bool:
    return isinstance(db, URL)


def shown_db(db: Db) -> str:
    """``db`` for messages and logs: the path, or the URL with its password hidden."""
    return db.render_as_string(hide_password=True) if isinstance(db, URL) else str(db)
