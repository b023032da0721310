"""Many rows of one writer statement as one set-based statement on PostgreSQL.

The writer's transactions are lists of ``(sql, rows)`` run with ``executemany``: one
statement execution per row, each with its own parameters for psycopg to adapt and the server
to bind (~50-100 us of the commit's Python per row, as much again on the server). For the
two shapes the writer makes by the hundred, SQLAlchemy's compiled

- ``INSERT INTO t (c1, ...) VALUES (%s::T1, ...)`` and
- ``UPDATE t SET c1=%s::T1, ... WHERE t.k1 = %s::K1 AND ...``

``set_based`` returns one statement taking all the rows as a single JSON parameter, read
back as rows of the table's own type (``json_populate_recordset(NULL::t, ...)``: each value
through its column type's input function, so money stays exact text-to-NUMERIC and times are
read as the same text the row-at-a-time casts took):

- ``INSERT INTO t (c1, ...) SELECT c1, ... FROM json_populate_recordset(NULL::t, %s::json)``;
- ``UPDATE t SET c1 = v.c1, ... FROM json_populate_recordset(NULL::t, %s::json) AS v WHERE
  t.k1 = v.k1 AND ...``.

The result is the same as running the rows one after the other, because an ``INSERT`` of
rows without ``ON CONFLICT`` does not depend on their order, and an ``UPDATE`` is only made
set-based when no two rows name the same key (otherwise None: the caller runs the
``executemany``; so does every other shape). Standard library only (orjson when it is
installed, for speed): the PostgreSQL commit process imports it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

_PARAM = r"%s(?:::[A-Z ]+(?:\(\d+(?:, ?\d+)?\))?)?"  # a placeholder, with SQLAlchemy's bind cast if any
_INSERT = re.compile(rf"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(((?:{_PARAM}(?:, )?)+)\)")
_UPDATE = re.compile(rf"UPDATE (\w+) SET ((?:\w+={_PARAM}(?:, )?)+) WHERE (.+)")
_SET = re.compile(rf"(\w+)={_PARAM}")
_KEY = re.compile(rf"(\w+)\.(\w+) = {_PARAM}")
MIN_ROWS = 2  # one row: the prepared row-at-a-time statement is as good


@functools.lru_cache(maxsize=256)
def _shape(sql: str, replace: tuple[tuple[str, str], ...]) -> tuple[str, tuple[str, ...], int] | None:
    """The set-based SQL for ``sql``, the JSON keys of a row's values (in parameter order)
    and how many of the leading values are keys of an UPDATE's WHERE (0: an INSERT), or None.
    ``replace``: (column, SQL expression over ``v.column``) to select instead of a plain
    column in an INSERT (the event insert's shifted sequence number)."""
    found = _INSERT.fullmatch(sql)
    if found:
        table, columns = found[1], [c.strip() for c in found[2].split(",")]
        if len(re.findall(_PARAM, found[3])) != len(columns):
            return None
        instead = dict(replace)
        select = ", ".join(instead.get(c, f"v.{c}") for c in columns)
        return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} "
                f"FROM json_populate_recordset(NULL::{table}, %s::json) AS v", tuple(columns), 0)
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
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    match = " AND ".join(f"{table}.{k} = v.{k}" for k in key_columns)
    # the rows' values come SET columns first, then the keys: the JSON keys in that order
    return (f"UPDATE {table} SET {sets} FROM json_populate_recordset(NULL::{table}, %s::json) AS v WHERE {match}",
            (*columns, *key_columns), len(key_columns))


def set_based(sql: str, rows: list[tuple[Any, ...]],
              replace: tuple[tuple[str, str], ...] = ()) -> tuple[str, tuple[str]] | None:
    """``rows`` of the positional statement ``sql`` as one statement and its one parameter,
    or None when that would not be the same as running them one by one (module docstring)."""
    if len(rows) < MIN_ROWS:
        return None
    shape = _shape(sql, replace)
    if shape is None:
        return None
    set_sql, names, key_count = shape
    if key_count and len({row[-key_count:] for row in rows}) != len(rows):
        return None  # two updates of one row: their order matters
    try:
        document = _json([dict(zip(names, row)) for row in rows])
    except (TypeError, ValueError):  # a value JSON cannot carry exactly (bytes, NaN): row at a time
        return None
    return set_sql, (document,)


def _standard_json(objects: list[dict[str, Any]]) -> str:
    return json.dumps(objects, allow_nan=False, separators=(",", ":"))


def _fast_json(objects: list[dict[str, Any]]) -> str:
    """``_standard_json`` by orjson (a few times faster: this runs on every commit's rows).
    orjson writes NaN and infinities as ``null``: they are refused here as ``json`` refuses them."""
    for obj in objects:
        for value in obj.values():
            if type(value) is float and not math.isfinite(value):
                raise ValueError("JSON has no NaN or infinity")
    return orjson.dumps(objects).decode()


try:
    import orjson  # a ccxt dependency, so normally there; the standard library's json otherwise
except ImportError:  # pragma: no cover - depends on the environment
    _json = _standard_json
else:
    _json = _fast_json


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
    out: list[tuple[str, list[Any], tuple[str, int] | None]] = []  # sql, rows, (table, keys) of an UPDATE
    for sql, rows in statements:
        update = _update_keys(sql)
        into = None
        for k in range(len(out) - 1, -1, -1):
            if sql == free:
                if out[k][0] == free:
                    into = k
                    break
                continue
            if out[k][0] == free:
                continue
            if not _commute(out[k], update, rows):
                break  # (the same UPDATE of one of these rows too: two set-based statements, in order)
            if out[k][0] == sql:
                into = k
                break
        if into is None:
            out.append((sql, list(rows), update))
        else:
            out[into][1].extend(rows)
    return [(sql, rows) for sql, rows, _ in out]


def _update_keys(sql: str) -> tuple[str, int] | None:
    """An ``UPDATE`` that ``set_based`` understands: its table and how many of a row's last
    values are its key; None for any other statement."""
    shape = _shape(sql, ())
    if shape is None or not shape[2]:
        return None
    return sql.split(" ", 2)[1], shape[2]


def _commute(earlier: tuple[str, list[Any], tuple[str, int] | None], update: tuple[str, int] | None,
             rows: list[Any]) -> bool:
    """Whether the ``UPDATE`` ``update`` of ``rows`` may run before ``earlier``: both updates,
    of different tables or of different rows."""
    _, earlier_rows, earlier_update = earlier
    if update is None or earlier_update is None:
        return False
    (table, keys), (earlier_table, _) = update, earlier_update
    if table != earlier_table:
        return True
    return not {row[-keys:] for row in rows} & {row[-keys:] for row in earlier_rows}
