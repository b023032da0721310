"""The account-wide participation cap per symbol (``risk.account_participation_cap``): several
parents on one symbol of one account take together at most the cap of the volume the market
traded in each minute; without the setting each parent is held to its own cap only."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from genesis.config import ConfigError, parse_config
from genesis.domain import events as ev
try:
    from genesis.engine.account_cap import ACCOUNT_CAP_REASON
except ImportError:  # old code
    ACCOUNT_CAP_REASON = "account_participation_cap"
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal
BTC = SIM_INSTRUMENTS["BTC/USDT"]
START = T0 + timedelta(days=HISTORY_DAYS, hours=1)
VOLUME = D("10")  # BTC traded a minute
PARENTS = 3


async def _run(db_path, account_cap: str | None) -> tuple[list[ev.FillRecorded], list[ev.Event]]:
    """Three TWAP parents of 6 BTC over 10 minutes on one symbol: each alone is under its own
    10% cap (0.6 of 10 BTC a minute), together they want 18% of the tape."""
    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: VOLUME)
    risk = {"account_participation_cap": account_cap} if account_cap is not None else {}
    config = parse_config({"twap": {"volume_lookback_days": HISTORY_DAYS}, "risk": risk})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, btc)) as h:
        ids = [await h.supervisor.submit(h.request(qty="6", duration="10m", request_id=f"parent-{n}"))
               for n in range(PARENTS)]
        await h.supervisor.wait_all()
        history = [s.event for eid in ids for s in await h.store.read(eid)]
    return [e for e in history if isinstance(e, ev.FillRecorded)], history


def _per_minute(fills: list[ev.FillRecorded]) -> dict[datetime, Decimal]:
    minutes: dict[datetime, Decimal] = defaultdict(Decimal)
    for f in fills:
        minutes[f.filled_at.replace(second=0, microsecond=0)] += f.qty
    return dict(minutes)


async def test_parents_on_one_account_take_at_most_the_account_cap_of_each_minute(db_path):
    fills, history = await _run(db_path, "0.10")
    minutes = _per_minute(fills)
    assert minutes and sum(minutes.values()) > 0
    for minute, qty in minutes.items():
        assert qty <= D("0.10") * VOLUME + BTC.step_size, (minute, qty)
    # the account's room held slices back, and their events say so (SQL finds them by reason)
    slices = [e for e in history if isinstance(e, ev.TwapSliceExecuted)]
    held = [s for s in slices if s.reason == ACCOUNT_CAP_REASON]
    assert held


async def test_without_the_setting_each_parent_is_held_to_its_own_cap_only(db_path):
    fills, history = await _run(db_path, None)
    minutes = _per_minute(fills)
    # each parent is under its own cap, the account as a whole is well above 10% of a minute
    assert max(minutes.values()) > D("0.10") * VOLUME + BTC.step_size
    assert not any(isinstance(e, ev.TwapSliceExecuted) and e.reason == ACCOUNT_CAP_REASON for e in history)


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "nan", "ten", True, [0.1]])
def test_a_bad_account_cap_is_refused_naming_the_key_and_the_fix(value):
    with pytest.raises(ConfigError) as err:
        parse_config({"risk": {"account_participation_cap": value}})
    message = str(err.value)
    assert "account_participation_cap" in message and "<= 1" in message


def test_the_account_cap_is_off_by_default_and_reads_a_share():
    assert parse_config({}).risk.account_participation_cap is None
    assert parse_config({"risk": {"account_participation_cap": "0.1"}}).risk.account_participation_cap == D("0.1")
    assert parse_config({"risk": {"account_participation_cap": 1}}).risk.account_participation_cap == D("1")


def _ledger(clock, traded_per_minute: Decimal = VOLUME):
    from genesis.engine.account_cap import SymbolLedger, minute_of

    async def traded(symbol: str, start: datetime, end: datetime) -> Decimal:
        seconds = Decimal(str((end - max(start, minute_of(end))).total_seconds()))
        return traded_per_minute * seconds / 60  # evenly over the minute, as the simulator trades

    async def pace() -> None:
        return None

    return SymbolLedger("BTC/USDT", D("0.10"), clock=clock, instrument=BTC, traded_volume=traded, pace=pace)


def _fill(trade_id: str, qty: str, at: datetime):
    from genesis.domain.orders import Fill, Liquidity

    return Fill(trade_id, "c", D(qty), D("100000"), D(0), "USDT", Liquidity.TAKER, at)


async def test_a_reservation_holds_the_room_until_its_order_is_final():
    from genesis.clock import VirtualClock

    clock = VirtualClock(START + timedelta(seconds=30))  # 5 BTC traded so far: room 0.5
    ledger = _ledger(clock)
    first = await ledger.reserve(D("0.4"), by=clock.now())
    second = await ledger.reserve(D("0.4"), by=clock.now())  # the first's room is taken
    assert (first.qty, first.held_back) == (D("0.4"), False)
    assert (second.qty, second.held_back) == (D("0.1"), True)
    ledger.settle(first, [_fill("t1", "0.4", clock.now())])
    ledger.settle(first, [_fill("t1", "0.4", clock.now())])  # reported again: counted once
    ledger.settle(second, ())  # not sent: its room goes back
    assert ledger.filled_since(START) == D("0.4")
    assert ledger.room(D("5"), clock.now()) == D("0.1")


async def test_a_short_room_waits_for_the_market_and_a_maker_rests_within_its_minute():
    from genesis.clock import VirtualClock

    clock = VirtualClock(START + timedelta(seconds=6))  # 1 BTC traded: room 0.1
    ledger = _ledger(clock)
    waited = asyncio.create_task(ledger.reserve(D("0.3"), by=START + timedelta(seconds=50)))
    while not waited.done():
        await asyncio.sleep(0)
        clock.advance_to(clock.now() + timedelta(seconds=1))
    assert (await waited).qty == D("0.3") and clock.now() >= START + timedelta(seconds=18)
    assert ledger.rest_until(clock.now() + timedelta(minutes=5)) == START + timedelta(minutes=1)


async def test_sql_finds_the_slices_the_account_cap_held_back(db_path):
    from sqlalchemy import select

    from genesis.store import tables as t

    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: VOLUME)
    config = parse_config({"twap": {"volume_lookback_days": HISTORY_DAYS},
                           "risk": {"account_participation_cap": "0.05"}})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, btc)) as h:
        for n in range(2):
            await h.supervisor.submit(h.request(qty="3", duration="5m", request_id=f"parent-{n}"))
        await h.supervisor.wait_all()
        async with h.engine.connect() as conn:
            held = (await conn.execute(select(t.execution_slices.c.slice_index).where(
                t.execution_slices.c.reason == ACCOUNT_CAP_REASON))).all()
    assert held


def test_fills_reported_out_of_time_order_are_counted_in_their_minute_and_forgotten_in_time():
    """Fills of many orders arrive in any order: each counts once, in the minute it traded, and
    the ledger forgets them by time (a regression guard for the in-place insertion, which
    replaced a full sort on every late fill: quadratic with a thousand parents on one symbol)."""
    import random

    from genesis.clock import VirtualClock

    clock = VirtualClock(START + timedelta(minutes=1, seconds=30))
    ledger = _ledger(clock)
    times = [START + timedelta(seconds=s) for s in range(0, 90, 3)]  # two minutes' fills, 0.001 each
    order = list(range(len(times)))
    random.Random(7).shuffle(order)
    for n in order:
        ledger.settle(None, [_fill(f"t{n}", "0.001", times[n])])
    ledger.settle(None, [_fill(f"t{order[0]}", "0.001", times[order[0]])])  # reported again: once
    assert [at for at, _, _ in ledger._fills] == times  # in time order, ties as they came
    assert ledger.filled_since(START + timedelta(minutes=1)) == D("0.010")  # seconds 60..87
    assert ledger.filled_since(START) == D("0.030")
    clock.advance_to(START + timedelta(minutes=2, seconds=1))  # the first minute is now two minutes back
    ledger.settle(None, ())
    assert ledger.filled_since(START) == D("0.010")
