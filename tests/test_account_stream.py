"""The tier gate's account read on the streaming venue: balances from the user data stream
(``outboundAccountPosition`` through ccxt.pro ``watch_balance``) and shared prices, so many
submissions cost one account read and one ticker read, not one each; the gate still refuses
an account below the Strategist threshold."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from genesis.clock import VirtualClock
from genesis.domain.orders import Side
from genesis.engine.supervisor import SubmissionRejected
from genesis.requests import validate_submit
from genesis.venue.account_stream import AccountBalances
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.order_budget import OrderBudget
from tests.test_ccxt_stream import MAKER_FIRST, WAIT_SECONDS, until
from tests.test_fault_matrix import engine_on
from tests.test_paper_exchange import ccxt_venue, start
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, minute, order


def streaming_venue(url: str, clock: VirtualClock) -> StreamingCcxtVenue:
    return StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET), exchange_url=url,
                              clock=clock, budget=OrderBudget(), config=FAST,
                              fill_wait_seconds=WAIT_SECONDS)


def account_reads(server: Any) -> dict[str, int]:
    rows = server.exchange.store.db.execute(
        "SELECT path, COUNT(*) FROM requests WHERE path IN ('/api/v3/account', "
        "'/api/v3/ticker/24hr', '/api/v3/ticker/price') GROUP BY path")
    return {path: n for path, n in rows}


def twap() -> Any:
    return validate_submit(symbol=BTC, side="buy", qty="1", algo="twap", duration="10m", slices=5,
                           limit_price=None, request_id=None, instruments=SIM_INSTRUMENTS,
                           config=MAKER_FIRST)


async def test_many_equity_reads_cost_one_account_and_one_ticker_request(tmp_path: Path) -> None:
    """40 equity reads (20 at once, 20 one after another) on the streaming venue: one account
    snapshot and one ticker read, and the same equity the REST venue computes."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    venue, rest = streaming_venue(server.url, clock), ccxt_venue(server, clock)
    try:
        await venue.instruments()
        await rest.instruments()
        expected = await rest.equity_usdt()
        before = account_reads(server)
        together = await asyncio.gather(*(venue.equity_usdt() for _ in range(20)))
        one_by_one = [await venue.equity_usdt() for _ in range(20)]
        after = account_reads(server)
    finally:
        await venue.close()
        await rest.close()
        await server.stop()
    assert set(together) == set(one_by_one) == {expected}
    assert {p: after[p] - before.get(p, 0) for p in after} == {"/api/v3/account": 1,
                                                               "/api/v3/ticker/24hr": 1}


async def test_balances_follow_the_user_stream_after_a_fill(tmp_path: Path) -> None:
    """A market buy fills: the balances the venue values move with the exchange's (the
    ``outboundAccountPosition`` event), with no second account read."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    venue = streaming_venue(server.url, clock)
    try:
        await venue.instruments()
        first = await venue.account.totals()
        await until(lambda: venue.account.state.up, "the balance stream")
        report = await venue.place_order(order("acct-buy-1", Side.BUY, "2"))
        exchange = {a: v for a, v in server.exchange.sim.balances().items() if v}
        await until(lambda: venue.account._totals.get("BTC") == exchange["BTC"], "the balance event")
        second = await venue.account.totals()
        reads = account_reads(server).get("/api/v3/account", 0)
    finally:
        await venue.close()
        await server.stop()
    assert report.filled_qty == D(2)
    assert second == exchange and second["BTC"] == first["BTC"] + D(2)
    assert second["USDT"] < first["USDT"]
    assert reads == 1 and venue.account.snapshot_reads == 1


@pytest.mark.parametrize(("usdt", "accepted"), [("9999", False), ("10000", True)])
async def test_the_tier_gate_still_refuses_an_account_below_the_threshold(
        tmp_path: Path, usdt: str, accepted: bool) -> None:
    """Strategist tier: equity >= 10,000 USDT (the default threshold), read from the stream."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock, initial_balances={"USDT": D(usdt)})
    venue = streaming_venue(server.url, clock)
    try:
        await venue.instruments()
        async with engine_on(tmp_path, clock, venue, MAKER_FIRST) as (store, supervisor, _):
            if accepted:
                execution_id = await supervisor.submit(twap())
                assert (await store.load(execution_id)).version > 0
            else:
                with pytest.raises(SubmissionRejected, match="Strategist tier"):
                    await supervisor.submit(twap())
            await supervisor.shutdown(1.0)
    finally:
        await venue.close()
        await server.stop()


