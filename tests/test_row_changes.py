"""The writer's ``executions`` row diff over the columns an event can change
(``genesis.store.row_changes``) sets exactly what the full diff (``projector.update_executions``)
sets, for every event type: random histories are folded, and after every append (one event or
several, several appends to one aggregate in one transaction) the two diffs must give the same
statement and the same state columns; a fold that changes a column not listed for its event
type fails here. Also: the timed encoders write ``encode``'s text, ``stored_event`` makes the
dataclass' value, a chunk planned by the writer updates the rows the full diff would."""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from genesis.domain import codec
from genesis.domain import events as ev
from genesis.domain.events import EVENT_TYPES
from genesis.domain.execution import Execution
from genesis.domain.orders import OrderStatus
from genesis.domain.state import IllegalTransition
from genesis.store.batch import Chunk, Pending, StoredEvent, plan_events, plan_row_updates, stored_event
from genesis.store.projector import STATE_COLUMNS, state_columns, update_executions
from genesis.store.row_changes import COLUMNS_CHANGED, merged, steps_of, update_changed
from genesis.store.types import utc_text
from tests.test_codec import event_strategy

EID = "exec-1"
T0 = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)
FOLDED_TYPES = sorted(name for name, cls in EVENT_TYPES.items() if cls is not ev.ExecutionSubmitted)
# events that put an execution where an event of the key's type can be folded, in order
ENABLERS: dict[type[ev.Event], list[type[ev.Event]]] = {
    ev.ExecutionResumed: [ev.ExecutionPaused],
    ev.SlicingResumed: [ev.SlicingHeld],
    ev.OrderAcknowledged: [ev.OrderIntended],
    ev.FillRecorded: [ev.OrderIntended],
    ev.OrderClosed: [ev.OrderIntended, ev.OrderAcknowledged],
    ev.SliceParticipationMeasured: [ev.TwapSliceExecuted],
    ev.TwapSliceExecuted: [ev.OrderIntended, ev.FillRecorded],
    ev.VwapSliceExecuted: [ev.OrderIntended, ev.FillRecorded],
}


def opened(slices: int, started: bool = True) -> Execution:
    """A running execution with ``slices`` planned slices (not ``started``: only submitted)."""
    agg = Execution(EID)
    agg.apply(ev.ExecutionSubmitted(EID, T0, "req", "BTC/USDT", "buy", codec.Decimal("1"), "twap", 900))
    if started:
        agg.apply(ev.ExecutionStarted(EID, T0, codec.Decimal("100000"), T0 + timedelta(minutes=15),
                                  tuple(ev.PlannedSlice(i, T0, codec.Decimal("0.25")) for i in range(slices))))
    return agg


def draw_event(data: st.DataObject, agg: Execution, cls: type[ev.Event]) -> ev.Event:
    """A random event of ``cls`` for ``agg``, its references (slice, child order) mostly to what exists."""
    event = data.draw(event_strategy(cls))
    changes: dict[str, Any] = {"execution_id": EID}
    names = {f.name for f in dataclasses.fields(cls)}
    if "slice_index" in names and agg.slices:
        likely = {ev.SliceParticipationMeasured: agg._unmeasured, ev.TwapSliceExecuted: agg._open,
                  ev.VwapSliceExecuted: agg._open}.get(cls) or sorted(agg.slices)
        changes["slice_index"] = data.draw(st.sampled_from(list(likely)))
    if "client_order_id" in names and agg.orders and cls is not ev.OrderIntended:
        changes["client_order_id"] = data.draw(st.sampled_from(sorted(agg.orders)))
    if cls is ev.OrderClosed:
        changes["status"] = data.draw(st.sampled_from([s.value for s in OrderStatus]))
    if cls in (ev.TwapSliceExecuted, ev.VwapSliceExecuted):
        changes["status"] = data.draw(st.sampled_from(["filled", "denied", "expired", "partial"]))
    if cls in (ev.TwapSliceExecuted, ev.VwapSliceExecuted) and event.interval_end is None and data.draw(st.booleans()):
        changes["interval_end"] = event.occurred_at  # (then the slice awaits its measured participation)
    if cls in (ev.TwapCompleted, ev.VwapCompleted):
        changes["reason"] = data.draw(st.sampled_from(["filled", "expired"]))
    return dataclasses.replace(event, **changes)  # type: ignore[type-var]


def folded(agg: Execution, events: list[ev.Event]) -> Execution | None:
    """``agg`` with ``events`` folded into a copy, or None when the fold refuses them."""
    copied = copy.deepcopy(agg)
    try:
        for e in events:
            copied.apply(e)
        state_columns(copied)  # (random prices whose average cannot be quantized: not a history)
    except (IllegalTransition, ValueError, KeyError, TypeError, ArithmeticError):  # the writer's fold refuses these
        return None
    return copied


def assert_same_update(agg: Execution, previous: tuple[Any, ...], steps: Any) -> tuple[Any, ...]:
    (old_stmt, old_params), old_row = update_executions(agg, previous)
    (new_stmt, new_params), new_row = update_changed(agg, previous, steps)
    assert new_stmt is old_stmt
    assert list(new_params.items()) == list(old_params.items())  # same columns, same order, same values
    assert new_row == old_row
    return new_row


