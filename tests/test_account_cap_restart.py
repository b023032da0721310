"""The account-wide participation cap across a restart and a config reload: a restarted daemon
starts its ledger from the fills the store recorded in the current minute (``RecordedFills``),
and SIGHUP's new cap applies to running executions. Simulated venue on a virtual clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from genesis.clock import VirtualClock
from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.engine.account_cap import AccountCaps, SymbolLedger, minute_of
from genesis.engine.supervisor_config import apply_config
from genesis.store.db import async_engine
from genesis.store.recorded_fills import RecordedFillsReader
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.analytics_history import BTC as BTC_USDT, build, exec_a, s
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue
from tests.migrated import migrated_sqlite

D = Decimal
BTC = SIM_INSTRUMENTS["BTC/USDT"]
START = T0 + timedelta(days=HISTORY_DAYS, hours=1)
VOLUME = D("10")  # BTC traded a minute, evenly


def _config(cap: str | None = "0.10"):  # type: ignore[no-untyped-def]
    """Each parent's own cap 50% of its interval's volume: the account's cap (10%) binds."""
    twap = {"volume_lookback_days": HISTORY_DAYS, "min_duration_seconds": 20, "default_duration_seconds": 300,
            "jitter_fraction": 0, "size_variation": 0, "participation_cap": "0.5"}
    return parse_config({"twap": twap, "risk": {} if cap is None else {"account_participation_cap": cap}})


def _market():  # type: ignore[no-untyped-def]
    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: VOLUME)
    return lambda c: venue(c, btc)


async def traded(symbol, start, end):  # type: ignore[no-untyped-def]
    """The tape: ``VOLUME`` a minute, evenly (as the simulator trades)."""
    return VOLUME * D(str((end - max(start, minute_of(end))).total_seconds())) / 60


async def pace() -> None:
    return None


async def _fills(h, ids: list[str]) -> list[ev.FillRecorded]:  # type: ignore[no-untyped-def]
    return [x.event for eid in ids for x in await h.store.read(eid) if isinstance(x.event, ev.FillRecorded)]


async def test_a_restart_mid_minute_counts_the_minutes_fills_recorded_before_it(db_path):
    minute = minute_of(START)
    async with harness(db_path, _config(), start=START, venue=_market()) as h:  # before the restart
        first = [await h.supervisor.submit(h.request(qty="1", duration="40s", slices=1, request_id="before"))]
        await h.supervisor.wait_all()
        before = [f for f in await _fills(h, first) if minute_of(f.filled_at) == minute]
    assert sum(f.qty for f in before) > D("0.5")  # most of the account's room: 10% of 40 s of the tape
    async with harness(db_path, _config(), start=START + timedelta(seconds=40), venue=_market()) as h:
        ids = [await h.supervisor.submit(h.request(qty="1", duration="20s", slices=1, request_id="after"))]
        await h.supervisor.wait_all()
        after = [f for f in await _fills(h, ids) if minute_of(f.filled_at) == minute]
    assert after  # the restarted daemon traded in that minute, within what was left of the room
    assert sum(f.qty for f in before + after) <= D("0.10") * VOLUME + BTC.step_size


async def test_the_reader_returns_an_accounts_fills_on_a_symbol_from_a_time_on(tmp_path):
    path = migrated_sqlite(tmp_path / "fills.db")
    await build(path, executions=(exec_a,))
    engine = async_engine(path)
    try:
        reader = RecordedFillsReader(engine)
        got = await reader.since("", BTC_USDT, s(60))
        assert got == [(s(64), D("0.25"), "a2"), (s(183), D("0.2"), "a3"), (s(186), D("0.3"), "a4")]
        assert await reader.since("other-account", BTC_USDT, s(0)) == []
        assert await reader.since("", "ETH/USDT", s(0)) == []
    finally:
        await engine.dispose()


async def test_a_ledger_starts_from_the_recorded_fills_once():
    clock = VirtualClock(START + timedelta(seconds=30))  # 5 BTC traded this minute: 0.5 of room
    reads: list[object] = []

    async def recorded(start):  # type: ignore[no-untyped-def]
        reads.append(start)
        return [(START + timedelta(seconds=10), D("0.3"), "old-1"), (START - timedelta(seconds=5), D("1"), "old-0")]

    ledger = SymbolLedger("BTC/USDT", D("0.10"), clock=clock, instrument=BTC, traded_volume=traded, pace=pace,
                          recorded_fills=recorded)
    first = await ledger.reserve(D("0.4"), by=clock.now())
    assert (first.qty, first.held_back) == (D("0.2"), True)  # 0.5 - 0.3 recorded before the restart
    ledger.settle(first, ())
    await ledger.reserve(D("0.1"), by=clock.now())
    assert reads == [START - timedelta(minutes=1)]  # read once, from the previous minute on


