"""PostgreSQL: several daemons on one command inbox. Each claims pending commands with
``FOR UPDATE SKIP LOCKED`` (``genesis.store.inbox.claim_commands``): concurrent consumers
take every command exactly once; a claim whose daemon no longer holds a live lease is taken
over; a control command for an execution another daemon works is left in the inbox for it."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from sqlalchemy import text
from sqlalchemy.engine import URL

from genesis.domain.orders import Side
from genesis.requests import SubmitRequest
from genesis.store import leases
from genesis.store.db import async_engine, sync_engine
from genesis.store.inbox import claim_commands, enqueue_submits, worked_elsewhere

COMMANDS = 300


def _enqueue(url: URL, n: int) -> list[str]:
    engine = sync_engine(url)
    try:
        return [e for e, _ in enqueue_submits(engine, [
            SubmitRequest("BTC/USDT", Side.BUY, D("0.1"), "twap", 600, None, f"claims-{i}", None) for i in range(n)])]
    finally:
        engine.dispose()


def _hold_lease(url: URL, account: str, owner: str, seconds: float = 600) -> None:
    engine = sync_engine(url)
    with engine.begin() as conn:
        assert leases.claim(conn, account, owner, seconds) is not None
    engine.dispose()


async def test_concurrent_consumers_take_every_command_exactly_once(pg_db: URL) -> None:
    _enqueue(pg_db, COMMANDS)
    owners = [f"host-{n}:{n}:0{n}" for n in range(4)]
    for n, owner in enumerate(owners):
        _hold_lease(pg_db, f"account-{n}", owner)
    database = async_engine(pg_db)
    taken: dict[str, list[int]] = {o: [] for o in owners}

    async def consume(owner: str) -> None:
        while True:
            async with database.begin() as conn:  # claim a few, settle them, as a daemon would
                claimed = await claim_commands(conn, owner, ("sim",), limit=7)
            if not claimed:
                return
            taken[owner].extend(c.command_id for c in claimed)
            async with database.begin() as conn:
                await conn.execute(text("UPDATE commands SET processed_at = now(), outcome = 'accepted' "
                                        "WHERE command_id = ANY(:ids)"), {"ids": [c.command_id for c in claimed]})

    try:
        await asyncio.gather(*(consume(o) for o in owners))
        every = [i for ids in taken.values() for i in ids]
        assert sorted(every) == list(range(1, COMMANDS + 1))  # each command taken, and only once
        assert sum(1 for ids in taken.values() if ids) >= 2  # the consumers did share the inbox
        async with database.connect() as conn:
            claims = dict((await conn.execute(text("SELECT claimed_by, count(*) FROM commands GROUP BY 1"))).all())
        assert claims == {o: len(ids) for o, ids in taken.items() if ids}
    finally:
        await database.dispose()


async def test_a_claim_is_kept_while_its_daemon_holds_a_lease_and_taken_over_after(pg_db: URL) -> None:
    _enqueue(pg_db, 3)
    _hold_lease(pg_db, "account-a", "host-a:1:aa", seconds=600)
    _hold_lease(pg_db, "account-b", "host-b:2:bb", seconds=600)
    database = async_engine(pg_db)
    try:
        async with database.begin() as conn:
            assert [c.command_id for c in await claim_commands(conn, "host-a:1:aa", ("sim",))] == [1, 2, 3]
        async with database.begin() as conn:
            assert await claim_commands(conn, "host-b:2:bb", ("sim",)) == []  # A is alive: its claims stand
            await conn.execute(text("UPDATE leases SET expires_at = now() - interval '1 second' "
                                    "WHERE owner = 'host-a:1:aa'"))  # A died: its lease ran out
        async with database.begin() as conn:
            assert [c.command_id for c in await claim_commands(conn, "host-b:2:bb", ("sim",))] == [1, 2, 3]
    finally:
        await database.dispose()


async def test_a_command_for_an_execution_another_daemon_works_is_left_for_it(pg_db: URL) -> None:
    [execution_id] = _enqueue(pg_db, 1)
    _hold_lease(pg_db, "account-a", "host-a:1:aa")
    database = async_engine(pg_db)
    try:
        async with database.connect() as conn:
            # its submission is pending and daemon A holds a lease: B must leave its commands
            assert await worked_elsewhere(conn, execution_id, "host-b:2:bb") is True
            # no other daemon alive: nobody else could work it, B settles it itself
            assert await worked_elsewhere(conn, execution_id, "host-a:1:aa") is False
            await conn.execute(text("UPDATE commands SET processed_at = now(), outcome = 'rejected'"))
            assert await worked_elsewhere(conn, execution_id, "host-b:2:bb") is False  # never to start
    finally:
        await database.dispose()


async def test_the_poller_leaves_a_command_for_an_execution_another_daemon_works(pg_db: URL) -> None:
    import structlog

    from genesis.config import parse_config
    from genesis.engine.command_poller import CommandPoller
    from tests.harness import harness

    [execution_id] = _enqueue(pg_db, 1)  # its submission: taken by daemon A, still being worked on
    _hold_lease(pg_db, "account-a", "host-a:1:aa")
    _hold_lease(pg_db, "account-b", "host-b:2:bb")
    engine = sync_engine(pg_db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE commands SET claimed_by = 'host-a:1:aa'"))
        conn.execute(text("INSERT INTO commands (kind, execution_id, payload, created_at) "
                          "VALUES ('pause', :e, '{}', now())"), {"e": execution_id})
    config = parse_config({"engine": {"command_poll_seconds": 0.01}})
    try:
        async with harness(pg_db, config) as h:
            poller = CommandPoller(h.engine, h.store, h.supervisor, lambda: config, owner="host-b:2:bb")
            stop = asyncio.Event()
            with structlog.testing.capture_logs() as logs:
                task = asyncio.create_task(poller.run(stop))
                for _ in range(3000):  # a guard, not a timing: until daemon B has given the pause back
                    if any(r["event"] == "command_left_for_owner" for r in logs) or task.done():
                        break
                    await asyncio.sleep(0.01)
                stop.set()
                await task
            assert any(r["event"] == "command_left_for_owner" for r in logs)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT kind, claimed_by, processed_at, outcome FROM commands "
                                     "ORDER BY command_id")).all()
        assert [tuple(r) for r in rows] == [("submit", "host-a:1:aa", None, None),  # A's, untouched
                                            ("pause", None, None, None)]  # left for A: not ignored
    finally:
        engine.dispose()
