"""The errors of ``genesis sql`` on either backend (``genesis.analytics.sql`` for SQLite,
``genesis.analytics.sql_postgres`` for PostgreSQL), in a module both import."""


class QueryError(Exception):
    """The query failed (syntax, unknown table...); the message says why."""


class WriteRefused(QueryError):
    """The query tried to change something, or to call a function that reaches outside the
    database: ``genesis sql`` only reads."""


class QueryTimeout(QueryError):
    """The query ran longer than its time limit and SQLite interrupted it."""
