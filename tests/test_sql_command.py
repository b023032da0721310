"""``genesis sql``: read-only queries with table or CSV output; SQLite itself refuses every
write; the example queries of docs/sql.md run on the hand-built history."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
import sqlite3
from pathlib import Path

import pytest
from pytest import approx
from click.testing import CliRunner

from genesis.analytics.sql import QueryError, QueryTimeout, WriteRefused, connect_readonly, open_query, run_query
from genesis.cli import main
from tests.analytics_history import make_history_db

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sql.md"


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_history_db(tmp_path_factory)


def sql(db: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["sql", "--db", str(db), *args])


def fingerprint(db: Path) -> tuple[str, int, int, list[str]]:
    conn = sqlite3.connect(db)
    try:
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
    finally:
        conn.close()
    return hashlib.sha256(db.read_bytes()).hexdigest(), events, version, names


def test_select_prints_a_table_or_csv(history_db):
    result = sql(history_db, "SELECT execution_id, state, fees_usdt FROM execution_analysis ORDER BY execution_id")
    assert result.exit_code == 0, result.output
    assert re.search(r"exec-a\s+completed\s+31\.0", result.output) and "(4 rows)" in result.output
    result = sql(history_db, "--csv", "SELECT execution_id, ended_at, market_vwap_source FROM execution_analysis "
                                      "ORDER BY execution_id")
    assert result.exit_code == 0, result.output
    got = list(csv.reader(io.StringIO(result.output)))
    assert got[0] == ["execution_id", "ended_at", "market_vwap_source"]
    assert got[1] == ["exec-a", "2025-06-10 13:03:06.000000", "candles"]
    assert got[4] == ["exec-d", "", "engine"]  # NULL is an empty field


WRITES = [
    "INSERT INTO commands (kind, execution_id, payload, created_at) VALUES ('cancel', 'exec-d', '{}', '2025-01-01')",
    "UPDATE executions SET state = 'cancelled'",
    "DELETE FROM events",
    "WITH doomed AS (SELECT 1) DELETE FROM fills",
    "REPLACE INTO candles VALUES ('BTC/USDT', '2025-06-10 13:00:00.000000', 1, 1, 1, 1, 1)",
    "DROP TABLE events",
    "DROP VIEW execution_analysis",
    "CREATE TABLE scratch (x INTEGER)",
    "CREATE TEMP TABLE scratch (x INTEGER)",
    "CREATE INDEX ix_scratch ON fills (price)",
    "ALTER TABLE fills ADD COLUMN note TEXT",
    "PRAGMA user_version = 7",
    "PRAGMA journal_mode = DELETE",
    "VACUUM",
    "ATTACH DATABASE 'other.db' AS other",
]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_are_refused_and_leave_the_file_unchanged(history_db, statement, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where ATTACH would create other.db
    before = fingerprint(history_db)
    result = sql(history_db, statement)
    assert result.exit_code == 1
    assert "refused: the database is open read-only" in result.output
    assert fingerprint(history_db) == before
    assert list(tmp_path.iterdir()) == []


def test_the_refusal_comes_from_sqlite_not_from_reading_the_query(history_db):
    conn = connect_readonly(history_db)
    try:
        conn.set_authorizer(None)  # even without the authorizer and with query_only off,
        conn.execute("PRAGMA query_only = OFF")  # mode=ro refuses
        with pytest.raises(sqlite3.OperationalError) as info:
            conn.execute("DELETE FROM events")
        assert info.value.sqlite_errorname == "SQLITE_READONLY"
    finally:
        conn.close()
    with pytest.raises(WriteRefused):
        run_query(history_db, "delete from events")  # lower case, no string matching involved


def test_errors_are_clear_and_a_missing_database_is_not_created(history_db, tmp_path):
    result = sql(history_db, "SELECT * FROM no_such_view")
    assert result.exit_code == 1 and "no such table: no_such_view" in result.output
    result = sql(history_db, "SELECT 1; SELECT 2")
    assert result.exit_code == 1 and "one statement" in result.output
    missing = tmp_path / "missing.db"
    result = sql(missing, "SELECT 1")
    assert result.exit_code == 1 and "no such database" in result.output and not missing.exists()
    with pytest.raises(QueryError):
        run_query(history_db, "SELEC 1")


COUNT_FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
EVERY_NUMBER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"


def test_a_runaway_query_stops_at_its_time_limit_with_exit_code_2(history_db):
    result = sql(history_db, "--timeout-seconds", "0.2", COUNT_FOREVER)
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("Error: query stopped after 0.2 s inside SQLite, its time limit (--timeout-seconds)")
    with pytest.raises(QueryTimeout):
        run_query(history_db, COUNT_FOREVER, timeout_seconds=0.2)
    result = sql(history_db, "--timeout-seconds", "0", "SELECT 1")
    assert result.exit_code == 2 and "--timeout-seconds" in result.output  # a limit must be > 0


def test_rows_stream_instead_of_being_collected(history_db):
    with open_query(history_db, EVERY_NUMBER, timeout_seconds=60) as result:  # endless: only a stream ends
        assert result.columns == ["x"] and list(itertools.islice(result, 3)) == [(1,), (2,), (3,)]
    result = sql(history_db, "--max-rows", "5", EVERY_NUMBER)
    assert result.exit_code == 0, result.output
    assert re.findall(r"^ *(\d+) *$", result.output, flags=re.M) == ["1", "2", "3", "4", "5"]
    assert "(first 5 rows shown; --max-rows N for more, --csv for every row)" in result.output
    result = sql(history_db, "--csv", "--timeout-seconds", "0.5", EVERY_NUMBER)  # CSV: every row until the limit
    assert result.exit_code == 2 and result.stdout.splitlines()[:3] == ["x", "1", "2"]
    assert result.stderr.startswith("Error: query stopped")


@pytest.mark.parametrize("call", ["SELECT fts3_tokenizer('simple')", "SELECT hex(FTS3_TOKENIZER('porter'))",
                                  "SELECT load_extension('/tmp/x.so')",
                                  "SELECT x FROM (SELECT fts3_tokenizer('simple') AS x)"])
def test_functions_that_reach_outside_the_database_are_refused(history_db, call):
    result = sql(history_db, call)
    assert result.exit_code == 1
    assert "refused: not authorized to use function" in result.output and "0x" not in result.output
    with pytest.raises(WriteRefused):
        run_query(history_db, call)


def doc_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


def test_docs_have_the_desk_queries():
    assert len(doc_queries()) >= 9
    text = DOCS.read_text(encoding="utf-8")
    assert "sqlite3 'file:genesis.db?mode=ro'" in text


@pytest.mark.parametrize("index", range(len(doc_queries())))
def test_every_documented_query_runs(history_db, index):
    columns, rows = run_query(history_db, doc_queries()[index])
    assert columns


def test_documented_queries_return_the_expected_rows(history_db):
    def _doc(first_words: str) -> tuple[list[str], list[tuple]]:  # type: ignore[type-arg]
        (query,) = [q for q in doc_queries() if q.startswith(first_words)]
        return run_query(history_db, query)

    cols, rows = _doc("SELECT execution_id, trade_date")  # worst by IS: 10.4, 6.15, 0.99, -1
    assert [(r[0], r[cols.index("is_bps")]) for r in rows] == [
        ("exec-b", 10.4), ("exec-a", 6.15), ("exec-d", 0.99), ("exec-c", -1.0)]
    cols, rows = _doc("SELECT start_hour_utc")
    assert [r[0] for r in rows] == [13, 14, 15]
    cols, rows = _doc("SELECT CASE WHEN participation")  # 0.0125 x2, 0.02 x3; 0.025, 0.03, 0.04
    assert [(r[0], r[1]) for r in rows] == [("0-2%", 2), ("2-5%", 6)]
    cols, rows = _doc("SELECT symbol, COUNT(*)")
    assert [(r[0], r[1], r[2]) for r in rows] == [("BTC/USDT", 3, round(0.45 / 1.5, 4)), ("ETH/USDT", 1, 0.0)]
    cols, rows = _doc("SELECT execution_id, slice_index, scheduled_at, planned_qty")
    assert rows == [("exec-a", 2, "2025-06-10 13:02:00.000000", 0.25, 100050.0, "price collar: 250 bps from mid")]
    cols, rows = _doc("SELECT execution_id, slice_index, scheduled_at, executed_at")
    assert [(r[0], r[1], r[4]) for r in rows] == [("exec-a", 3, 6.0)]
    cols, rows = _doc("SELECT trade_date, symbol, algo")
    assert [(r[0], r[1], r[3], r[cols.index("avg_is_bps")]) for r in rows] == [
        ("2025-06-11", "BTC/USDT", 1, 0.99), ("2025-06-10", "BTC/USDT", 2, 2.58), ("2025-06-10", "ETH/USDT", 1, 10.4)]
    cols, rows = _doc("SELECT * FROM router_metrics")
    metrics = dict(zip(cols, rows[0], strict=True))  # slices that filled: exec-a/c/d (TWAP), exec-b (VWAP)
    assert (metrics["twap_trades_count"], metrics["vwap_trades_count"], metrics["single_trades_count"]) == (6, 2, 0)
    assert metrics["vwap_avg_slippage_bps"] == approx((-8.0 - 12.0) / 2)  # (2498 - 2500) / 2500 * 10^4 = -8
