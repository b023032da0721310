"""The writer's failure paths leave nobody waiting and no stale aggregate in the cache.

An append taken from the queue is settled whatever ends the writer (even while it waits to
reload aggregates after a refused value); a load whose query ran before a commit of its
aggregate is not cached once the writer evicted it; an aggregate evicted for an invalid
append is reloaded only after its events in flight are committed; a cancelled caller of a
refused append does not end the writer; a Decimal PostgreSQL's NUMERIC(38,18) cannot take
refuses its own append, not the group commit with it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy.engine import URL

from genesis.store.committers import CommitterLost
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore, InvalidEventError, StorageError, StoreClosedError
from tests.conftest import migrated_sqlite
from tests.test_eventstore import paused, resumed, running, submitted


def _hold_commits(store: EventStore) -> tuple[list[tuple[Any, int, asyncio.Future[Any]]], Callable[[], None]]:
    """Transactions handed to the committer are held (their outcome unknown) until release()."""
    writer = store._writer
    real_submit, held = writer._committer.submit, []
    holding = [True]

    def submit(transaction: Any, generation: int) -> asyncio.Future[Any]:
        if not holding[0]:
            return real_submit(transaction, generation)
        outer = asyncio.get_running_loop().create_future()
        held.append((transaction, generation, outer))
        return outer

    def release() -> None:
        holding[0] = False
        for transaction, generation, outer in held:
            inner = real_submit(transaction, generation)
            inner.add_done_callback(lambda f, o=outer: o.set_exception(f.exception()) if f.exception()
                                    else o.set_result(f.result()))
    writer._committer.submit = submit
    return held, release


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never met")


async def _pause_in_flight(tmp_path: Path) -> tuple[EventStore, asyncio.Task[Any], Callable[[], None]]:
    """A store where X is running (v2) and its pause (v3) is in the committer's hands, held
    until release()."""
    store = EventStore(async_engine(migrated_sqlite(tmp_path / "g.db")), commit_in="thread")
    await store.start()
    await store.append(running("X"))
    held, release = _hold_commits(store)
    pause = asyncio.create_task(store.append([paused("X")]))
    await _until(lambda: bool(held))
    return store, pause, release


async def test_an_append_taken_while_the_writer_waits_to_reload_is_settled_when_the_writer_ends(tmp_path: Path) -> None:
    engine = async_engine(migrated_sqlite(tmp_path / "g.db"))
    store = EventStore(engine, commit_in="thread")
    await store.start()
    writer = store._writer
    held, _ = _hold_commits(store)
    a = asyncio.create_task(store.append([submitted("exec-a")]))
    await _until(lambda: bool(held))
    with pytest.raises(InvalidEventError, match="lone surrogate"):
        await store.append([replace(submitted("exec-b"), symbol="BTC/\ud800")])
    c = asyncio.create_task(store.append([submitted("exec-c")]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert writer._queue.qsize() == 0 and not c.done()  # taken; the preparer waits for a's commit
    held[0][2].set_exception(CommitterLost("commit process died"))
    with pytest.raises(StorageError, match="commit process died"):
        await a
    with pytest.raises((StorageError, StoreClosedError)):  # settled, not left waiting
        await asyncio.wait_for(c, 10)
    await asyncio.wait_for(writer._queue.join(), 10)  # nothing unfinished: stop() does not hang
    await store.stop()
    await engine.dispose()


async def test_a_load_that_read_before_a_commit_is_not_cached_after_the_writer_evicted_it(tmp_path: Path) -> None:
    store, a, release = await _pause_in_flight(tmp_path)
    gate, gated = asyncio.Event(), []
    real_histories = store._histories

    async def slow_histories(ids: list[str]) -> list[Any]:  # a reader's query whose result comes late
        rows = await real_histories(ids)
        if "X" in ids and not gated:
            gated.append(1)
            await gate.wait()
        return rows
    store._histories = slow_histories  # type: ignore[method-assign]
    c = asyncio.create_task(store.append([resumed("X")]))  # good on top of it
    b = asyncio.create_task(store.append([replace(submitted("Y"), symbol="BTC/\ud800")]))
    await _until(lambda: "X" not in store._aggregates)  # b's chunk failed on its value: X forgotten
    reader = asyncio.create_task(store.load("X"))
    await _until(lambda: bool(gated))  # its query read X at v2
    release()
    assert [s.aggregate_version for s in await a] == [3]
    for _ in range(50):
        await asyncio.sleep(0)
    gate.set()
    with pytest.raises(InvalidEventError, match="lone surrogate"):
        await b
    assert [s.aggregate_version for s in await c] == [4]
    assert (await reader).version >= 3
    assert [s.aggregate_version for s in await store.read("X")] == [1, 2, 3, 4]
    await store.stop()
    await store._engine.dispose()


async def test_an_aggregate_evicted_for_an_invalid_append_is_reloaded_after_its_commits(tmp_path: Path) -> None:
    store, a, release = await _pause_in_flight(tmp_path)
    with pytest.raises(InvalidEventError, match="IllegalTransition"):
        await store.append([paused("X", 1)])  # paused twice: refused, X evicted
    c = asyncio.create_task(store.append([resumed("X")]))  # good on top of the pause
    for _ in range(20):
        await asyncio.sleep(0)
    release()
    assert [s.aggregate_version for s in await a] == [3]
    assert [s.aggregate_version for s in await c] == [4]
    await store.stop()
    await store._engine.dispose()


async def test_a_cancelled_caller_of_a_refused_append_does_not_end_the_writer(tmp_path: Path) -> None:
    engine = async_engine(migrated_sqlite(tmp_path / "g.db"))
    store = EventStore(engine)
    await store.start()
    await store.append(running("X"))
    for refused in ([paused("X")], [resumed("X")]):  # a version conflict; an illegal transition
        blocker = asyncio.create_task(store.append(running(f"Y{len(refused[0].reason)}")))
        caller = asyncio.create_task(store.append(refused, expected_version=99 if refused[0].reason == "pause 0"
                                                  else None))
        await asyncio.sleep(0)
        caller.cancel()
        await asyncio.gather(blocker, caller, return_exceptions=True)
        await store.append(running(f"Z{len(refused[0].reason)}"))  # one more round of the writer
        assert store.writer_running()
    assert [s.aggregate_version for s in await store.append([paused("X")])] == [3]
    await store.stop()
    await engine.dispose()


@pytest.mark.parametrize("qty, says", [("1E-20000", "more than 1000 digits after the point"),
                                       ("0E-999999", "more than 1000 digits after the point"),
                                       ("99999999999999999999.9999999999999999999", "out of range")])
async def test_a_decimal_numeric_38_18_cannot_take_refuses_its_own_append(any_db: Path | URL, qty: str,
                                                                           says: str) -> None:
    engine = async_engine(any_db)
    store = EventStore(engine)
    await store.start()
    good = [f"good{i}" for i in range(4)]
    results = await asyncio.gather(*(store.append([submitted(g)]) for g in good[:2]),
                                   store.append([submitted("bad", qty=qty)]),
                                   *(store.append([submitted(g)]) for g in good[2:]), return_exceptions=True)
    bad = results.pop(2)
    assert isinstance(bad, InvalidEventError) and "ExecutionSubmitted.qty: " in str(bad) and says in str(bad)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sorted(s.event.execution_id for s in await store.read()) == sorted(good)
    await store.stop()
    await engine.dispose()


async def test_an_append_from_another_threads_loop_is_refused_and_nothing_is_queued(tmp_path: Path) -> None:
    """Its caller could not await the outcome (the future is the writer's loop's): the append
    is refused before it is queued, so a retry cannot store the same event twice."""
    store = EventStore(async_engine(migrated_sqlite(tmp_path / "g.db")))
    await store.start()
    await store.append(running("a"))
    outcome: list[str] = []

    def other_thread() -> None:
        async def append() -> None:
            try:
                await store.append([paused("a")])
                outcome.append("appended")
            except RuntimeError as exc:
                outcome.append(str(exc))
        asyncio.run(append())

    await asyncio.to_thread(other_thread)
    await store.append([paused("a")])  # the writer still serves its own loop
    assert outcome == ["the event store takes appends on its own event loop only (not from another thread)"]
    assert [s.event.event_type for s in await store.read("a")] == ["ExecutionSubmitted", "ExecutionStarted",
                                                                   "ExecutionPaused"]
    await store.stop()
