"""``genesis sql`` on PostgreSQL: a read-only transaction refuses every write, whatever the
query text; ``statement_timeout`` is the time limit; rows stream; the analysis views hold the
same figures as on SQLite for the hand-built history."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from pytest import approx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from genesis.analytics.sql import QueryTimeout, WriteRefused, open_query, run_query
from genesis.cli import main
from tests.analytics_history import build, make_history_db
from tests.migrated import migrated_postgres


@pytest.fixture(scope="module")
def history_pg() -> Iterator[URL]:
    for url in migrated_postgres():
        asyncio.run(build(url))  # type: ignore[arg-type]
        yield url


def sql(db: URL, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["sql", "--db", db.render_as_string(hide_password=False), *args])


def fingerprint(db: URL) -> list[tuple]:
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT (SELECT count(*) FROM events), (SELECT md5(string_agg(event_data, '' ORDER BY "
                "sequence_number)) FROM events), (SELECT string_agg(state, ',' ORDER BY execution_id) FROM executions), "
                "(SELECT count(*) FROM commands), (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace)"))]
    finally:
        engine.dispose()


def test_select_prints_a_table_or_csv(history_pg: URL) -> None:
    result = sql(history_pg, "SELECT execution_id, state, fees_usdt FROM execution_analysis ORDER BY execution_id")
    assert result.exit_code == 0, result.output
    assert "exec-a" in result.output and "(4 rows)" in result.output
    result = sql(history_pg, "--csv", "SELECT execution_id, market_vwap_source FROM execution_analysis ORDER BY 1")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output)))[:2] == [["execution_id", "market_vwap_source"],
                                                                ["exec-a", "candles"]]


WRITES = [
    "INSERT INTO commands (kind, execution_id, payload, created_at) VALUES ('cancel', 'exec-d', '{}', now())",
    "UPDATE executions SET state = 'cancelled'",
    "DELETE FROM events",
    "WITH doomed AS (DELETE FROM fills RETURNING 1) SELECT count(*) FROM doomed",
    "DROP TABLE events",
    "DROP VIEW execution_analysis",
    "CREATE TABLE scratch (x INTEGER)",
    "CREATE INDEX ix_scratch ON fills (price)",
    "ALTER TABLE fills ADD COLUMN note TEXT",
    "TRUNCATE fills CASCADE",
    "SELECT nextval('commands_command_id_seq')",
    "SELECT set_config('transaction_read_only', 'off', false)",
    "VACUUM",
]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_are_refused_and_change_nothing(history_pg: URL, statement: str) -> None:
    before = fingerprint(history_pg)
    result = sql(history_pg, statement)
    assert result.exit_code == 1, result.output
    assert "refused: the transaction is read-only (PostgreSQL says:" in result.output
    assert fingerprint(history_pg) == before
    with pytest.raises(WriteRefused):
        run_query(history_pg, statement.lower())


def test_errors_are_clear(history_pg: URL) -> None:
    result = sql(history_pg, "SELECT * FROM no_such_view")
    assert result.exit_code == 1 and 'relation "no_such_view" does not exist' in result.output
    assert "genesis db upgrade" in result.output
    result = sql(history_pg, "SELECT 1; DELETE FROM events")
    assert result.exit_code == 1 and "one statement" in result.output


def test_a_runaway_query_stops_at_its_time_limit_with_exit_code_2(history_pg: URL) -> None:
    result = sql(history_pg, "--timeout-seconds", "0.2", "SELECT pg_sleep(30)")
    assert result.exit_code == 2
    assert result.output.startswith("Error: query stopped after 0.2 s, its time limit (--timeout-seconds")
    with pytest.raises(QueryTimeout):
        run_query(history_pg, "SELECT count(*) FROM generate_series(1, 10000000000)", timeout_seconds=0.2)


def test_rows_stream_instead_of_being_collected(history_pg: URL) -> None:
    endless = "SELECT generate_series(1, 1000000000000) AS x"  # only a stream ends
    with open_query(history_pg, endless, timeout_seconds=60) as result:
        assert result.columns == ["x"] and list(itertools.islice(result, 3)) == [(1,), (2,), (3,)]
    result = sql(history_pg, "--max-rows", "5", endless)
    assert result.exit_code == 0, result.output
    assert "(first 5 rows shown; --max-rows N for more, --csv for every row)" in result.output


def test_the_analysis_views_match_sqlite(history_pg: URL, tmp_path_factory: pytest.TempPathFactory) -> None:
    sqlite_db: Path = make_history_db(tmp_path_factory)
    query = ("SELECT execution_id, state, filled_qty, avg_price, implementation_shortfall_bps, fees_usdt, "
             "market_vwap_source FROM execution_analysis ORDER BY execution_id")
    on_sqlite = run_query(sqlite_db, query)
    on_postgres = run_query(history_pg, query)
    assert on_postgres[0] == on_sqlite[0]
    assert len(on_postgres[1]) == len(on_sqlite[1]) == 4
    for pg_row, lite_row in zip(on_postgres[1], on_sqlite[1]):
        assert pg_row[:2] == lite_row[:2] and pg_row[-1] == lite_row[-1]
        assert [float(v) if v is not None else None for v in pg_row[2:-1]] == \
               [approx(float(v)) if v is not None else None for v in lite_row[2:-1]]
    for view in ("slice_analysis", "daily_execution_summary", "router_metrics", "twap_executions",
                 "twap_slice_history"):
        assert len(run_query(history_pg, f"SELECT * FROM {view}")[1]) == len(run_query(sqlite_db, f"SELECT * FROM {view}")[1])
