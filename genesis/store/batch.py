"""What the event store's writer commits: appends folded and planned into chunks.

A ``Chunk`` is a group of appends whose events have been folded into the cached aggregates
(``fold``: so refusals are known) and turned into rows and projection statements, then into
SQL with plain parameters (``to_sql``), ready for the committer. Chunks are prepared on the
event loop while earlier ones are being committed, and committed strictly in order.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from operator import itemgetter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Dialect

from genesis.domain.codec import encode, timed_encoder
from genesis.domain.events import Event, ExecutionSubmitted
from genesis.domain.execution import Execution
from genesis.domain.state import IllegalTransition
from genesis.store import tables as t
from genesis.store.bulk import bulk, driver_rows
from genesis.store.errors import ConcurrencyError, InvalidEventError
from genesis.store.types import utc_text
from genesis.store.projector import Statement, grouped, state_columns, statements
from genesis.store.row_changes import Steps, merged, steps_of, update_changed
from genesis.tuning import Slot


@dataclass(frozen=True, slots=True)
class StoredEvent:
    sequence_number: int
    aggregate_version: int
    event: Event


def _stored_event_maker() -> Callable[[int, int, Event], StoredEvent]:
    """``StoredEvent(sequence_number, aggregate_version, event)`` without the frozen
    dataclass' ``__init__`` (an ``object.__setattr__`` call per field): its slots set directly.
    The writer makes one per event."""
    new = object.__new__
    set_sequence = StoredEvent.sequence_number.__set__  # type: ignore[attr-defined]
    set_version = StoredEvent.aggregate_version.__set__  # type: ignore[attr-defined]
    set_event = StoredEvent.event.__set__  # type: ignore[attr-defined]

    def stored_event(sequence_number: int, aggregate_version: int, event: Event) -> StoredEvent:
        stored = new(StoredEvent)
        set_sequence(stored, sequence_number)
        set_version(stored, aggregate_version)
        set_event(stored, event)
        return stored
    return stored_event


stored_event = _stored_event_maker()


@dataclass(slots=True)
class Pending:
    """One ``append`` (or ``mark_commands``) waiting for its commit."""

    aggregate_id: str
    events: list[Event]
    expected_version: int | None
    command_ids: tuple[tuple[int, str, str | None], ...]
    future: asyncio.Future[list[StoredEvent]] = field(default=None)  # type: ignore[assignment]


@dataclass(slots=True)
class Chunk:
    """Appends ready for one transaction. ``generation`` is the writer's failure count when the
    chunk was prepared: a chunk prepared before a failed commit was folded on top of it and
    must not be committed."""

    generation: int
    created_at: datetime  # the events' created_at
    accepted: list[tuple[Pending, list[StoredEvent]]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    planned: list[Statement] = field(default_factory=list)
    written: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # executions state columns written
    transaction: list[tuple[str, list[Any]]] = field(default_factory=list)  # rows and planned, as SQL
    failed: bool = False  # its appends were failed (it must not be delivered)
    touched: set[str] = field(default_factory=set)
    poisoned: set[str] = field(default_factory=set)  # evicted: an invalid append of the chunk left them unreliable
    converted: dict[int, dict[int, Any]] = field(default_factory=dict)  # the memo of driver_rows: values converted once


def fold(agg: Execution, item: Pending) -> list[int] | Exception:
    """Apply the item's events to ``agg`` (the cached aggregate): their versions, or why they
    were refused (``ConcurrencyError``; ``InvalidEventError``, ``agg`` possibly half-applied)."""
    if item.expected_version is not None and item.expected_version != agg.version:
        return ConcurrencyError(f"aggregate {item.aggregate_id} is at version {agg.version}, "
                                f"expected {item.expected_version}")
    versions = []
    try:
        for e in item.events:
            agg.apply(e)
            versions.append(agg.version)
    except (IllegalTransition, ValueError, KeyError, TypeError) as exc:
        return InvalidEventError(f"{type(exc).__name__}: {exc}")
    return versions


def plan_events(chunk: Chunk, folded: list[tuple[Pending, Execution, list[int]]], first_seq: int,
                row_updates: dict[str, tuple[Execution, Steps | None]], layout: EventRows | None = None) -> int:
    """Add the event rows and projection statements of ``folded`` appends (events numbered
    from ``first_seq``) to ``chunk``; returns the next free sequence number. The aggregates
    whose ``executions`` row must be updated are collected in ``row_updates``, with the state
    columns their events can change (one UPDATE per aggregate per transaction:
    ``plan_row_updates``). May be called for a chunk's appends in several parts, in order,
    once every append of the chunk has been folded. With a ``layout`` (``event_rows``) the rows
    are its DBAPI tuples already (the event text encoded with the ``occurred_at`` text of its
    column: ``codec.timed_encoder``), else dicts for ``to_sql``."""
    seq = first_seq
    ids = uuid4_strings(sum(len(item.events) for item, _, _ in folded))
    now = chunk.created_at
    add_row, add_accepted, add_planned = chunk.rows.append, chunk.accepted.append, chunk.planned.extend
    if layout is not None:  # times as text, each converted once per chunk (its projections reuse them)
        times = chunk.converted.setdefault(id(layout.time_text), {})
        time_text = layout.time_text
        created = times.get(id(now)) or times.setdefault(id(now), time_text(now))
    for item, agg, versions in folded:
        agg_id, events = item.aggregate_id, item.events
        stored = []
        for version, e in zip(versions, events):
            stored.append(stored_event(seq, version, e))
            if layout is not None:
                at = e.occurred_at
                at_text = times.get(id(at))
                if at_text is None:
                    at_text = times[id(at)] = time_text(at)
                add_row((next(ids), seq, e.event_type, agg_id, version, timed_encoder(type(e))(e, at_text),
                         at_text, created))
            else:
                add_row({  # the keys of _EVENT_KEYS, written out: this is the hot path
                    "event_id": next(ids), "sequence_number": seq, "event_type": e.event_type,
                    "aggregate_id": agg_id, "aggregate_version": version,
                    "event_data": encode(e), "occurred_at": e.occurred_at, "created_at": now,
                })
            seq += 1
        add_accepted((item, stored))
        add_planned(statements(agg, events, execution_row_update=False))
        if isinstance(events[0], ExecutionSubmitted):
            chunk.written[agg_id] = state_columns(agg)
        else:
            prior = row_updates.get(agg_id)
            if prior is not None:  # another append to it in this transaction
                row_updates[agg_id] = (agg, merged(prior[1], steps_of(events)))
            else:  # (inserted in this transaction: its row as last written is not the one to diff)
                row_updates[agg_id] = (agg, None if agg_id in chunk.written else steps_of(events))
    return seq


def plan_row_updates(chunk: Chunk, row_updates: dict[str, tuple[Execution, Steps | None]],
                     last_rows: dict[str, tuple[Any, ...]]) -> None:
    """One ``executions`` UPDATE per aggregate of ``row_updates``, after the chunk's other
    statements. ``last_rows`` are the state columns as last written: only those that changed
    are set (of those the aggregate's events can change: ``row_changes``)."""
    updates = []
    for agg_id, (agg, steps) in row_updates.items():
        stmt, chunk.written[agg_id] = update_changed(agg, last_rows.get(agg_id), steps)
        updates.append(stmt)
    updates.sort(key=lambda st: tuple(st[1]))  # same column sets side by side: executemany
    chunk.planned.extend(updates)


def plan_commands(chunk: Chunk, item: Pending, now: datetime) -> None:
    """Mark ``item``'s commands processed in the chunk's transaction."""
    for cmd_id, outcome, detail in item.command_ids:
        chunk.planned.append((_COMMAND_DONE, {"_command_id": cmd_id, "processed_at": now, "outcome": outcome,
                                              "detail": detail}))


_COMMAND_DONE = bulk(update(t.commands).where(t.commands.c.command_id == bindparam("_command_id")))


async def to_sql(chunk: Chunk, dialect: Dialect, slot: Slot, layout: EventRows | None = None) -> None:
    """Fill the chunk's ``transaction``: its rows and planned statements as SQL for
    ``dialect`` with plain parameters, converted a part at a time between looks at the clock.
    ``layout``: the one ``plan_events`` wrote the event rows with (they are DBAPI rows already)."""
    memo = chunk.converted  # values converted once per chunk (the chunk keeps them alive)
    if layout is not None:
        for start in range(0, len(chunk.rows), _CONVERT_PART):
            chunk.transaction.append((layout.sql, chunk.rows[start:start + _CONVERT_PART]))
    events = [(_EVENT_INSERT, chunk.rows)] if chunk.rows and layout is None else []
    for stmt, rows in itertools.chain(events, grouped(chunk.planned)):
        for start in range(0, len(rows), _CONVERT_PART):
            if slot.over():
                await slot.share()
            chunk.transaction.append(driver_rows(dialect, stmt, rows[start:start + _CONVERT_PART], memo))


@dataclass(frozen=True, slots=True)
class EventRows:
    """How ``plan_events`` writes event rows straight as the DBAPI tuples of a dialect's insert
    (the values in ``_EVENT_KEYS`` order, both times through ``time_text``), without a dict
    per row converted again by ``to_sql``: ``event_rows``."""

    sql: str
    time_text: Callable[[Any], Any]


def event_rows(dialect: Dialect) -> EventRows | None:
    """The ``EventRows`` of ``dialect`` when ``driver_rows`` makes exactly those tuples of the
    event insert (positional parameters in ``_EVENT_KEYS`` order, only the two times converted,
    to naive-UTC text: SQLite, and the PostgreSQL writer's text binds); None otherwise."""
    at, created = datetime(2000, 1, 2, 3, 4, 5, 6, timezone.utc), datetime(2001, 1, 1, tzinfo=timezone.utc)
    values = ("event-id", 7, "event-type", "aggregate", 3, "{}", at, created)
    sql, (row,) = driver_rows(dialect, _EVENT_INSERT, [dict(zip(_EVENT_KEYS, values))])
    expected = (*values[:6], utc_text(at), utc_text(created))
    if not isinstance(row, tuple) or row != expected:
        return None
    return EventRows(sql, utc_text)


_EVENT_INSERT = bulk(insert(t.events))
_EVENT_KEYS = ("event_id", "sequence_number", "event_type", "aggregate_id", "aggregate_version", "event_data",
               "occurred_at", "created_at")  # the keys of the rows plan_events makes, in order


def event_insert_sql(dialect: Dialect) -> tuple[str, int | str]:
    """The SQL of the event rows' insert in a chunk's ``transaction``, for ``dialect``, and
    where its rows hold ``sequence_number``: a tuple index, or the key (named paramstyles)."""
    marker = -1
    sql, (row,) = driver_rows(dialect, _EVENT_INSERT, [dict.fromkeys(_EVENT_KEYS) | {"sequence_number": marker}])
    return sql, ("sequence_number" if isinstance(row, dict) else list(row).index(marker))


def event_id_at(dialect: Dialect) -> int | str:
    """Where the rows of ``event_insert_sql`` hold ``event_id``: a tuple index, or the key."""
    marker = "event-id-marker"
    _, (row,) = driver_rows(dialect, _EVENT_INSERT, [dict.fromkeys(_EVENT_KEYS) | {"event_id": marker}])
    return "event_id" if isinstance(row, dict) else list(row).index(marker)


_CONVERT_PART = 64  # rows converted between two looks at the clock


def uuid4_strings(n: int) -> Iterator[str]:
    """``n`` random (version 4) UUIDs as strings, from one ``os.urandom`` call."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122)
    h = raw.hex()  # one conversion for all of them, then cut and joined in C
    return iter(list(map("-".join, map(_UUID_GROUPS, [h[i:i + 32] for i in range(0, 32 * n, 32)]))))


_VERSION_4 = bytes(b & 0x0F | 0x40 for b in range(256))  # byte 6: version 4
_RFC_4122 = bytes(b & 0x3F | 0x80 for b in range(256))  # byte 8: the RFC 4122 variant
_UUID_GROUPS = itemgetter(slice(0, 8), slice(8, 12), slice(12, 16), slice(16, 20), slice(20, 32))
