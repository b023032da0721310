"""Many rows of one writer statement as one set-based statement on PostgreSQL
(``genesis.store.pg_set_rows``): the same rows as running them one by one, or no rewrite."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from sqlalchemy.engine import URL

from genesis.store.pg_set_rows import COLUMN_TYPES_SQL, column_types, merged, set_based

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


def types_of(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    """The column types ``set_based`` needs, from the catalogue."""
    return column_types(conn.execute(COLUMN_TYPES_SQL).fetchall())


def table(conn: psycopg.Connection, name: str) -> list[tuple]:
    return conn.execute(f"SELECT k, n, q, at, f, note FROM {name} ORDER BY k").fetchall()


def test_inserts_and_updates_set_based_equal_them_row_at_a_time(conn: psycopg.Connection) -> None:
    updates = [("42.5", "2026-01-01 00:00:00", "x", "a", 1), (None, None, None, "b", 2)]
    types = types_of(conn)
    assert types["t"]["q"] == "numeric" and types["t"]["f"] == "double precision"  # rounded by the column
    for sql, rows in ((INSERT, ROWS), (UPDATE, updates)):
        one = set_based(sql, rows, types=types)
        assert one is not None and len(one[1]) == len(rows[0])  # one statement, one array a column
        conn.execute(*one)
        conn.cursor().executemany(sql.replace("INTO t ", "INTO u ").replace("UPDATE t SET", "UPDATE u SET")
                                  .replace("t.k", "u.k").replace("t.n", "u.n"), rows)
    assert table(conn, "t") == table(conn, "u")
    assert table(conn, "t")[0][2] == Decimal("42.5") and table(conn, "t")[1][5] is None


def test_an_insert_can_select_an_expression_instead_of_a_column(conn: psycopg.Connection) -> None:
    conn.execute(*set_based(INSERT, ROWS, replace=(("n", "v.n + 100"),), types=types_of(conn)))  # type: ignore[misc]
    assert [r[1] for r in table(conn, "t")] == [101, 102]


def test_what_would_differ_from_row_at_a_time_is_not_rewritten() -> None:
    types = {"t": {"q": "numeric(38,18)", "f": "double precision"}}
    twice = [("1", None, "x", "a", 1), ("2", None, "y", "a", 1)]  # the same row updated twice: order matters
    assert set_based(UPDATE, twice, types=types) is None
    assert set_based(INSERT + " ON CONFLICT (k) DO NOTHING", ROWS, types=types) is None
    assert set_based(INSERT, ROWS[:1], types=types) is None  # one row: the prepared statement
    assert set_based("DELETE FROM t WHERE t.k = %s::VARCHAR", [("a",), ("b",)]) is None
    # a value the row-at-a-time statement would not send as text: bytes; a NUL, which libpq would cut
    assert set_based(INSERT, [(*ROWS[0][:5], b"x"), ROWS[1]], types=types) is None
    assert set_based(INSERT, [(*ROWS[0][:5], "x\x00y"), ROWS[1]], types=types) is None
    assert set_based(INSERT, [("x\x00y", *ROWS[0][1:]), ROWS[1]], types=types) is None
    # a parameter without a cast whose column type is not known: no guess
    assert set_based(INSERT, ROWS) is None and set_based(INSERT, ROWS, types={"u": types["t"]}) is None
    assert set_based(INSERT, ROWS, types={"t": {"k": "text"}}) is None
    cast_all = "INSERT INTO t (k, n) VALUES (%s::VARCHAR, %s::INTEGER)"
    assert set_based(cast_all, [("a", 1), ("b", 2)]) is not None  # every type is the cast's


AWKWARD_TEXT = ['quote " and \\ backslash', '\\"', '"', "\\", "", "NULL", "null", " padded ", "{a,b}", "(1,2)",
                "a,b", "'single'", "é ü 中文 🙂", "tab\tnew\nline", "\\N", "$1 %s %%", None]
AWKWARD_MONEY = ["12345678901234567890.123456789012345678", "-0.000000000000000001", "0", "1E+3", "-42", None]
AWKWARD_TIMES = ["2025-06-10 13:00:01.000001", "1999-12-31 23:59:59.999999", "2026-02-28 00:00:00", None]
AWKWARD_FLOATS = [0.1, 1e-300, -0.0, 1.7976931348623157e308, float("inf"), float("-inf"), float("nan"), 3, None]


def test_awkward_values_are_stored_as_row_at_a_time_stores_them(conn: psycopg.Connection) -> None:
    """Quotes, backslashes, array syntax, unicode, NULLs, 38 digits of money, microseconds,
    NaN and infinities: each column's array carries them as the row's own parameters would."""
    count = max(len(AWKWARD_TEXT), len(AWKWARD_MONEY), len(AWKWARD_TIMES), len(AWKWARD_FLOATS))
    rows = [(f"k{i:02}", i, AWKWARD_MONEY[i % len(AWKWARD_MONEY)], AWKWARD_TIMES[i % len(AWKWARD_TIMES)],
             AWKWARD_FLOATS[i % len(AWKWARD_FLOATS)], AWKWARD_TEXT[i % len(AWKWARD_TEXT)]) for i in range(count)]
    text_keys = [(f"{text}/{i}", i, "1", None, 0.5, text) for i, text in enumerate(AWKWARD_TEXT[:-1])]  # in a key too
    updates = [(AWKWARD_MONEY[(i + 3) % len(AWKWARD_MONEY)], AWKWARD_TIMES[(i + 1) % len(AWKWARD_TIMES)],
                AWKWARD_TEXT[-1 - i], f"k{i:02}", i)
               for i in range(count)]
    types = types_of(conn)
    for sql, rows_of in ((INSERT, rows), (INSERT, text_keys), (UPDATE, updates)):
        one = set_based(sql, rows_of, types=types)
        assert one is not None
        conn.execute(*one)
        conn.cursor().executemany(sql.replace("INTO t ", "INTO u ").replace("UPDATE t SET", "UPDATE u SET")
                                  .replace("t.k", "u.k").replace("t.n", "u.n"), rows_of)
    stored, expected = (conn.execute(f"SELECT k, n, q::text, at::text, f::text, note FROM {name} ORDER BY k").fetchall()
                        for name in ("t", "u"))
    assert stored == expected
    assert {r[5] for r in stored} >= {t for t in AWKWARD_TEXT if t is not None}
    assert "12345678901234567890.123456789012345678" in {r[2] for r in stored}
    assert {"NaN", "Infinity", "-Infinity", "-0", "1e-300"} <= {r[4] for r in stored}
    assert "2025-06-10 13:00:01.000001" in {r[3] for r in stored}


UPDATE_U = UPDATE.replace("UPDATE t SET", "UPDATE u SET").replace("t.k", "u.k").replace("t.n", "u.n")
INSERT_U = INSERT.replace("INTO t ", "INTO u ")


def run(conn: psycopg.Connection, statements: list[tuple[str, list[tuple]]]) -> None:
    types = types_of(conn)
    for sql, rows in statements:
        one = set_based(sql, rows, types=types)
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


def test_updates_of_one_table_by_other_key_columns_are_not_moved_past_each_other() -> None:
    by_k = ("UPDATE t SET note=%s::VARCHAR WHERE t.k = %s::VARCHAR", [("x", "a")])
    by_n = ("UPDATE t SET note=%s::VARCHAR WHERE t.n = %s::INTEGER", [("y", 1)])  # may be the same row
    again_by_k = (by_k[0], [("z", "b")])
    assert merged([by_k, by_n, again_by_k]) == [by_k, by_n, again_by_k]


def test_a_value_too_long_for_its_column_is_refused_as_row_at_a_time_refuses_it(conn: psycopg.Connection) -> None:
    """An uncast parameter's array takes the column's type without its length: the INSERT's
    assignment refuses a value too long for ``varchar(3)``, as row at a time, instead of an
    explicit cast cutting it to ``abc``."""
    conn.execute("CREATE TABLE short (k varchar PRIMARY KEY, code varchar(3))")
    insert = "INSERT INTO short (k, code) VALUES (%s::VARCHAR, %s)"
    rows = [("a", "abc"), ("b", "abcdef")]
    one = set_based(insert, rows, types=types_of(conn))
    assert one is not None
    for run_it in (lambda: conn.execute(*one), lambda: conn.cursor().executemany(insert, rows)):
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            run_it()
    assert conn.execute("SELECT count(*) FROM short").fetchone() == (0,)
