"""Many rows of one writer statement as one set-based statement on PostgreSQL
(``genesis.store.pg_set_rows``): the same rows as running them one by one, or no rewrite."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from sqlalchemy.engine import URL

from genesis.store.pg_set_rows import set_based

INSERT = ("INSERT INTO t (k, n, q, at, f, note) VALUES (%s::VARCHAR, %s::INTEGER, %s, "
          "%s::TIMESTAMP WITHOUT TIME ZONE, %s, %s::VARCHAR)")
UPDATE = "UPDATE t SET q=%s, at=%s::TIMESTAMP WITHOUT TIME ZONE, note=%s::VARCHAR WHERE t.k = %s::VARCHAR AND t.n = %s::INTEGER"
ROWS = [("a", 1, "0.000000000000000001", "2025-06-10 13:00:01.000001", 0.1, None),
        ("b", 2, "123456789.123456789", None, 1e-300, 'quote " and \\ backslash, é')]


@pytest.fixture
def conn(pg_url: URL) -> psycopg.Connection:
    with psycopg.connect(pg_url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as c:
        for table in ("t", "u"):
            c.execute(f"CREATE TABLE {table} (k varchar PRIMARY KEY, n integer NOT NULL, q numeric(38, 18), "
                      "at timestamp, f double precision, note varchar)")
        yield c


def table(conn: psycopg.Connection, name: str) -> list[tuple]:
    return conn.execute(f"SELECT k, n, q, at, f, note FROM {name} ORDER BY k").fetchall()


def test_inserts_and_updates_set_based_equal_them_row_at_a_time(conn: psycopg.Connection) -> None:
    updates = [("42.5", "2026-01-01 00:00:00", "x", "a", 1), (None, None, None, "b", 2)]
    for sql, rows in ((INSERT, ROWS), (UPDATE, updates)):
        one = set_based(sql, rows)
        assert one is not None and len(one[1]) == 1  # one statement, one parameter
        conn.execute(*one)
        conn.cursor().executemany(sql.replace("INTO t ", "INTO u ").replace("UPDATE t SET", "UPDATE u SET")
                                  .replace("t.k", "u.k").replace("t.n", "u.n"), rows)
    assert table(conn, "t") == table(conn, "u")
    assert table(conn, "t")[0][2] == Decimal("42.5") and table(conn, "t")[1][5] is None


def test_an_insert_can_select_an_expression_instead_of_a_column(conn: psycopg.Connection) -> None:
    conn.execute(*set_based(INSERT, ROWS, replace=(("n", "v.n + 100"),)))  # type: ignore[misc]
    assert [r[1] for r in table(conn, "t")] == [101, 102]


def test_what_would_differ_from_row_at_a_time_is_not_rewritten() -> None:
    twice = [("1", None, "x", "a", 1), ("2", None, "y", "a", 1)]  # the same row updated twice: order matters
    assert set_based(UPDATE, twice) is None
    assert set_based(INSERT + " ON CONFLICT (k) DO NOTHING", ROWS) is None
    assert set_based(INSERT, ROWS[:1]) is None  # one row: the prepared statement
    assert set_based(INSERT, [(*ROWS[0][:4], float("nan"), None), ROWS[1]]) is None  # JSON has no NaN
    assert set_based("DELETE FROM t WHERE t.k = %s::VARCHAR", [("a",), ("b",)]) is None
