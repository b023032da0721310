"""An execution belongs to a venue account (``ExecutionSubmitted.account``, ``executions.account``):
daemons holding different accounts on one database each take only the submissions and recover
only the executions of their own accounts; a submission for an account nobody holds waits in
the inbox; on SQLite a single desk works as before."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.domain.codec import decode, encode
from genesis.domain.orders import Side
from genesis.engine.command_poller import CommandPoller
from genesis.requests import RequestError, SubmitRequest
from genesis.store import leases
from genesis.store import tables as t
from genesis.store.db import sync_engine
from genesis.store.inbox import enqueue_submit, enqueue_submits
from genesis.store.queries import execution_status
from tests.harness import SIM_START, harness

CONFIG = parse_config({"engine": {"command_poll_seconds": 0.01}})


def _request(n: int, account: str | None) -> SubmitRequest:
    return SubmitRequest("BTC/USDT", Side.BUY, D("0.1"), "twap", 600, None, None, f"acct-{account}-{n}",
                         account=account)


def _rows(url: Path | URL, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


async def _poll_until(pollers: list[CommandPoller], done) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
    for _ in range(3000):  # a guard, not a timing: until every expected submission is settled
        if done() or any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*tasks)


def test_an_event_stored_before_accounts_decodes_with_no_account() -> None:
    event = ev.ExecutionSubmitted("e" * 32, SIM_START, "r1", "BTC/USDT", "buy", D("1"), "twap", 600,
                                  account="desk-a")
    stored = json.loads(encode(event))
    assert stored["account"] == "desk-a"
    del stored["account"]  # as written before the field existed
    old = decode("ExecutionSubmitted", stored)
    assert isinstance(old, ev.ExecutionSubmitted) and old.account == ev.ACCOUNT_NOT_RECORDED == ""


async def test_two_daemons_holding_different_accounts_each_work_only_their_own(pg_db: URL) -> None:
    engine = sync_engine(pg_db)
    try:  # before any lease: nobody's accounts are known, every account is accepted
        ids = {acct: [e for e, _ in enqueue_submits(engine, [_request(n, acct) for n in range(3)])]
               for acct in ("desk-a", "desk-b", "desk-c")}
        with engine.begin() as conn:
            assert leases.claim(conn, "desk-a", "host-a:1:aa", 600) is not None
            assert leases.claim(conn, "desk-b", "host-b:2:bb", 600) is not None
    finally:
        engine.dispose()
    async with harness(pg_db, CONFIG) as a, harness(pg_db, CONFIG) as b:
        a.supervisor.accounts, b.supervisor.accounts = ("desk-a",), ("desk-b",)
        pollers = [CommandPoller(a.engine, a.store, a.supervisor, lambda: CONFIG, owner="host-a:1:aa",
                                 accounts=("desk-a",)),
                   CommandPoller(b.engine, b.store, b.supervisor, lambda: CONFIG, owner="host-b:2:bb",
                                 accounts=("desk-b",))]
        await _poll_until(pollers, lambda: len(a.supervisor.active_ids) + len(b.supervisor.active_ids) == 6)
        assert sorted(a.supervisor.active_ids) == sorted(ids["desk-a"])
        assert sorted(b.supervisor.active_ids) == sorted(ids["desk-b"])
        for supervisor in (a.supervisor, b.supervisor):
            await supervisor.shutdown(5)
    stored = dict(_rows(pg_db, "SELECT execution_id, account FROM executions"))
    assert stored == {e: acct for acct in ("desk-a", "desk-b") for e in ids[acct]}
    commands = {r[0]: r[1:] for r in _rows(pg_db, "SELECT execution_id, claimed_by, outcome, processed_at IS NULL "
                                                  "FROM commands")}
    assert {commands[e] for e in ids["desk-a"]} == {("host-a:1:aa", "accepted", False)}
    assert {commands[e] for e in ids["desk-b"]} == {("host-b:2:bb", "accepted", False)}
    assert {commands[e] for e in ids["desk-c"]} == {(None, None, True)}  # nobody holds desk-c: it waits
    # a restarted daemon holding desk-a recovers desk-a's live executions only
    async with harness(pg_db, CONFIG) as again:
        again.supervisor.accounts = ("desk-a",)
        assert sorted(await again.supervisor.recover()) == sorted(ids["desk-a"])
        await again.supervisor.shutdown(5)


def test_a_submission_for_an_account_no_daemon_holds_is_refused(db_path: Path) -> None:
    engine = sync_engine(db_path)
    try:
        with engine.begin() as conn:
            assert leases.claim(conn, "sim", "host-a:1:aa", 600) is not None
        with pytest.raises(RequestError) as refused:
            enqueue_submit(engine, _request(1, "desk-z"))
        assert refused.value.field == "account" and "desk-z" in str(refused.value) and "sim" in str(refused.value)
        with pytest.raises(RequestError) as refused_in_batch:
            enqueue_submits(engine, [_request(2, "sim"), _request(3, "desk-z")])
        assert refused_in_batch.value.field == "account"
        with engine.connect() as conn:
            assert conn.scalar(select(t.commands.c.command_id)) is None  # nothing stored
        execution_id, created = enqueue_submit(engine, _request(4, "sim"))
        assert created and execution_status(engine, execution_id)[0]["account"] == "sim"  # queued, for sim
    finally:
        engine.dispose()


async def test_a_single_desk_on_sqlite_works_as_before(db_path: Path) -> None:
    engine = sync_engine(db_path)
    try:
        [(new, _)] = enqueue_submits(engine, [_request(1, None)])  # no account named: the daemon's own
    finally:
        engine.dispose()
    async with harness(db_path, CONFIG) as h:
        legacy = ev.ExecutionSubmitted("f" * 32, SIM_START, "legacy", "BTC/USDT", "buy", D("0.1"), "twap", 600)
        await h.store.append([legacy], expected_version=0)  # stored before accounts were recorded
        h.supervisor.accounts = ("sim",)
        poller = CommandPoller(h.engine, h.store, h.supervisor, lambda: CONFIG, accounts=("sim",))
        await _poll_until([poller], lambda: new in h.supervisor.active_ids)
        assert new in h.supervisor.active_ids
        await h.supervisor.shutdown(5)
    assert dict(_rows(db_path, "SELECT execution_id, account FROM executions")) == {new: "sim", "f" * 32: ""}
    async with harness(db_path, CONFIG) as again:  # a restart recovers both: its own and the unrecorded
        again.supervisor.accounts = ("sim",)
        assert sorted(await again.supervisor.recover()) == sorted([new, "f" * 32])
        with contextlib.suppress(Exception):
            await again.supervisor.shutdown(5)


def test_genesis_submit_takes_an_account_and_status_shows_it(db_path: Path) -> None:
    from click.testing import CliRunner

    from genesis.cli import main

    engine = sync_engine(db_path)
    try:
        with engine.begin() as conn:
            assert leases.claim(conn, "desk-a", "host-a:1:aa", 600) is not None
    finally:
        engine.dispose()
    args = ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", "0.5", "--duration", "10m", "--db", str(db_path)]
    refused = CliRunner().invoke(main, [*args, "--account", "desk-z"])
    assert refused.exit_code == 2 and "--account: no daemon holds account 'desk-z'" in refused.output
    taken = CliRunner().invoke(main, [*args, "--account", "desk-a"], catch_exceptions=False)
    assert taken.exit_code == 0
    listing = CliRunner().invoke(main, ["status", "--json", "--db", str(db_path)], catch_exceptions=False)
    assert [(r["execution_id"], r["account"]) for r in json.loads(listing.output)] == \
        [(taken.output.strip(), "desk-a")]
