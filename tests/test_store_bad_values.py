"""One append with a value the store cannot take is refused alone, on SQLite and PostgreSQL.

A lone surrogate has no UTF-8 form (the drivers raise while binding it, in the commit
process); a NaN or a Decimal beyond ``NUMERIC(38,18)`` cannot be stored, and an absurd one
makes the projection's arithmetic raise ``ArithmeticError``. Each is appended among good
appends from concurrent appenders (some to aggregates with commits in flight): that append is
refused with an ``InvalidEventError`` naming the field, nothing of it is written, every good
append commits, the store keeps serving, and the log, the cache and the projections agree
with a replay.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore, InvalidEventError, StorageError
from genesis.store.projector import rebuild
from tests.test_eventstore import T0, add_command, command_row, paused, resumed, running, submitted
from tests.test_projections import snapshot

D = Decimal
GOOD = [f"g{i}" for i in range(6)]


def _fill(eid: str, price: Decimal) -> list[ev.Event]:
    return [ev.OrderIntended(eid, T0, 0, 1, f"cid-{eid}", "limit", "GTC", D("0.5"), None, D("65000")),
            ev.FillRecorded(eid, T0, f"cid-{eid}", 0, "t1", D("0.5"), price, D("0"), "USDT", "taker", T0)]


def _completed(eid: str, reason: str) -> list[ev.Event]:
    return [ev.TwapCompleted(eid, T0, D(0), D(1), None, D("65000.12"), None, D(0), reason)]


# name: (does "bad" run first, its bad append, the field the refusal names, what it says)
CASES: dict[str, tuple[bool, Callable[[str], list[ev.Event]], str, str]] = {
    "symbol_surrogate": (False, lambda eid: [replace(submitted(eid), symbol="BTC/\ud800")],
                         "ExecutionSubmitted.symbol", "lone surrogate"),
    "request_id_surrogate": (False, lambda eid: [replace(submitted(eid), request_id="req-\udfff")],
                             "ExecutionSubmitted.request_id", "lone surrogate"),
    "nan_qty": (False, lambda eid: [submitted(eid, qty="NaN")], "ExecutionSubmitted.qty", "not a finite number"),
    "infinite_qty": (False, lambda eid: [submitted(eid, qty="-Infinity")], "ExecutionSubmitted.qty",
                     "not a finite number"),
    "absurd_qty": (False, lambda eid: [submitted(eid, qty="1E+999999")], "ExecutionSubmitted.qty", "out of range"),
    "absurd_fill_price": (True, lambda eid: _fill(eid, D("1E+999999")), "FillRecorded.price", "out of range"),
    "huge_fill_price": (True, lambda eid: _fill(eid, D("1E+30")), "FillRecorded.price", "out of range"),
    "nan_fill_price": (True, lambda eid: _fill(eid, D("NaN")), "FillRecorded.price", "not a finite number"),
    "completion_reason_surrogate": (True, lambda eid: _completed(eid, "window_ended \udc80"),
                                    "TwapCompleted.reason", "lone surrogate"),
    "hold_reason_surrogate": (True, lambda eid: [ev.SlicingHeld(eid, T0, "market_data_unavailable\ud83d", "paper",
                                                                "BTC/USDT")],
                              "SlicingHeld.reason", "lone surrogate"),
}


@pytest.fixture
async def engine(any_db: Path | URL) -> AsyncIterator[AsyncEngine]:
    eng = async_engine(any_db)
    yield eng
    await eng.dispose()


async def _assert_log_cache_and_projections_are_a_replay(store: EventStore, engine: AsyncEngine) -> None:
    stored = await store.read()
    assert [s.sequence_number for s in stored] == list(range(1, len(stored) + 1))  # no gap
    for eid in {s.event.execution_id for s in stored}:
        mine = [s for s in stored if s.event.execution_id == eid]
        assert [s.aggregate_version for s in mine] == list(range(1, len(mine) + 1))
        cached, replayed = await store.load(eid), Execution.replay(eid, [s.event for s in mine])
        assert (cached.version, cached.state, cached.paused_at, cached.filled_qty) == \
               (replayed.version, replayed.state, replayed.paused_at, replayed.filled_qty)
    live = await snapshot(engine)
    async with engine.begin() as conn:
        await rebuild(conn)
    assert await snapshot(engine) == live


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_bad_value_refuses_its_append_alone(engine: AsyncEngine, case: str) -> None:
    bad_is_running, bad_events, field, what = CASES[case]
    store = EventStore(engine, chunk_size=4)  # the bad append's chunk follows chunks of the same aggregates
    await store.start()
    try:
        await asyncio.gather(*(store.append(running(eid), expected_version=0) for eid in GOOD))
        if bad_is_running:
            await store.append(running("bad"), expected_version=0)
        before = len(await store.read())
        # queued at once, in this order: each aggregate's pauses and resumes alternate, and the
        # appends before the bad one's are still being committed when its chunk is planned
        appends = [[paused(eid, n) if k == 0 else resumed(eid, n)] for n in range(4) for k in (0, 1) for eid in GOOD]
        appends = appends[:15] + [bad_events("bad")] + [running(f"n{i}") for i in range(6)] + appends[15:]
        results = await asyncio.wait_for(asyncio.gather(*(store.append(a) for a in appends),
                                                        return_exceptions=True), 60)

        refusal = results[15]
        assert isinstance(refusal, InvalidEventError), results
        assert f"{field}: " in str(refusal) and what in str(refusal), str(refusal)
        good = results[:15] + results[16:]
        assert not [r for r in good if isinstance(r, BaseException)], good
        assert store.writer_running()
        later = await store.append(running("later"), expected_version=0)  # the store goes on serving
        stored = await store.read()
        assert later[-1].sequence_number == len(stored) == before + 8 * len(GOOD) + 2 * 6 + 2
        assert [s.event for s in stored if s.event.execution_id == "bad"] == (running("bad") if bad_is_running else [])
        await _assert_log_cache_and_projections_are_a_replay(store, engine)
    finally:
        await store.stop()


async def test_a_command_detail_that_is_not_text_is_refused_before_the_writer(engine: AsyncEngine) -> None:
    store = EventStore(engine)
    await store.start()
    try:
        await store.append(running("a"), expected_version=0)
        command_id = await add_command(engine, "a")
        with pytest.raises(InvalidEventError, match=r"commands\.detail: lone surrogate"):
            await store.mark_commands([(command_id, "rejected", "no such execution \ud800")])
        with pytest.raises(InvalidEventError, match=r"commands\.outcome: lone surrogate"):
            await store.append([paused("a")], done_commands=[(command_id, "accepted\udc00", None)])
        assert (await command_row(engine, command_id))["processed_at"] is None
        await store.append([paused("a")], done_commands=[(command_id, "accepted", None)])
        assert (await command_row(engine, command_id))["outcome"] == "accepted"
        assert store.writer_running()
        await _assert_log_cache_and_projections_are_a_replay(store, engine)
    finally:
        await store.stop()


async def test_a_value_the_driver_cannot_bind_refuses_its_transaction_not_the_commit_process(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: a string that is not UTF-8 reaching the commit process (the writer's
    check bypassed) refuses its transaction; the commit process keeps serving."""
    monkeypatch.setattr("genesis.store.value_replan.check_event_texts", lambda *args: None)
    store = EventStore(engine)
    await store.start()
    try:
        with pytest.raises(StorageError, match="surrogate"):
            await store.append([replace(submitted("bad"), symbol="BTC/\ud800")])
        await store.append(running("later"), expected_version=0)
        assert store.writer_running()
        assert [s.event for s in await store.read()] == running("later")
        await _assert_log_cache_and_projections_are_a_replay(store, engine)
    finally:
        await store.stop()


