"""Many rows of one writer statement as one set-based statement on PostgreSQL.

The writer's transactions are lists of ``(sql, rows)`` run with ``executemany``: one
statement execution per row, each with its own parameters for psycopg to adapt and the server
to bind (~50-100 us of the commit's Python per row, as much again on the server). For the
two shapes the writer makes by the hundred, SQLAlchemy's compiled

- ``INSERT INTO t (c1, ...) VALUES (%s::T1, ...)`` and
- ``UPDATE t SET c1=%s::T1, ... WHERE t.k1 = %s::K1 AND ...``

``set_based`` returns one statement taking each column's values as one array parameter
(PostgreSQL's array text, ``{"a","b\\"c",NULL}``), read back as rows by ``unnest``; an
array is of the type the row-at-a-time statement casts its parameter to (its column's type,
from the catalogue, when it casts none: ``column_types``), so each value goes through the same
input function as it would row at a time: money stays exact text-to-NUMERIC, times are read
from the same text:

- ``INSERT INTO t (c1, ...) SELECT v.c1, ... FROM unnest(%s::T1[], ...) AS v(c1, ...)``;
- ``UPDATE t SET c1 = v.c1, ... FROM unnest(%s::T1[], ...) AS v(c1, ..., k1, ...) WHERE
  t.k1 = v.k1 AND ...``.

(Arrays rather than one JSON document of the rows: the server parses no JSON twice, builds
no hash of keys and no whole-table record per row, and the commit process builds no dict per
row: docs/performance.md, ``feat/server-cut``.)

The result is the same as running the rows one after the other, because an ``INSERT`` of
rows without ``ON CONFLICT`` does not depend on their order, and an ``UPDATE`` is only made
set-based when no two rows name the same key (otherwise None: the caller runs the
``executemany``; so does every other shape, and rows with a value an array cannot carry as
the row-at-a-time statement would: bytes, a string with a NUL). Standard library only: the
PostgreSQL commit process imports it.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterable, Mapping

_PARAM = r"%s(?:::[A-Z ]+(?:\(\d+(?:, ?\d+)?\))?)?"  # a placeholder, with SQLAlchemy's bind cast if any
_CAST = re.compile(r"%s(?:::([A-Z ]+(?:\(\d+(?:, ?\d+)?\))?))?")  # the same, its cast as the group
_INSERT = re.compile(rf"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(((?:{_PARAM}(?:, )?)+)\)")
_UPDATE = re.compile(rf"UPDATE (\w+) SET ((?:\w+={_PARAM}(?:, )?)+) WHERE (.+)")
_SET = re.compile(rf"(\w+)={_PARAM}")
_KEY = re.compile(rf"(\w+)\.(\w+) = {_PARAM}")
MIN_ROWS = 2  # one row: the prepared row-at-a-time statement is as good

# the column types, as SQL writes them, of the tables an unqualified name finds (the search
# path's): (table, column, type) rows. Without the type modifier (``character varying``, not
# ``(64)``): the value is then fitted to the column by the INSERT's or SET's assignment, as
# row at a time (too long: an error), not by an explicit cast to it (too long: cut)
COLUMN_TYPES_SQL = ("SELECT c.relname, a.attname, format_type(a.atttypid, NULL) FROM pg_class AS c "
                    "JOIN pg_attribute AS a ON a.attrelid = c.oid WHERE c.relkind IN ('r', 'p') "
                    "AND pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped")

ColumnTypes = Mapping[str, Mapping[str, str]]  # table -> column -> type (``column_types``)


@functools.lru_cache(maxsize=256)
def _shape(sql: str, replace: tuple[tuple[str, str], ...]
           ) -> tuple[str, str, tuple[str, ...], tuple[str | None, ...], int] | None:
    """For ``sql``: its table, the set-based SQL with ``{}`` for the arrays' types, the columns
    of a row's values (in parameter order) and their casts (None: none), and how many of the
    last values are keys of an UPDATE's WHERE (0: an INSERT); or None.
    ``replace``: (column, SQL expression over ``v.column``) to select instead of a plain
    column in an INSERT (the event insert's shifted sequence number)."""
    found = _INSERT.fullmatch(sql)
    if found:
        table, columns = found[1], tuple(c.strip() for c in found[2].split(","))
        casts = tuple(_CAST.findall(found[3]))
        if len(casts) != len(columns):
            return None
        instead = dict(replace)
        select = ", ".join(instead.get(c, f"v.{c}") for c in columns)
        return (table, f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} "
                f"FROM unnest({{}}) AS v({', '.join(columns)})", columns, tuple(c or None for c in casts), 0)
    found = _UPDATE.fullmatch(sql)
    if found is None or replace:
        return None
    table, assignments, where = found[1], found[2], found[3]
    columns = _SET.findall(assignments)
    conjuncts = where.split(" AND ")
    keys = [_KEY.fullmatch(c.strip("()")) for c in conjuncts]
    if not columns or any(k is None or k[1] != table for k in keys):
        return None
    key_columns = [k[2] for k in keys]  # type: ignore[index]
    if set(key_columns) & set(columns):
        return None
    casts = _CAST.findall(assignments) + [_CAST.search(c)[1] for c in conjuncts]  # type: ignore[index]
    names = (*columns, *key_columns)  # the rows' values come SET columns first, then the keys
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    match = " AND ".join(f"{table}.{k} = v.{k}" for k in key_columns)
    return (table, f"UPDATE {table} SET {sets} FROM unnest({{}}) AS v({', '.join(names)}) WHERE {match}",
            names, tuple(c or None for c in casts), len(key_columns))