class _Hub:
    """What ``AccountBalances`` uses of the market hub: ccxt's balance cache, one watch loop."""

    def __init__(self) -> None:
        self.ex = SimpleNamespace(balance={})
        self.feeds: dict[str, Any] = {}
        self.on_data: Any = None

    def start_user_stream(self) -> None:
        pass

    def watch(self, name: str, state: Any, watch: Any, on_data: Any) -> None:
        state.mark_up()
        self.on_data = on_data

    def push(self, **totals: str) -> None:
        self.ex.balance = {"spot": {"total": {a: float(v) for a, v in totals.items()}}}
        self.on_data(None, False)


async def test_the_snapshot_is_read_again_after_a_reconnect_or_when_stale_while_down() -> None:
    clock = VirtualClock(minute(0))
    hub, reads = _Hub(), []
    snapshot = {"total": {"USDT": 100.0, "BTC": 1.0}}

    async def fetch() -> dict[str, Any]:
        reads.append(clock.now())
        return snapshot

    account = AccountBalances(hub, fetch, clock, ttl_seconds=30)  # type: ignore[arg-type]
    assert await account.totals() == {"USDT": D(100), "BTC": D(1)}
    hub.push(BTC="1.5")  # an outboundAccountPosition after the snapshot
    clock.advance_to(minute(5))
    assert await account.totals() == {"USDT": D(100), "BTC": D("1.5")} and len(reads) == 1
    account.state.mark_down("dropped")  # a gap: the stream may have missed events
    snapshot = {"total": {"USDT": 90.0, "BTC": 2.0}}
    assert await account.totals() == {"USDT": D(90), "BTC": D(2)} and len(reads) == 2
    assert await account.totals() == {"USDT": D(90), "BTC": D(2)} and len(reads) == 2  # fresh
    clock.advance_to(minute(5.5))  # still down, the snapshot 30 s old: REST again
    await account.totals()
    assert len(reads) == 3


async def test_a_stream_balance_landing_while_the_snapshot_is_read_is_kept_over_it() -> None:
    """The stream reconnected: a snapshot is read again; while it is in flight an
    ``outboundAccountPosition`` (through ccxt.pro binance's own ``handle_balance``) says BTC is
    now 0.5. The snapshot, computed before that sell, says 1: the stream's value stands (it is
    not told again), the other assets come from the snapshot."""
    import asyncio

    import ccxt.pro as ccxtpro

    class Client:
        subscriptions: dict[str, Any] = {"spot": True}  # the user data stream of the spot account

        def resolve(self, *args: Any) -> None:
            return None

    clock = VirtualClock(minute(0))
    hub = _Hub()
    hub.ex = ccxtpro.binance()
    hub.ex.balance = {"spot": {}}  # as ``watch_balance`` leaves it before the first event
    asked, answer = asyncio.Event(), asyncio.Event()

    async def fetch() -> dict[str, Any]:
        asked.set()
        await answer.wait()
        return {"total": {"BTC": 1.0, "USDT": 0.0, "ETH": 3.0}}

    def position(**totals: str) -> None:
        hub.ex.handle_balance(Client(), {"e": "outboundAccountPosition", "E": 1700000000000, "u": 1700000000000,
                                         "B": [{"a": a, "f": v, "l": "0"} for a, v in totals.items()]})
        hub.on_data(None, False)

    try:
        account = AccountBalances(hub, fetch, clock)  # type: ignore[arg-type]
        answer.set()
        assert await account.totals() == {"BTC": D(1), "ETH": D(3)}
        account.state.mark_down("dropped")
        account.state.mark_up()  # reconnected: the snapshot is read again
        asked.clear()
        answer.clear()
        reader = asyncio.create_task(account.totals())
        await asked.wait()
        position(BTC="0.5", USDT="50000")  # a sell filled while the snapshot is in flight
        answer.set()
        assert await reader == {"BTC": D("0.5"), "USDT": D(50000), "ETH": D(3)}
        position(BTC="0.5", USDT="50000")  # told again unchanged: the same
        assert await account.totals() == {"BTC": D("0.5"), "USDT": D(50000), "ETH": D(3)}
        assert account.snapshot_reads == 2
    finally:
        await hub.ex.close()
