"""A fresh PostgreSQL database per test, on the local server (``$GENESIS_TEST_PG``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, the maintenance database).

Unreachable server: the test is skipped with the reason in the summary, except under
``CI=true`` where it fails (CI must never pass by skipping the PostgreSQL half).
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

MAINTENANCE_URL = os.environ.get("GENESIS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_unreachable: list[str] = []  # the reason, once known: later tests do not wait for the timeout again


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL unreachable at {make_url(MAINTENANCE_URL).render_as_string(hide_password=True)}: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message + " (start it: pg_ctlcluster 15 main start)")


def fresh_database(template: str | None = None) -> Iterator[URL]:
    """Create a uniquely named database, yield its URL, drop it afterwards: empty, or a copy of
    the database ``template`` (``CREATE DATABASE ... TEMPLATE``, see ``tests.migrated``)."""
    if _unreachable:
        _unavailable(_unreachable[0])
    admin = create_engine(MAINTENANCE_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"genesis_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    except OperationalError as exc:
        admin.dispose()
        _unreachable.append(str(exc.orig).strip().splitlines()[0])
        _unavailable(_unreachable[0])
    try:
        yield make_url(MAINTENANCE_URL).set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
