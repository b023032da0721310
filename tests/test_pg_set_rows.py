"""Many rows of one writer statement as one set-based statement on PostgreSQL
(``genesis.store.pg_set_rows``): the same rows as running them one by one, or no rewrite."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from sqlalchemy.engine import URL

from genesis.store.pg_set_rows import merged, set_based

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
    assert set_based(INSERT, [(*ROWS[0][:4], float("-inf"), None), ROWS[1]]) is None  # nor infinity
    assert set_based("DELETE FROM t WHERE t.k = %s::VARCHAR", [("a",), ("b",)]) is None


UPDATE_U = UPDATE.replace("UPDATE t SET", "UPDATE u SET").replace("t.k", "u.k").replace("t.n", "u.n")
INSERT_U = INSERT.replace("INTO t ", "INTO u ")


def run(conn: psycopg.Connection, statements: list[tuple[str, list[tuple]]]) -> None:
    for sql, rows in statements:
        one = set_based(sql, rows)
        if one is not None:
            conn.execute(*one)
        else:
            conn.cursor().executemany(sql, rows)


def test_merged_statements_leave_the_tables_as_the_statements_one_by_one(conn: psycopg.Connection) -> None:
    """Two transactions' statements, as the commit process receives them, committed as one:
    the merged list has fewer statements and the same outcome."""
    def row(k: str, n: int) -> tuple:
        return (k, n, "1", None, 0.5, None)

    def set_q(q: str, k: str, n: int) -> tuple:
        return (q, None, "u", k, n)

    first = [(INSERT_U, [row("a", 1), row("b", 2)]), (INSERT, [row("a", 1), row("b", 2), row("c", 3)]),
             (UPDATE, [set_q("1.5", "a", 1)]), (UPDATE_U, [set_q("2.5", "a", 1)])]
    second = [(INSERT_U, [row("c", 3)]), (UPDATE, [set_q("3.5", "b", 2), set_q("4.5", "a", 1)]),
              (UPDATE_U, [set_q("5.5", "b", 2)]), (UPDATE, [set_q("6.5", "c", 3)])]
    statements = first + second
    one_by_one = {}
    for how, planned in (("separately", statements), ("merged", merged(statements, free=INSERT_U))):
        with conn.transaction(force_rollback=True):
            run(conn, planned)
            one_by_one[how] = (table(conn, "t"), table(conn, "u"))
    assert one_by_one["merged"] == one_by_one["separately"]
    assert [r[2] for r in one_by_one["merged"][0]] == [Decimal("4.5"), Decimal("3.5"), Decimal("6.5")]
    assert [sql for sql, _ in merged(statements, free=INSERT_U)] == [INSERT_U, INSERT, UPDATE, UPDATE_U, UPDATE]


def test_a_statement_is_not_moved_where_it_could_change_the_outcome() -> None:
    update_a = (UPDATE, [("1", None, "x", "a", 1)])
    update_b = (UPDATE, [("2", None, "y", "b", 2)])
    other_shape_a = (UPDATE.replace("q=%s, ", ""), [(None, "z", "a", 1)])
    insert = (INSERT, [ROWS[0]])
    # past an INSERT (it may make the row the UPDATE changes): never
    assert merged([update_a, insert, update_b]) == [update_a, insert, update_b]
    # past an UPDATE of the same row: never; of another row: yes
    assert merged([update_b, other_shape_a, update_a]) == [update_b, other_shape_a, update_a]
    assert merged([update_a, other_shape_a, update_b]) == [(UPDATE, update_a[1] + update_b[1]), other_shape_a]
    # the same row updated twice by one shape: two statements, in order
    again = (UPDATE, [("3", None, "w", "a", 1), ("4", None, "v", "b", 2)])
    assert merged([update_a, again]) == [update_a, again]
    # the free statement (the event insert) joins the first one, past anything
    events = (INSERT_U, [ROWS[0]])
    assert merged([events, insert, update_a, (INSERT_U, [ROWS[1]])], free=INSERT_U) == [
        (INSERT_U, ROWS), insert, update_a]
