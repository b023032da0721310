"""Leases per venue account (``genesis.store.leases``): claimed atomically on the database's
clock, renewed and released by their owner, the epoch bumped by every new owner; and the
fencing check in the commit transaction that refuses an append once the lease is gone."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from genesis.domain import events as ev
from genesis.store import committers, leases
from genesis.store.db import async_engine, sync_engine
from genesis.store.eventstore import EventStore, LeaseLostError
from genesis.store.leases import HeldLease, LeaseRefused, account_name

T0 = datetime(2026, 12, 5, 9, tzinfo=timezone.utc)


def _expire(conn, account: str) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text("UPDATE leases SET expires_at = claimed_at - interval '1 hour' WHERE account = :a"
                      if conn.dialect.name == "postgresql" else
                      "UPDATE leases SET expires_at = '2000-01-01 00:00:00.000' WHERE account = :a"), {"a": account})


def test_a_claim_is_refused_while_another_owner_holds_the_lease_and_bumps_the_epoch_after(any_db: Path | URL) -> None:
    engine = sync_engine(any_db)
    with engine.begin() as conn:
        assert leases.claim(conn, "sim", "host-a:1:aa", 30) == 1
        assert leases.claim(conn, "sim", "host-a:1:aa", 30) == 1  # the owner keeps its epoch
        assert leases.claim(conn, "sim", "host-b:2:bb", 30) is None  # live: refused
        assert leases.claim(conn, "ccxt:binance:0123456789ab", "host-b:2:bb", 30) == 1  # another account
        _expire(conn, "sim")
        assert leases.claim(conn, "sim", "host-b:2:bb", 30) == 2  # expired: a new owner, a new epoch
        assert not leases.renew(conn, HeldLease("sim", "host-a:1:aa", 1), 30)  # A lost it
        assert leases.renew(conn, HeldLease("sim", "host-b:2:bb", 2), 30)
        leases.release(conn, HeldLease("sim", "host-b:2:bb", 2))
        assert leases.claim(conn, "sim", "host-a:1:aa", 30) == 3  # released: claimed at once
        rows = {r.account: (r.owner, r.epoch, r.live) for r in leases.read_leases(conn)}
    assert rows == {"sim": ("host-a:1:aa", 3, True), "ccxt:binance:0123456789ab": ("host-b:2:bb", 1, True)}
    engine.dispose()


def test_the_fencing_check_refuses_a_lost_lease(any_db: Path | URL) -> None:
    engine = sync_engine(any_db)
    with engine.begin() as conn:
        epoch = leases.claim(conn, "sim", "a", 30)
        leases.check_held(conn, [HeldLease("sim", "a", epoch)])
        _expire(conn, "sim")
        with pytest.raises(LeaseRefused, match="account sim"):
            leases.check_held(conn, [HeldLease("sim", "a", epoch)])  # expired, not yet claimed
        leases.claim(conn, "sim", "b", 30)
        with pytest.raises(LeaseRefused):
            leases.check_held(conn, [HeldLease("sim", "a", epoch)])  # claimed by b
    engine.dispose()


def test_the_sql_fence_refuses_unless_every_lease_is_held_at_its_epoch(pg_db: URL) -> None:
    engine = sync_engine(pg_db)
    with engine.begin() as conn:
        a, b = leases.claim(conn, "sim", "a", 30), leases.claim(conn, "ccxt:x:1", "a", 30)

    def fence_passes(held: list[HeldLease]) -> bool:
        sql, rows = leases.SqlFence(lambda: held).statement()
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(sql, rows)
        except DBAPIError as exc:
            assert committers.refusal(type(exc.orig).__name__, str(exc.orig), 1).error_class == committers.LEASE_LOST
            return False
        return True

    assert fence_passes([HeldLease("sim", "a", a), HeldLease("ccxt:x:1", "a", b)])
    assert not fence_passes([])  # nothing claimed yet (or released)
    assert not fence_passes([HeldLease("sim", "a", a + 1)])  # another epoch
    assert not fence_passes([HeldLease("sim", "b", a)])  # another owner
    with engine.begin() as conn:
        _expire(conn, "ccxt:x:1")
    assert not fence_passes([HeldLease("sim", "a", a), HeldLease("ccxt:x:1", "a", b)])  # one expired
    assert fence_passes([HeldLease("sim", "a", a)])
    with engine.connect() as guarded, engine.connect() as thief:  # the fence share-locks the row to the commit
        guarded.exec_driver_sql(*leases.SqlFence(lambda: [HeldLease("sim", "a", a)]).statement())
        thief.exec_driver_sql("SET lock_timeout = '100ms'")
        with pytest.raises(DBAPIError, match="lock timeout"):
            leases.claim(thief, "sim", "b", 30, takeover=True)
        guarded.rollback()
        thief.rollback()
        assert leases.claim(thief, "sim", "b", 30, takeover=True) == a + 1
    engine.dispose()


def test_account_names_never_hold_the_api_key() -> None:
    assert account_name("sim") == "sim"
    named = account_name("ccxt:binance", "my-secret-api-key")
    assert named.startswith("ccxt:binance:") and len(named) == len("ccxt:binance:") + 12
    assert "my-secret" not in named
    assert account_name("ccxt:binance", "another-key") != named


def _intent(execution_id: str) -> list[ev.Event]:
    return [ev.ExecutionSubmitted(execution_id, T0, f"req-{execution_id}", "BTC/USDT", "buy", D("1"), "single", 0,
                                  execution_style="single"),
            ev.ExecutionStarted(execution_id, T0, D("100"), T0, (ev.PlannedSlice(0, T0, D("1")),)),
            ev.OrderIntended(execution_id, T0, 0, 0, f"g-{execution_id}-0-0", "market", "gtc", D("1"), None,
                             D("100"), execution_style="single", slice_count=1)]


@pytest.mark.parametrize("commit_in, fence_as", [("thread", "python"), ("thread", "sql"), ("process", "sql")])
async def test_an_intent_append_after_the_lease_was_stolen_is_refused_and_nothing_is_written(
        pg_db: URL, commit_in: str, fence_as: str) -> None:
    admin = sync_engine(pg_db)
    with admin.begin() as conn:
        held = [HeldLease("sim", "daemon-a", leases.claim(conn, "sim", "daemon-a", 30))]
    engine = async_engine(pg_db)
    refusals: list[str] = []
    fence = ({"precondition": leases.fence(lambda: held)} if fence_as == "python" else
             {"fence": leases.SqlFence(lambda: held, refusals.append)})
    async with EventStore(engine, commit_in=commit_in, **fence) as store:  # type: ignore[arg-type]
        await store.append(_intent("e1"), expected_version=0)  # held: committed
        with admin.begin() as conn:  # the lease is stolen: expired, claimed by daemon B
            _expire(conn, "sim")
            assert leases.claim(conn, "sim", "daemon-b", 30) == 2
        with pytest.raises(LeaseLostError, match="no longer held by daemon-a"):
            await store.append(_intent("e2"), expected_version=0)
        with pytest.raises(LeaseLostError):  # and it stays refused
            await store.append(_intent("e3"), expected_version=0)
    await engine.dispose()
    if fence_as == "sql":  # the daemon's lease keeper learns of it
        assert refusals and "no longer held by daemon-a" in refusals[0]
    with admin.connect() as conn:
        intents = conn.execute(text("SELECT aggregate_id FROM events WHERE event_type = 'OrderIntended'")).scalars()
        assert list(intents) == ["e1"]
    admin.dispose()


def _one_held_one_expired(any_db: Path | URL) -> str:
    """Two accounts' leases: ``sim`` held by host-a, the binance account's expired (host-b);
    the database as ``--db`` takes it."""
    engine = sync_engine(any_db)
    with engine.begin() as conn:
        leases.claim(conn, "sim", "host-a:4242:0f0f0f0f", 30)
        leases.claim(conn, "ccxt:binance:0123456789ab", "host-b:77:abababab", 30)
        _expire(conn, "ccxt:binance:0123456789ab")
    engine.dispose()
    return any_db.render_as_string(hide_password=False) if isinstance(any_db, URL) else str(any_db)


def test_status_shows_which_daemon_owns_which_account(any_db: Path | URL) -> None:
    from click.testing import CliRunner

    from genesis.cli import main

    db = _one_held_one_expired(any_db)
    out = CliRunner().invoke(main, ["status", "--db", db])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.stdout.splitlines() if line.startswith("account ")]
    assert [line.split(", held")[0].split(", free")[0] for line in lines] == [
        "account ccxt:binance:0123456789ab: host-b:77:abababab, epoch 1",
        "account sim: host-a:4242:0f0f0f0f, epoch 1"]
    assert "free since" in lines[0] and "held until" in lines[1]


def test_a_standby_reads_how_long_until_the_lease_it_waits_for_expires(any_db: Path | URL) -> None:
    engine = sync_engine(any_db)
    with engine.begin() as conn:
        leases.claim(conn, "sim", "host-a:1:aa", 30)
        waiting = leases.seconds_until_claimable(conn, ["sim"], "host-b:2:bb")
        assert 0 < waiting <= 30  # held by another owner: until its expiry, on the database's clock
        assert leases.seconds_until_claimable(conn, ["sim"], "host-a:1:aa") == 0  # its own lease
        assert leases.seconds_until_claimable(conn, ["ccxt:binance:0123456789ab"], "host-b:2:bb") == 0  # no row
        _expire(conn, "sim")
        assert leases.seconds_until_claimable(conn, ["sim"], "host-b:2:bb") == 0  # expired: claim now
    engine.dispose()


async def test_a_release_wakes_the_standbys_listening_for_it(pg_db: URL) -> None:
    import asyncio

    from genesis.engine.command_listener import listen_for_lease_releases

    wakes = asyncio.Queue[int]()
    listener = asyncio.create_task(listen_for_lease_releases(pg_db, lambda: wakes.put_nowait(1)))
    engine = sync_engine(pg_db)
    try:
        await asyncio.wait_for(wakes.get(), 30)  # the first wake: once listening
        with engine.begin() as conn:
            held = HeldLease("sim", "host-a:1:aa", leases.claim(conn, "sim", "host-a:1:aa", 600))
        assert wakes.empty()  # a claim is not a release
        await asyncio.to_thread(lambda: _release(engine, held))
        await asyncio.wait_for(wakes.get(), 30)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        engine.dispose()


def _release(engine, held: HeldLease) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        leases.release(conn, held)


def test_genesis_sql_answers_which_daemon_owns_which_account(any_db: Path | URL) -> None:
    from click.testing import CliRunner

    from genesis.cli import main

    db = _one_held_one_expired(any_db)
    out = CliRunner().invoke(main, ["sql", "--db", db, "--csv",
                                    "SELECT account, owner, epoch, held FROM account_owners ORDER BY account"])
    assert out.exit_code == 0, out.output
    rows = [line.split(",") for line in out.stdout.strip().splitlines()]
    assert rows[0] == ["account", "owner", "epoch", "held"]
    assert [(a, o, e, h.lower() in ("1", "true")) for a, o, e, h in rows[1:]] == [
        ("ccxt:binance:0123456789ab", "host-b:77:abababab", "1", False),
        ("sim", "host-a:4242:0f0f0f0f", "1", True)]
