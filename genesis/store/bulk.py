"""Executemany for the writer's hot statements, without per-row SQLAlchemy bookkeeping.

A statement is compiled by SQLAlchemy once per dialect and set of parameter names; each row
then goes to the DBAPI cursor as a tuple (or a dict, for named paramstyles), every value
through its column type's own bind processor (``Money`` as exact text, ``UtcDateTime`` as
naive UTC...). The SQL text is SQLAlchemy's compilation for the connection's dialect, so it
stays portable; only the per-row parameter processing is done here, in one tight loop.

Only statements registered with ``bulk`` take this path: they are module-level constants,
so the compile cache stays small.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Executable

from genesis.store.types import text_binds
from genesis.store.value_checks import UnstorableValueError

E = TypeVar("E", bound=Executable)

_REGISTERED: dict[int, Executable] = {}  # id -> statement (the reference keeps the id valid)
_VARIANTS: dict[tuple[int, str], Executable] = {}  # (id, dialect name) -> what runs on that dialect


def bulk(stmt: E, **by_dialect: Executable) -> E:
    """Register ``stmt`` for the bulk path; returns it unchanged. ``by_dialect`` (dialect
    name -> statement) replaces it on that dialect: a dialect-specific construct such as an
    ``INSERT ... ON CONFLICT`` upsert, which each dialect builds with its own ``insert``."""
    _REGISTERED[id(stmt)] = stmt
    for name, variant in by_dialect.items():
        _VARIANTS[id(stmt), name] = variant
    return stmt


def is_bulk(stmt: Executable) -> bool:
    return _REGISTERED.get(id(stmt)) is stmt


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names in the order the SQL takes them
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool
    values: Callable[[dict[str, Any]], tuple[Any, ...]]  # a row's values in ``names`` order
    converted: tuple[tuple[int, int, Callable[[Any], Any]], ...]  # (position, id, processor) to apply


_COMPILED: dict[tuple[str, str, bool, int, tuple[str, ...]], _Compiled] = {}


def _compile(stmt: Executable, keys: tuple[str, ...], dialect: Dialect) -> _Compiled:
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
    missing = [n for n in names if n not in keys]
    if missing:
        raise KeyError(f"bulk statement needs parameters {missing}, rows have {list(keys)}")
    processors = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    getter = operator.itemgetter(*names)
    values = getter if len(names) > 1 else (lambda row: (getter(row),))
    converted = tuple((i, id(p), p) for i, p in enumerate(processors) if p is not None)
    return _Compiled(str(compiled), names, processors, bool(compiled.positional), values, converted)


def execute_bulk(conn: Connection, stmt: Executable, rows: list[dict[str, Any]],
                 memo: dict[int, dict[int, Any]] | None = None) -> None:
    """Run a registered statement once per row (one executemany). All rows have the same keys.
    ``memo``: see ``driver_rows``."""
    conn.exec_driver_sql(*driver_rows(conn.dialect, stmt, rows, memo))


def driver_rows(dialect: Dialect, stmt: Executable, rows: list[dict[str, Any]],
                memo: dict[int, dict[int, Any]] | None = None) -> tuple[str, list[Any]]:
    """A registered statement's SQL for ``dialect`` and its rows as DBAPI parameters (plain
    str/int/float/None values for SQLite), ready for ``cursor.executemany``.

    ``memo`` caches processed values by processor and object identity across the calls of one
    transaction: a commit time shared by every row, or the same datetime in an event and in
    its projection, is converted once. The caller keeps the rows alive while it uses the memo."""
    keys = tuple(rows[0])
    cache_key = (dialect.name, dialect.paramstyle, text_binds(dialect), id(stmt), keys)
    c = _COMPILED.get(cache_key)
    if c is None:
        if not is_bulk(stmt):
            raise TypeError(f"statement not registered with bulk(): {stmt}")
        variant = _VARIANTS.get((id(stmt), dialect.name), stmt)
        c = _COMPILED[cache_key] = _compile(variant, keys, dialect)
    memo = {} if memo is None else memo
    names, get_values, positional = c.names, c.values, c.positional
    # (position, processor, its memo: object id -> processed value)
    converted = [(i, p, memo.setdefault(pid, {})) for i, pid, p in c.converted]
    params: list[Any] = []
    append = params.append
    try:
        for row in rows:
            values = get_values(row)
            if converted:
                values = list(values)
                for i, p, seen in converted:
                    v = values[i]
                    if v is not None:
                        out = seen.get(id(v), _MISSING)
                        if out is _MISSING:
                            out = seen[id(v)] = p(v)
                        values[i] = out
                append(tuple(values) if positional else dict(zip(names, values)))
            else:
                append(values if positional else dict(zip(names, values)))
    except (TypeError, ValueError, ArithmeticError) as exc:  # a value its column's type refuses: name the column
        refusal = TypeError if isinstance(exc, TypeError) else UnstorableValueError
        raise refusal(f"{_refused_column(stmt, c, get_values(row))}: {exc}") from exc
    return c.sql, params


def _refused_column(stmt: Executable, c: _Compiled, values: tuple[Any, ...]) -> str:
    """``table.column`` of the first of a row's ``values`` its column's type refuses."""
    table = getattr(getattr(stmt, "table", None), "name", "?")
    for i, _, p in c.converted:
        try:
            if values[i] is not None:
                p(values[i])
        except (TypeError, ValueError, ArithmeticError):
            return f"{table}.{c.names[i].lstrip('_')}"
    return table


_MISSING = object()