@pytest.mark.parametrize("event_type", FOLDED_TYPES)
def test_the_row_diff_of_the_columns_an_event_changes_sets_what_the_full_diff_sets(event_type: str) -> None:
    target = EVENT_TYPES[event_type]
    others = [EVENT_TYPES[name] for name in FOLDED_TYPES]
    likely = [target, target, *ENABLERS.get(target, []) * 3, *others]
    applied: list[int] = []

    # no shrinking: it takes minutes on long histories (the failure names the events and the columns)
    @settings(max_examples=50, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(data=st.data())
    def walk(data: st.DataObject) -> None:
        started = target is not ev.ExecutionStarted or data.draw(st.booleans())
        agg = opened(data.draw(st.integers(1, 4)), started=started)
        previous = state_columns(agg)
        first = [[cls] for cls in ENABLERS.get(target, [])] + [[target]]  # the first appends: the target in reach
        for _ in range(data.draw(st.integers(1, 10))):
            appends = []  # one transaction: one or more appends of one or more events
            after = agg
            for _ in range(data.draw(st.integers(1, 2))):
                kinds = first.pop(0) if first else data.draw(st.lists(st.sampled_from(likely), min_size=1, max_size=2))
                events = [draw_event(data, after, cls) for cls in kinds]
                then = folded(after, events)
                if then is not None:
                    appends.append(events)
                    after = then
                    applied.append(sum(type(e) is target for e in events))
            if not appends:
                continue
            changed = {name for name, old, new in zip(STATE_COLUMNS, previous, state_columns(after)) if old != new}
            listed = {"version"}.union(*(COLUMNS_CHANGED.get(type(e), STATE_COLUMNS) for a in appends for e in a))
            assert changed <= listed, f"{[type(e).__name__ for a in appends for e in a]} changed {changed - listed}"
            steps = steps_of(appends[0])
            for events in appends[1:]:
                steps = merged(steps, steps_of(events))
            previous = assert_same_update(after, previous, steps)
            assert previous == state_columns(after)
            agg = after

    walk()
    assert sum(applied) >= 3, f"{event_type} was folded in only {sum(applied)} histories: the walk misses it"


def test_an_event_type_without_listed_columns_takes_the_full_diff() -> None:
    agg = opened(2)
    previous = state_columns(agg)
    again = ev.ExecutionSubmitted(EID, T0, "req", "BTC/USDT", "buy", codec.Decimal("3"), "twap", 900)
    agg.apply(again)  # (a second submission: the fold takes it, the full diff decides)
    assert steps_of([again]) is None and steps_of([again, ev.ExecutionPaused(EID, T0, "x")]) is None
    assert merged(steps_of([ev.ExecutionPaused(EID, T0, "x")]), None) is None
    assert_same_update(agg, previous, steps_of([again]))


def test_a_chunk_planned_with_two_appends_to_one_aggregate_updates_its_row_as_the_full_diff() -> None:
    aggregates = {EID: opened(2), "exec-2": Execution("exec-2")}
    last_rows = {EID: state_columns(aggregates[EID])}
    appends = [Pending(EID, [ev.ExecutionPaused(EID, T0 + timedelta(seconds=1), "a")], None, ()),
               Pending("exec-2", [ev.ExecutionSubmitted("exec-2", T0, "r2", "BTC/USDT", "sell",
                                                        codec.Decimal("2"), "twap", 60)], None, ()),
               Pending(EID, [ev.ExecutionResumed(EID, T0 + timedelta(seconds=4), "b"),
                             ev.UrgencyChanged(EID, T0 + timedelta(seconds=5), "high", "late")], None, ()),
               Pending("exec-2", [ev.ExecutionStarted("exec-2", T0, codec.Decimal("9"), T0 + timedelta(minutes=1),
                                                      (ev.PlannedSlice(0, T0, codec.Decimal("2")),))], None, ())]
    folded_appends = []
    for item in appends:
        agg = aggregates[item.aggregate_id]
        versions = []
        for e in item.events:
            agg.apply(e)
            versions.append(agg.version)
        folded_appends.append((item, agg, versions))
    chunk, row_updates = Chunk(0, T0), {}  # type: ignore[var-annotated]
    plan_events(chunk, folded_appends, 1, row_updates)
    plan_row_updates(chunk, row_updates, last_rows)
    updates = [params for _, params in chunk.planned if isinstance(params, dict) and "_execution_id" in params]
    expected = [update_executions(aggregates[EID], last_rows[EID])[0][1],
                update_executions(aggregates["exec-2"], None)[0][1]]  # inserted in this chunk: its whole row
    updates.sort(key=lambda p: p["_execution_id"])
    assert updates == expected
    assert updates[0] == {"_execution_id": EID, "paused_seconds": 3.0, "version": 5, "urgency": "high"}
    assert chunk.written == {agg_id: state_columns(agg) for agg_id, agg in aggregates.items()}


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@settings(max_examples=25, deadline=None)
@given(data=st.data(), offset_minutes=st.integers(-14 * 60, 14 * 60))
def test_the_timed_encoder_writes_encodes_text(event_type: str, data: st.DataObject, offset_minutes: int) -> None:
    event = data.draw(event_strategy(EVENT_TYPES[event_type]))
    at = event.occurred_at.astimezone(timezone(timedelta(minutes=offset_minutes)))
    on_the_second = at.replace(microsecond=0)
    for e in (event, dataclasses.replace(event, occurred_at=at), dataclasses.replace(event, occurred_at=on_the_second)):
        assert codec.timed_encoder(type(e))(e, utc_text(e.occurred_at)) == codec.encode(e)


def test_stored_event_is_the_dataclass_value() -> None:
    event = ev.ExecutionPaused(EID, T0, "x")
    made = stored_event(7, 3, event)
    assert type(made) is StoredEvent and made == StoredEvent(7, 3, event)
    assert hash(made) == hash(StoredEvent(7, 3, event))
    assert (made.sequence_number, made.aggregate_version, made.event) == (7, 3, event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.sequence_number = 8  # type: ignore[misc]