@pytest.mark.parametrize("account", ["acct\udcff", "acct\x00", "acct\n"])
def test_a_submission_account_that_is_not_storable_text_is_refused_naming_it(account: str) -> None:
    """The account is the one free text of a submission (the CLI's argv can hold a lone
    surrogate: undecodable bytes); the other fields were refused already, naming them."""
    from genesis.config import RuntimeConfig
    from genesis.requests import RequestError, validate_submit
    from genesis.venue.instruments import SIM_INSTRUMENTS

    def submit(**fields: str) -> None:
        validate_submit(**{"symbol": "BTC/USDT", "side": "buy", "qty": "1", "algo": "twap", "duration": "10m",
                           "slices": None, "limit_price": None, "request_id": None, **fields},  # type: ignore[arg-type]
                        instruments=SIM_INSTRUMENTS, config=RuntimeConfig())

    with pytest.raises(RequestError, match=r"^account: .* is not an account name \(1-200 printable characters\)"):
        submit(account=account)
    for field, value, says in [("qty", "1E+999999", "too large"), ("qty", "NaN", "not a finite number"),
                               ("limit_price", "-Infinity", "not a finite number"), ("symbol", "BTC/\ud800", "unknown"),
                               ("request_id", "r\ud800", "use 1-128 characters")]:
        with pytest.raises(RequestError, match=says):
            submit(**{field: value})
    submit(account="binance-main")


def test_the_writer_finds_what_is_not_text_in_the_event_json_the_codec_writes() -> None:
    """``check_event_texts`` relies on the codec writing ASCII JSON (a lone surrogate or NUL
    is a ``\\u`` escape there); a character beyond the BMP (a surrogate pair) is text."""
    from genesis.domain.codec import encode
    from genesis.store.value_checks import UnstorableValueError, check_event_texts

    def check(reason: str) -> None:
        text = encode(ev.ExecutionPaused("a", T0, reason))
        assert text.isascii()
        check_event_texts([("ExecutionPaused", text)], 0, 1)

    check("rocket \U0001f680 é")
    for bad, says in [("x\ud800", "lone surrogate '\\ud800'"), ("\udfffx", "lone surrogate '\\udfff'"),
                      ("a\x00b", "NUL character")]:
        with pytest.raises(UnstorableValueError, match=f"^ExecutionPaused.reason: {re.escape(says)}"):
            check(bad)
