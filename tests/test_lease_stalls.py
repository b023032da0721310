"""A daemon stopped (SIGSTOP) in the middle of a transaction that holds a lock does not stall
failover (``genesis.store.pg_session``): on a real PostgreSQL server, a child process takes
the lease row's lock in an open transaction and stops itself; a standby still claims the
lease once it has expired, and another daemon's commits still go through. The guards on the
waits are hang guards (the old code waited until the stopped process continued), not
measures."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from genesis.engine.lease_keeper import LeaseKeeper
from genesis.store import leases
from genesis.store.db import async_engine, sync_engine
from genesis.store.eventstore import EventStore
from tests.test_eventstore import running

HANG_GUARD_SECONDS = 60.0
LEASE_SECONDS = 3.0  # the stall bound: 1 s

# The lease keeper's own renewal, stopped between its UPDATE and its COMMIT (the server has
# answered the UPDATE: the session is idle in a transaction).
_RENEWAL_STOPPED = """
    from genesis.engine.lease_keeper import LeaseKeeper
    from genesis.store import leases
    keeper = LeaseKeeper(URL, ["acct"], lease_seconds=LEASE, owner="stalled")
    with keeper._engine.begin() as conn:
        epoch = leases.claim(conn, "acct", "stalled", LEASE)
    with keeper._engine.begin() as conn:
        leases.renew(conn, leases.HeldLease("acct", "stalled", epoch), LEASE)
        print("holding", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
"""

# The commit process's pipeline (its connection settings, its application name), stopped
# half-way through sending it: BEGIN, the lock of events and the fence reached the server, the
# rest and the Sync did not (the session is "active", waiting for its client).
_PIPELINE_STOPPED = """
    import psycopg
    from sqlalchemy import create_engine
    from genesis.store import leases
    from genesis.store.pg_commit_outcome import connect_params
    from genesis.store.pg_commit_process import LOCK_EVENTS
    from genesis.store.pg_fence import fence_statement
    with create_engine(URL).begin() as conn:
        epoch = leases.claim(conn, "acct", "stalled", LEASE)
    conn = psycopg.connect(DSN, **connect_params("-c synchronous_commit=on"),
                           application_name="genesis commit process", autocommit=True)
    sql, rows = fence_statement([("acct", "stalled", epoch)])
    pg = conn.pgconn
    pg.enter_pipeline_mode()
    pg.send_query_params(b"BEGIN", None)
    pg.send_query_params(LOCK_EVENTS.encode(), None)
    pg.send_query_params(sql.replace("%s", "$1").encode(), [rows[0][0].encode()])
    pg.send_flush_request()
    while pg.flush():
        pass
    while True:  # every result is in: the server waits for the rest of the pipeline
        pg.consume_input()
        if not pg.is_busy():
            res = pg.get_result()
            if res is not None and res.status == 2 and b"1" == res.get_value(0, 0):
                break
    print("holding", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
"""


@pytest.fixture
def stopped_holder(pg_db: URL, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lease row of ``acct`` in an open transaction, stopped."""
    url = pg_db.render_as_string(hide_password=False)
    script = (f"import os, signal\nfrom sqlalchemy.engine import make_url\nURL, LEASE = make_url({url!r}), "
              f"{LEASE_SECONDS!r}\nDSN = {url.replace('postgresql+psycopg', 'postgresql')!r}\n"
              + textwrap.dedent(request.param))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding"
        while _state(child.pid) != "T":
            time.sleep(0.01)
        yield child
    finally:
        child.kill()
        child.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("stopped_holder", [_RENEWAL_STOPPED, _PIPELINE_STOPPED], indirect=True,
                         ids=["idle-in-transaction", "half-sent-pipeline"])
async def test_a_standby_claims_the_lease_of_a_daemon_stopped_holding_its_row(
        pg_db: URL, stopped_holder: subprocess.Popen[str]) -> None:
    standby = LeaseKeeper(pg_db, ["acct"], lease_seconds=LEASE_SECONDS, owner="standby")
    try:
        claimed = await asyncio.wait_for(standby.wait_claimed(asyncio.Event()), HANG_GUARD_SECONDS)
        assert claimed and [(h.account, h.epoch) for h in standby.held] == [("acct", 2)]
        assert _state(stopped_holder.pid) == "T"  # still stopped: its lock was ended, not released
    finally:
        stopped_holder.kill()  # before the event loop closes: a claim still waiting ends with it
        stopped_holder.wait()
        standby.close()


@pytest.mark.parametrize("stopped_holder", [_PIPELINE_STOPPED], indirect=True, ids=["half-sent-pipeline"])
async def test_another_daemon_commits_past_a_daemon_stopped_holding_the_events_lock(
        pg_db: URL, stopped_holder: subprocess.Popen[str]) -> None:
    keeper = LeaseKeeper(pg_db, ["other"], lease_seconds=LEASE_SECONDS, owner="working")
    store = EventStore(async_engine(pg_db), fence=keeper.store_options()["fence"])
    renewing = None
    try:
        assert await keeper.wait_claimed(asyncio.Event())
        renewing = asyncio.create_task(keeper.keep())
        await store.start()
        appended = await asyncio.wait_for(store.append(running("x")), HANG_GUARD_SECONDS)
        assert [s.aggregate_version for s in appended] == [1, 2]
        assert not keeper.lost.is_set()
    finally:
        stopped_holder.kill()
        stopped_holder.wait()
        if renewing is not None:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
        await store.stop()
        keeper.close()


async def test_the_daemon_connections_carry_the_stall_bound_and_the_cli_connections_none(pg_db: URL) -> None:
    """The daemon's store and lease keeper: ended after the bound idle in a transaction;
    ``genesis sql``, ``genesis migrate`` and the CLI: never."""
    database = async_engine(pg_db)
    keeper = LeaseKeeper(pg_db, ["acct"], lease_seconds=LEASE_SECONDS)
    try:
        async with database.connect() as conn:
            assert (await conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout")).scalar() == "5s"
        with keeper._engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "1s"
        with sync_engine(pg_db).connect() as conn:
            assert leases.read_leases(conn) == []
            assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "0"
    finally:
        keeper.close()
        await database.dispose()