def column_types(rows: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    """The result of ``COLUMN_TYPES_SQL`` as ``set_based``'s ``types``."""
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        out.setdefault(table, {})[column] = kind
    return out


@functools.lru_cache(maxsize=256)
def _typed_sql(shape_sql: str, table: str, names: tuple[str, ...], casts: tuple[str | None, ...],
               types: tuple[tuple[str, str], ...]) -> str | None:
    """The set-based SQL with each array's type: the cast, else the column's; None if unknown."""
    column = dict(types)
    kinds = [cast or column.get(name) for name, cast in zip(names, casts)]
    if None in kinds:
        return None
    return shape_sql.format(", ".join(f"%s::{kind}[]" for kind in kinds))


def set_based(sql: str, rows: list[tuple[Any, ...]], replace: tuple[tuple[str, str], ...] = (),
              types: ColumnTypes | None = None) -> tuple[str, tuple[str, ...]] | None:
    """``rows`` of the positional statement ``sql`` as one statement and its parameters (one
    array a column), or None when that would not be the same as running them one by one
    (module docstring). ``types``: the column types of the tables (``column_types``), needed
    for a parameter the SQL does not cast (a column not there: None)."""
    if len(rows) < MIN_ROWS:
        return None
    shape = _shape(sql, replace)
    if shape is None:
        return None
    table, shape_sql, names, casts, key_count = shape
    column_types = () if None not in casts else tuple(((types or {}).get(table) or {}).items())
    typed = _typed_sql(shape_sql, table, names, casts, column_types)
    if typed is None:
        return None
    if key_count and len({row[-key_count:] for row in rows}) != len(rows):
        return None  # two updates of one row: their order matters
    try:
        return typed, tuple(_array(column) for column in zip(*rows))
    except ValueError:  # a value an array's text cannot carry as the row's parameter would: row at a time
        return None


_ESCAPED = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _array(values: tuple[Any, ...]) -> str:
    """``values`` as PostgreSQL array text, each element the text the row-at-a-time statement
    sends (``genesis.store.pg_pipeline.text_value``): strings quoted, NULL unquoted."""
    kinds = set(map(type, values))
    if kinds == {str}:  # the common case, a few passes in C: NUL can be the separator, as no value holds one
        joined = "\x00".join(values)
        if joined.count("\x00") != len(values) - 1:
            raise ValueError("NUL in a text value")
        return '{"' + joined.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", '","') + '"}'
    if kinds == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def _element(value: Any) -> str:
    """One array element (``_array``); ValueError for a value sent otherwise row at a time."""
    kind = type(value)
    if value is None:
        return "NULL"
    if kind is str:
        if "\x00" in value:
            raise ValueError("NUL in a text value")
        return '"' + value.translate(_ESCAPED) + '"'
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)  # as text_value: round-trips; 'inf', 'nan' are float8 input too
    raise ValueError(f"no text form for {kind.__name__}")


Statement = tuple[str, list[Any]]


def merged(statements: list[Statement], free: str = "") -> list[Statement]:
    """``statements`` (several transactions committed as one) with each statement's rows moved
    into an earlier statement of the same SQL when running them there gives the same result:
    fewer, larger statements, each one set-based (``set_based``). A statement moves back past

    - any statement, if it is ``free`` (the event insert: a table nothing else in the
      transaction reads or writes, whose rows' order does not matter), and ``free`` itself;
    - an ``UPDATE`` of another table (the writer's updates never change a key that another
      table refers to), or of the same table when no row of one has the key of a row of the
      other;

    and past nothing else (an ``INSERT`` may make the row a later statement updates or refers
    to). An ``UPDATE`` joins an earlier one of the same SQL only if they have no row in
    common (one row updated twice stays two statements, in order: each one set-based)."""
    out: list[_Merging] = []
    for sql, rows in statements:
        update = _update_keys(sql)
        keys = None if update is None else {row[-len(update[1]):] for row in rows}
        into = None
        for k in range(len(out) - 1, -1, -1):
            if sql == free:
                if out[k].sql == free:
                    into = k
                    break
                continue
            if out[k].sql == free:
                continue
            if not out[k].commutes(update, keys):
                break  # (the same UPDATE of one of these rows too: two set-based statements, in order)
            if out[k].sql == sql:
                into = k
                break
        if into is None:
            out.append(_Merging(sql, list(rows), update, keys))
        else:
            out[into].rows.extend(rows)
            if keys is not None and out[into].keys is not None:
                out[into].keys |= keys
    return [(m.sql, m.rows) for m in out]


def _update_keys(sql: str) -> tuple[str, tuple[str, ...]] | None:
    """An ``UPDATE`` that ``set_based`` understands: its table and its key columns (a row's
    last values); None for any other statement."""
    shape = _shape(sql, ())
    if shape is None or not shape[4]:
        return None
    return shape[0], shape[2][-shape[4]:]


class _Merging:
    """A statement of ``merged``'s result while it is made: its rows and, for an ``UPDATE``,
    its table, key columns and the keys of its rows (kept as rows join, not made again)."""

    __slots__ = ("sql", "rows", "update", "keys")

    def __init__(self, sql: str, rows: list[Any], update: tuple[str, tuple[str, ...]] | None,
                 keys: set[Any] | None) -> None:
        self.sql, self.rows, self.update, self.keys = sql, rows, update, keys

    def commutes(self, update: tuple[str, tuple[str, ...]] | None, keys: set[Any] | None) -> bool:
        """Whether the ``UPDATE`` ``update`` of rows with ``keys`` may run before this one:
        both updates, of different tables or of different rows (named by the same key columns)."""
        if update is None or self.update is None or keys is None or self.keys is None:
            return False
        if update[0] != self.update[0]:
            return True
        return update[1] == self.update[1] and self.keys.isdisjoint(keys)  # rows by the same key
