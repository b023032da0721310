"""``execution_analyses``: ``genesis report`` stores the figures it prints, one row per
execution replaced by the next run, readable from SQL; ``--no-store`` writes nothing; the
migration goes down and up again."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from genesis.cli import main
from genesis.store import migrate
from tests.analytics_history import build, make_history_db


@pytest.fixture()
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_history_db(tmp_path_factory)


def cli(db: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [*args, "--db", str(db)], catch_exceptions=False)


def stored(db: Path) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM execution_analyses ORDER BY execution_id")]
    finally:
        conn.close()


def test_a_report_run_stores_its_figures_for_sql(history_db):
    assert stored(history_db) == []
    result = cli(history_db, "report", "exec-a")
    assert result.exit_code == 0, result.output
    assert "stored in execution_analyses" in result.output
    (row,) = stored(history_db)
    printed = json.loads(cli(history_db, "report", "exec-a", "--json", "--no-store").output)
    assert row["execution_id"] == "exec-a" and row["algo"] == "twap" and row["state"] == "completed"
    # exact decimals stay exact text; bps, ratios and seconds are numbers SQL sorts
    assert (row["avg_price"], row["arrival_price"], row["fees_usdt"]) == ("100061.50000000", "100000.00000000", "31")
    assert row["implementation_shortfall_bps"] == 6.15 == float(printed["costs_bps"]["implementation_shortfall"])
    assert (row["timing_bps"], row["execution_cost_bps"]) == (5.25, 0.9)
    assert row["maker_ratio"] == 0.45 and row["max_participation"] == 0.025
    assert (row["slices_planned"], row["slices_executed"], row["slices_denied"]) == (4, 3, 1)
    assert row["window_start"] == "2025-06-10 13:00:00.000000" and row["elapsed_seconds"] == 186.0
    assert row["market_data_source"] == "candles table" and row["capped_best_feasible"] == 1


def test_a_rerun_replaces_the_row_and_executions_compare_in_sql(history_db):
    for execution_id in ("exec-a", "exec-b", "exec-a"):
        assert cli(history_db, "report", execution_id, "--json").exit_code == 0
    rows = stored(history_db)
    assert [r["execution_id"] for r in rows] == ["exec-a", "exec-b"]
    assert rows[0]["analysed_at"] > rows[1]["analysed_at"]  # exec-a's row is the second run's
    result = cli(history_db, "sql", "--csv", "SELECT execution_id, algo, implementation_shortfall_bps "
                                             "FROM execution_analyses ORDER BY implementation_shortfall_bps DESC")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [
        ["execution_id", "algo", "implementation_shortfall_bps"], ["exec-b", "vwap", "10.4"], ["exec-a", "twap", "6.15"]]


def test_no_store_leaves_the_database_unchanged(history_db):
    before = history_db.read_bytes()
    assert cli(history_db, "report", "exec-a", "--no-store").exit_code == 0
    assert history_db.read_bytes() == before and stored(history_db) == []


def test_a_store_that_fails_says_so_and_names_no_store(history_db, monkeypatch):
    from genesis.analytics import analyses

    def refuse(*_args: object) -> None:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database"))

    monkeypatch.setattr(analyses, "save_analysis", refuse)
    result = CliRunner().invoke(main, ["report", "exec-a", "--db", str(history_db)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {history_db}: cannot store the analysis in execution_analyses: attempt to write a readonly "
        "database; pass --no-store to only print the report")


def test_migration_down_to_0004_and_up_again(tmp_path):
    path = tmp_path / "m.db"
    migrate.upgrade(path)
    asyncio.run(build(path))
    assert cli(path, "report", "exec-c").exit_code == 0
    migrate.downgrade(path, "0004")
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        cursor = conn.execute("SELECT * FROM router_metrics")
        assert [d[0] for d in cursor.description] == [
            "twap_trades_count", "twap_avg_slippage_bps", "single_trades_count", "single_avg_slippage_bps"]
    finally:
        conn.close()
    assert "execution_analyses" not in tables
    migrate.upgrade(path)
    assert stored(path) == []  # a cache: the next report fills it again
    assert cli(path, "report", "exec-c").exit_code == 0 and len(stored(path)) == 1
