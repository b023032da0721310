"""The store writer's fast paths write exactly what the general paths write: the generated
event encoders (``genesis.domain.fast_encode``), event rows made as DBAPI tuples at once
(``batch.event_rows``), the UUIDs of one ``os.urandom`` call, the slot's plain check."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from genesis.domain import codec
from genesis.domain import events as ev
from genesis.domain.events import EVENT_TYPES, PlannedSlice
from genesis.domain.execution import Execution
from genesis.domain.fast_encode import compile_encoder
from genesis.store import batch
from genesis.store.append_queue import AppendQueue
from genesis.store.batch import Chunk, Pending, event_rows, fold, plan_events, plan_row_updates, to_sql
from genesis.store.types import TEXT_BINDS
from genesis.tuning import NO_TUNING, Slot
from tests.test_codec import event_strategy

T0 = datetime(2025, 6, 10, 13, 0, 1, tzinfo=timezone.utc)  # microsecond 0
INDIA = timezone(timedelta(hours=5, minutes=30))


def general_text(event: Any) -> str:
    """The codec's general encoding: its plain form through ``json``, compact, keys sorted, ASCII."""
    return json.dumps(codec._to_plain(event), separators=(",", ":"), sort_keys=True)


def fast_text(event: Any) -> str:
    names = tuple(f.name for f in dataclasses.fields(event))
    return compile_encoder(names, lambda v: codec._encode_other(v))(event)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_generated_encoder_writes_the_general_encodings_text(event_type: str, data: st.DataObject) -> None:
    event = data.draw(event_strategy(EVENT_TYPES[event_type]))
    assert fast_text(event) == general_text(event) == codec.encode(event)


@pytest.mark.parametrize("value", [Decimal("1E+3"), Decimal("-0"), Decimal("0E-8"), Decimal("2.50000"),
                                   Decimal("0.00000001"), Decimal("123456789.123456789")])
def test_decimal_exponents_and_times_off_utc_or_on_the_second_keep_their_text(value: Decimal) -> None:
    event = ev.ExecutionStarted("e\u00e9\"1", T0.astimezone(INDIA), value, T0 + timedelta(microseconds=7),
                                (PlannedSlice(0, T0, value),))
    text = codec.encode(event)
    assert text == general_text(event) == fast_text(event)
    assert f'"{value}"' in text and '"2025-06-10T13:00:01+00:00"' in text
    assert '"2025-06-10T13:00:01.000007+00:00"' in text


def writer_dialects() -> list[Any]:
    sqlite = create_engine("sqlite://").dialect
    postgres = create_engine("postgresql+psycopg://u@h/d", paramstyle="format").dialect
    setattr(postgres, TEXT_BINDS, True)  # as genesis.store.db.writer_engine
    return [sqlite, postgres]


def test_only_dialects_that_bind_times_as_text_take_event_rows_as_tuples() -> None:
    assert all(event_rows(d) is not None for d in writer_dialects())
    assert event_rows(create_engine("postgresql+psycopg://u@h/d").dialect) is None


def fixed_ids(n: int) -> Iterator[str]:
    return (f"00000000-0000-4000-8000-{i:012d}" for i in range(n))


def planned_transaction(dialect: Any, layout: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """One chunk of submissions, starts and pauses (times off UTC, on the second, shared by an
    event and its projection) planned and converted with ``layout``."""
    monkeypatch.setattr(batch, "uuid4_strings", fixed_ids)
    loop = asyncio.new_event_loop()
    try:
        aggregates = {f"x{i}": Execution(f"x{i}") for i in range(3)}
        items = []
        for i, agg_id in enumerate(aggregates):
            at = (T0 + timedelta(seconds=i)).astimezone(INDIA)
            events: list[ev.Event] = [
                ev.ExecutionSubmitted(agg_id, at, agg_id, "BTC/USDT", "buy", Decimal("1.50"), "twap", 900),
                ev.ExecutionStarted(agg_id, at, Decimal("1E+5"), at + timedelta(minutes=15),
                                    (PlannedSlice(0, at, Decimal("1.50")),))]
            items.append(Pending(agg_id, events, None, ((i + 1, "done", None),)))
            items.append(Pending(agg_id, [ev.ExecutionPaused(agg_id, T0 + timedelta(microseconds=i), "why")],
                                 None, ()))
        chunk = Chunk(0, T0 + timedelta(hours=1))
        folded, row_updates, seq = [], {}, 1  # type: ignore[var-annotated]
        for item in items:
            item.future = loop.create_future()
            agg = aggregates[item.aggregate_id]
            folded.append((item, agg, fold(agg, item)))
        for start in range(0, len(folded), 2):  # in parts, as the planner does
            seq = plan_events(chunk, folded[start:start + 2], seq, row_updates, layout)
        plan_row_updates(chunk, row_updates, {})
        for item, _ in chunk.accepted:
            batch.plan_commands(chunk, item, chunk.created_at)
        loop.run_until_complete(to_sql(chunk, dialect, NO_TUNING.slot(), layout))
        return chunk.transaction
    finally:
        loop.close()


@pytest.mark.parametrize("dialect", writer_dialects(), ids=lambda d: d.name)
def test_event_rows_made_as_tuples_are_the_rows_the_general_path_converts(
        dialect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = planned_transaction(dialect, event_rows(dialect), monkeypatch)
    general = planned_transaction(dialect, None, monkeypatch)
    assert fast == general
    sql, rows = fast[0]
    assert sql.startswith("INSERT INTO events") and len(rows) == 9
    assert rows[0][6] == "2025-06-10 13:00:01.000000"  # occurred_at, given in +05:30
    assert rows[-1][6] == "2025-06-10 13:00:01.000002"


def test_uuids_of_one_random_draw_are_distinct_version_4_uuids() -> None:
    ids = list(batch.uuid4_strings(500))
    assert len(set(ids)) == 500
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_a_slot_is_over_once_its_seconds_have_passed() -> None:
    assert not Slot(None).over()
    assert Slot(0).over()
    assert not Slot(3600).over()
    assert list(itertools.islice(batch.uuid4_strings(0), 1)) == []


def test_the_append_queue_hands_out_chunks_in_order_and_joins_once_all_are_done() -> None:
    async def scenario() -> None:
        queue: AppendQueue[int] = AppendQueue()
        taker = asyncio.create_task(queue.take(3))
        await asyncio.sleep(0)
        assert not taker.done()  # waits for the first item
        for i in range(5):
            queue.put_nowait(i)
        assert await taker == [0, 1, 2] and queue.qsize() == 2
        assert await queue.take(10) == [3, 4] and queue.empty()
        joined = asyncio.create_task(queue.join())
        for _ in range(4):
            queue.task_done()
        await asyncio.sleep(0)
        assert not joined.done()  # one of the five is not done yet
        queue.task_done()
        await asyncio.wait_for(joined, 1)
        with pytest.raises(ValueError):
            queue.task_done()
    asyncio.run(scenario())
