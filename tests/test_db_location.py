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
    assert result.exit_code == 2 and "$GENESIS_DB oracle://...: unsupported database" in result.stderr


def _config(path: Path, body: str) -> str:
    path.write_text(body)
    return str(path)


def _upgraded(args: list[str]) -> str:
    """``genesis db upgrade``: the database it chose (its output names it)."""
    result = CliRunner().invoke(main, ["db", "upgrade", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.split(": at revision")[0]


def test_the_database_is_the_flag_then_the_environment_then_the_config_then_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path / "runtime.yaml", f"store:\n  db: {tmp_path / 'from-config.db'}\n")
    monkeypatch.delenv("GENESIS_DB", raising=False)
    assert _upgraded(["--config", config]) == str(tmp_path / "from-config.db")
    assert _upgraded(["--config", _config(tmp_path / "empty.yaml", "{}\n")]) == "genesis.db"
    monkeypatch.setenv("GENESIS_DB", str(tmp_path / "from-env.db"))
    assert _upgraded(["--config", config]) == str(tmp_path / "from-env.db")
    assert _upgraded(["--config", config, "--db", str(tmp_path / "from-flag.db")]) == str(tmp_path / "from-flag.db")
    assert {p.name for p in tmp_path.glob("*.db")} == {"from-config.db", "genesis.db", "from-env.db", "from-flag.db"}


def test_the_config_takes_a_postgresql_url(pg_db: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENESIS_DB", raising=False)
    config = _config(tmp_path / "runtime.yaml", f"store:\n  db: {pg_db.render_as_string(hide_password=False)}\n")
    assert _upgraded(["--config", config]) == pg_db.render_as_string(hide_password=False)
    from sqlalchemy import create_engine, inspect

    engine = create_engine(pg_db)
    assert "leases" in inspect(engine).get_table_names()  # it migrated that database
    engine.dispose()


@pytest.mark.parametrize("value, why", [
    ("postgresql+asyncpg://u:secret@h/db", "postgresql+asyncpg://...: unsupported database"),
    ("postgresql://u:secret@h", "names no database"),
    ("''", "is empty"),
])
def test_a_bad_database_in_the_config_is_refused_naming_the_key(
        value: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENESIS_DB", raising=False)
    config = _config(tmp_path / "runtime.yaml", f"store:\n  db: {value}\n")
    result = CliRunner().invoke(main, ["status", "--config", config])
    assert result.exit_code == 1
    assert f"{config}: store.db: " in result.stderr and why in result.stderr
    assert "secret" not in result.output + result.stderr and "Traceback" not in result.output + result.stderr


def test_genesis_run_takes_its_accounts_and_lease_from_the_config_unless_flags_say(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import genesis.engine.daemon as daemon

    chosen: list[tuple[tuple[str, ...], float]] = []
    monkeypatch.setattr(daemon, "run_daemon", lambda options, config: chosen.append(
        (options.accounts, options.lease_seconds)) or 0)
    config = _config(tmp_path / "runtime.yaml", "leases:\n  accounts: [desk-a, desk-b]\n  lease_seconds: 6\n")
    db = str(tmp_path / "g.db")
    for extra in ([], ["--accounts", "desk-c", "--lease-seconds", "9"]):
        result = CliRunner().invoke(main, ["run", "--db", db, "--config", config, *extra])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["run", "--db", db, "--config", _config(tmp_path / "none.yaml", "{}\n")])
    assert result.exit_code == 0, result.output
    assert chosen == [(("desk-a", "desk-b"), 6.0), (("desk-c",), 9.0), ((), 15.0)]