async def test_legs_of_a_restart_starting_together_all_wait_for_the_one_read_of_the_recorded_fills():
    clock = VirtualClock(START + timedelta(seconds=30))  # 5 BTC traded: 0.5 of room
    reads: list[object] = []

    async def recorded(start):  # type: ignore[no-untyped-def]
        reads.append(start)
        await asyncio.sleep(0)  # a database round trip: the other legs run meanwhile
        await asyncio.sleep(0)
        return [(START + timedelta(seconds=10), D("0.3"), "old-1")]

    ledger = SymbolLedger("BTC/USDT", D("0.10"), clock=clock, instrument=BTC, traded_volume=traded, pace=pace,
                          recorded_fills=recorded)
    grants = await asyncio.gather(*(ledger.reserve(D("0.2"), by=clock.now()) for _ in range(3)))
    assert sorted(g.qty for g in grants) == [D("0"), D("0"), D("0.2")]  # 0.5 - 0.3 recorded = 0.2 between them
    assert len(reads) == 1


async def test_sighup_turns_the_account_cap_on_for_running_executions_counting_the_minutes_fills():
    clock = VirtualClock(START + timedelta(seconds=30))

    caps = AccountCaps(None, clock=clock, traded_volume=traded, pace=pace)
    port = caps.room("", "BTC/USDT", BTC)  # a running execution's port, the cap off
    off = await port.reserve(D("0.4"), by=clock.now())
    assert (off.qty, off.held_back) == (D("0.4"), False)
    from genesis.domain.orders import Fill, Liquidity
    port.settle(off, [Fill("t1", "c", D("0.4"), D("100000"), D(0), "USDT", Liquidity.TAKER, clock.now())])
    caps.adopt(D("0.10"))  # SIGHUP with the setting on
    on = await port.reserve(D("0.4"), by=clock.now())
    assert (on.qty, on.held_back) == (D("0.1"), True)  # 0.5 of room less the 0.4 filled with it off
    assert port.rest_until(clock.now() + timedelta(minutes=5)) == minute_of(clock.now()) + timedelta(minutes=1)


async def test_apply_config_hands_the_new_account_cap_to_the_engines_ledgers(db_path):
    async with harness(db_path, _config(None), start=START, venue=_market()) as h:
        assert h.supervisor.account_caps is not None and h.supervisor.account_caps.cap is None
        apply_config(h.supervisor, _config("0.05"))
        assert h.supervisor.account_caps.cap == D("0.05")
        assert h.supervisor.account_caps.room("", "BTC/USDT", BTC).cap == D("0.05")  # type: ignore[attr-defined]


async def test_a_store_error_reading_the_recorded_fills_holds_the_leg_and_is_retried_after_a_back_off():
    """PostgreSQL unavailable at the first capped leg: no room is granted (fail closed, not
    the error up to the execution), and the read is tried again at a later look once its
    back-off has passed; the fills it then reads are counted."""
    from sqlalchemy.exc import OperationalError

    from genesis.engine.account_cap import SEED_RETRY
    clock = VirtualClock(START + timedelta(seconds=30))  # 5 BTC traded: 0.5 of room
    reads: list[object] = []

    async def recorded(start):  # type: ignore[no-untyped-def]
        reads.append(start)
        if len(reads) == 1:
            raise OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly"))
        return [(START + timedelta(seconds=10), D("0.3"), "old-1")]

    ledger = SymbolLedger("BTC/USDT", D("0.10"), clock=clock, instrument=BTC, traded_volume=traded, pace=pace,
                          recorded_fills=recorded)
    held = await ledger.reserve(D("0.4"), by=clock.now())
    assert (held.qty, held.held_back) == (D("0"), True)  # the fills unread: no room
    again = await ledger.reserve(D("0.4"), by=clock.now())
    assert again.qty == D("0") and len(reads) == 1  # within the back-off: not read again
    clock.advance_to(clock.now() + timedelta(seconds=SEED_RETRY.delay(0)))
    granted = await ledger.reserve(D("0.4"), by=clock.now())
    assert len(reads) == 2
    # 31 s into the minute: 0.1 x 5.1667 traded - 0.3 recorded, rounded down to the lot
    assert (granted.qty, granted.held_back) == (D("0.21666"), True)


async def test_a_transient_store_error_reading_the_recorded_fills_does_not_fail_the_execution(db_path):
    """The same through the supervisor: the execution runs (its leg waits, the read is
    retried) instead of ending ``failed`` with the store's error."""
    from sqlalchemy.exc import OperationalError

    async with harness(db_path, _config(), start=START, venue=_market()) as h:
        caps = h.supervisor.account_caps
        real = caps.recorded_fills
        calls: list[object] = []

        async def flaky(account, symbol, start):  # type: ignore[no-untyped-def]
            calls.append(start)
            if len(calls) == 1:
                raise OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly"))
            return await real(account, symbol, start)

        caps.recorded_fills = flaky
        eid = await h.supervisor.submit(h.request(qty="1", duration="40s", slices=1, request_id="x"))
        await h.supervisor.wait_all()
        agg = await h.store.load(eid)
    assert agg.state.value != "failed" and agg.filled_qty > 0
    assert len(calls) == 2
