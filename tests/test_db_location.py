"""``--db``/``$GENESIS_DB``: a SQLite file path or a PostgreSQL URL; anything else is refused
with one line naming ``--db`` and the accepted forms."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from genesis.cli import main
from genesis.store.location import DbLocationError, parse_db, shown_db


def test_a_path_is_a_sqlite_file_taken_literally() -> None:
    assert parse_db("dir/my db?.db") == Path("dir/my db?.db")


@pytest.mark.parametrize("url", ["postgresql://u:pw@db.example:5433/genesis",
                                 "postgresql+psycopg://u:pw@db.example:5433/genesis"])
def test_a_postgresql_url_uses_psycopg(url: str) -> None:
    db = parse_db(url)
    assert isinstance(db, URL)
    assert (db.drivername, db.host, db.port, db.database) == ("postgresql+psycopg", "db.example", 5433, "genesis")
    assert shown_db(db) == "postgresql+psycopg://u:***@db.example:5433/genesis"


@pytest.mark.parametrize("value, why", [
    ("mysql://u@h/db", "mysql://...: unsupported database"),
    ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://...: unsupported database"),
    ("sqlite:///x.db", "sqlite://...: unsupported database"),
    ("postgresql://u@h", "names no database"),
    ("", "--db is empty"),
])
def test_anything_else_is_refused_naming_the_accepted_forms(value: str, why: str) -> None:
    with pytest.raises(DbLocationError, match="give a SQLite file path") as refused:
        parse_db(value)
    assert why in str(refused.value)


def test_the_cli_refuses_a_bad_db_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", "--db", "mysql://root:secret@localhost/genesis"])
    assert result.exit_code == 2
    assert "--db mysql://...: unsupported database; give a SQLite file path (genesis.db) or a PostgreSQL URL" \
        in result.stderr
    assert "secret" not in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_genesis_db_environment_variable_takes_a_url_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESIS_DB", "oracle://scott:tiger@h/db")
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2 and "--db oracle://...: unsupported database" in result.stderr
