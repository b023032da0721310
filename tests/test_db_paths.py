"""A database path is a file name, not a URL: ``%20``, ``?`` and ``#`` in it name exactly that
file (created 0600), for the CLI, the migrations and the daemon's async engine alike."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from genesis.cli import main
from genesis.store import migrate
from genesis.store.db import async_engine

ODD_NAME = "a%20b?x=1#frag.db"


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if not p.name.endswith(("-wal", "-shm", "-journal"))}


def test_submit_writes_exactly_the_file_named(tmp_path: Path) -> None:
    db = tmp_path / ODD_NAME
    result = CliRunner().invoke(main, ["submit", "--db", str(db), "--symbol", "BTC/USDT", "--side", "buy",
                                       "--qty", "1", "--duration", "15m"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert files_in(tmp_path) == {ODD_NAME}
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT execution_id FROM commands").fetchall() == [(result.output.strip(),)]
    finally:
        conn.close()


def test_migrations_and_the_async_engine_use_exactly_the_file_named(tmp_path: Path) -> None:
    db = tmp_path / ODD_NAME
    migrate.upgrade(db)
    assert migrate.current_revision(db) is not None

    async def count_commands() -> int:
        engine = async_engine(db)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT COUNT(*) FROM commands"))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(count_commands()) == 0
    assert files_in(tmp_path) == {ODD_NAME}


@pytest.mark.parametrize("name", ["plain.db", "with space.db", "50%.db"])
def test_ordinary_names_still_work(tmp_path: Path, name: str) -> None:
    migrate.upgrade(tmp_path / name)
    assert files_in(tmp_path) == {name}
