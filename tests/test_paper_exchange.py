"""The paper exchange: Binance wire format, request signing, persistence across restarts,
fault injection, and the real ccxt client's code path against it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest
import structlog

from genesis.clock import VirtualClock
from genesis.domain.ids import client_order_namespace, parse_client_order_id
from genesis.domain.orders import OrderStatus, Side, TimeInForce
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.paper.local import free_port as _free_port
from genesis.paper.faults import Faults
from genesis.paper.server import PaperServer, resume_start, start_paper_exchange
from genesis.paper.store import PaperStore
from genesis.venue.base import PermanentVenueError, RetryableVenueError, UnknownOutcomeError
from genesis.venue.candles import shipped_candles
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.order_budget import OrderBudget
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, market_series, minute, order

REPO = Path(__file__).resolve().parent.parent


async def start(tmp_path: Path, clock: VirtualClock, **kw: Any) -> PaperServer:
    kw.setdefault("series", market_series())
    return await start_paper_exchange(state_path=tmp_path / "paper.db", key=KEY, secret=SECRET,
                                      clock=clock, **kw)


def ccxt_venue(paper: PaperServer, clock: VirtualClock, secret: str = SECRET,
               timeout_ms: int = 10_000) -> CcxtVenue:
    return CcxtVenue("binance", credentials=Credentials(KEY, secret), exchange_url=paper.url,
                     clock=clock, budget=OrderBudget(), timeout_ms=timeout_ms, config=FAST)


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[tuple[PaperServer, CcxtVenue, VirtualClock]]:
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    venue = ccxt_venue(server, clock)
    try:
        yield server, venue, clock
    finally:
        await venue.close()
        await server.stop()


def signed(params: dict[str, Any], secret: str = SECRET, stamp_ms: int | None = None) -> str:
    """Binance request signing, written independently of ccxt."""
    query = urlencode({**params, "timestamp": stamp_ms or int(time.time() * 1000)})
    return query + "&signature=" + hmac.new(secret.encode(), query.encode(),
                                            hashlib.sha256).hexdigest()


async def raw(session: aiohttp.ClientSession, method: str, url: str, key: str | None = KEY,
              body: str | None = None) -> tuple[int, Any]:
    headers = {"X-MBX-APIKEY": key} if key else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    async with session.request(method, url, headers=headers, data=body) as resp:
        return resp.status, json.loads(await resp.text())


# ---------------------------------------------------------------------- wire format
async def test_binance_json_shapes_and_error_codes(paper) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = paper
    api = server.url + "/api/v3"
    async with aiohttp.ClientSession() as s:
        assert await raw(s, "GET", api + "/ping") == (200, {})
        _, info = await raw(s, "GET", api + "/exchangeInfo?symbol=BTCUSDT")
        filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
        assert (filters["PRICE_FILTER"]["tickSize"], filters["LOT_SIZE"]["stepSize"],
                filters["NOTIONAL"]["minNotional"]) == ("0.01000000", "0.00001000", "5.00000000")
        _, book = await raw(s, "GET", api + "/depth?symbol=BTCUSDT&limit=5")
        assert (book["bids"], book["asks"]) == ([["99.99000000", "2.50000000"]],
                                                [["100.01000000", "2.50000000"]])
        assert await raw(s, "GET", api + "/depth?symbol=XRPUSDT") == (
            400, {"code": -1121, "msg": "Invalid symbol."})
        _, rows = await raw(s, "GET", api + "/klines?symbol=BTCUSDT&interval=1m&limit=5")
        assert rows == []  # at 00:00:30 not one candle has closed
        assert (await raw(s, "GET", api + "/klines?symbol=BTCUSDT&interval=1h"))[1]["code"] == -1120
        account = api + "/account?" + signed({})
        assert await raw(s, "GET", account, key=None) == (401, {"code": -2014,
                                                                "msg": "API-key format invalid."})
        assert (await raw(s, "GET", account, key="someone-else"))[1]["code"] == -2015
        assert (await raw(s, "GET", api + "/account?" + signed({}, "wrong")))[1]["code"] == -1022
        stale = int(time.time() * 1000) - 6000  # default recvWindow is 5 s
        assert (await raw(s, "GET", api + "/account?" + signed({}, stamp_ms=stale)))[1] == {
            "code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
        status, acct = await raw(s, "GET", account)
        assert status == 200 and {"asset": "BTC", "free": "100.00000000",
                                  "locked": "0.00000000"} in acct["balances"]
        unknown = api + "/order?" + signed({"symbol": "BTCUSDT", "origClientOrderId": "nope"})
        assert await raw(s, "GET", unknown) == (400, {"code": -2013, "msg": "Order does not exist."})
        new = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "price": "99"}
        assert (await raw(s, "POST", api + "/order", body=signed(new)))[1]["code"] == -1102
        bad_id = {**new, "quantity": "1", "timeInForce": "GTC", "newClientOrderId": "a b"}
        assert (await raw(s, "POST", api + "/order", body=signed(bad_id)))[1]["code"] == -1100
        ok = {**bad_id, "newClientOrderId": "gbbbbbbbbbbbb-0-0", "newOrderRespType": "FULL"}
        status, placed = await raw(s, "POST", api + "/order", body=signed(ok))
        assert status == 200 and (placed["status"], placed["fills"], placed["orderId"]) == (
            "NEW", [], 1)
        assert (await raw(s, "POST", api + "/order", body=signed(ok)))[1] == {
            "code": -2010, "msg": "Duplicate order sent."}


async def test_endpoints_ccxt_calls_are_all_served(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock = paper
    calls: list[tuple[str, str]] = []
    original = venue.ex.fetch

    async def spy(url, method="GET", headers=None, body=None):  # type: ignore[no-untyped-def]
        calls.append((method, url.split("?")[0].replace(server.url, "")))
        return await original(url, method, headers, body)

    venue.ex.fetch = spy
    await venue.instruments()
    await venue.book_top(BTC)
    await venue.place_order(order("gcccccccccccc-0-0", Side.BUY, "0.1"))
    await venue.place_order(order("gcccccccccccc-1-0", Side.BUY, "3", "99.90", TimeInForce.POST_ONLY))
    clock.advance_to(minute(3))
    assert (await venue.fetch_order(BTC, "gcccccccccccc-1-0")).filled_qty == D("2.5")
    (resting,) = await venue.open_orders(BTC)
    assert (resting.client_order_id, resting.status, resting.filled_qty, len(resting.fills)) == (
        "gcccccccccccc-1-0", OrderStatus.PARTIALLY_FILLED, D("2.5"), 1)
    await venue.cancel_order(BTC, "gcccccccccccc-1-0")
    await venue.equity_usdt()
    await venue.candles(BTC, minute(0), minute(3))
    assert sorted(set(calls)) == [
        ("DELETE", "/api/v3/order"), ("GET", "/api/v3/account"), ("GET", "/api/v3/depth"),
        ("GET", "/api/v3/exchangeInfo"), ("GET", "/api/v3/klines"), ("GET", "/api/v3/myTrades"),
        ("GET", "/api/v3/openOrders"), ("GET", "/api/v3/order"), ("GET", "/api/v3/ticker/24hr"),
        ("POST", "/api/v3/order")]
    stored = {o.client_order_id: o for o in server.exchange.store.all_orders()}
    assert (stored["gcccccccccccc-1-0"].type, stored["gcccccccccccc-1-0"].status) == (
        "LIMIT_MAKER", "CANCELED")
    audit = server.exchange.store.db.execute("SELECT http_status FROM requests").fetchall()
    assert audit and all(status == 200 for (status,) in audit)


async def test_candles_are_paged_over_the_shipped_data(tmp_path: Path) -> None:
    now = datetime(2025, 6, 10, 13, 0, 30, tzinfo=timezone.utc)
    clock = VirtualClock(now)
    server = await start(tmp_path, clock, series={BTC: shipped_candles(BTC)})
    venue = ccxt_venue(server, clock)
    try:
        start_at = now.replace(second=0) - timedelta(minutes=1500)
        candles = await venue.candles(BTC, start_at, now)
        assert candles == shipped_candles(BTC).range(start_at, now.replace(second=0))
        assert len(candles) == 1500
    finally:
        await venue.close()
        await server.stop()


# ---------------------------------------------------------------------- persistence
async def test_orders_trades_and_balances_survive_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    venue = ccxt_venue(server, clock)
    await venue.place_order(order("gdddddddddddd-0-0", Side.BUY, "1"))
    await venue.place_order(order("gdddddddddddd-1-0", Side.BUY, "4", "99.90"))
    await venue.place_order(order("gdddddddddddd-2-0", Side.SELL, "1", "1000"))  # rests throughout
    clock.advance_to(minute(3))
    before = await venue.fetch_order(BTC, "gdddddddddddd-1-0")
    assert before.filled_qty == D("2.5")
    await venue.close()
    await server.stop()

    clock = VirtualClock(minute(3))
    server = await start(tmp_path, clock)
    venue = ccxt_venue(server, clock)
    try:
        after = await venue.fetch_order(BTC, "gdddddddddddd-1-0")
        assert (after.status, after.filled_qty, after.fills) == (before.status, D("2.5"), before.fills)
        clock.advance_to(minute(6))  # the dip in minute 5 fills the rest
        done = await venue.fetch_order(BTC, "gdddddddddddd-1-0")
        assert (done.status, done.filled_qty) == (OrderStatus.FILLED, D("4"))
        trade_ids = [int(f.trade_id) for f in done.fills]
        assert trade_ids == sorted(set(trade_ids)) and min(trade_ids) > 1  # trade 1: the market order
        balances = await venue.balances()
        assert balances["BTC"] == D("105")
        spent = sum(f.qty * f.price + f.fee for f in done.fills) + D("100.05") + D("0.10005")
        assert balances["USDT"] == D("10000000") - spent
        with pytest.raises(Exception, match="Duplicate order sent"):  # an open order's id, as on Binance
            await venue.place_order(order("gdddddddddddd-2-0", Side.SELL, "1", "1000"))
        first = await venue.fetch_order(BTC, "gdddddddddddd-0-0")
        again = await venue.place_order(order("gdddddddddddd-0-0", Side.BUY, "1"))  # a filled order's id
        assert again.status is OrderStatus.FILLED and again.venue_order_id != first.venue_order_id
        assert [o.public_client_id for o in server.exchange.store.all_orders()].count("gdddddddddddd-0-0") == 2
    finally:
        await venue.close()
        await server.stop()
    store = PaperStore(tmp_path / "paper.db")
    try:
        # the injected clocks never set an anchor: a first ScaledClock start re-anchors, and
        # never before the stored simulated time
        assert resume_start(store, minute(0), 60.0, wall_ms=1_000_000) == minute(6)
        # same start and speed later: the anchor says where the market is now (20 s * 60)
        assert resume_start(store, minute(0), 60.0, wall_ms=1_020_000) == minute(26)
        assert resume_start(store, minute(0), 30.0, wall_ms=1_020_000) == minute(6)  # re-anchored
        rows = store.db.execute("SELECT client_order_id, COUNT(*) FROM orders GROUP BY 1").fetchall()
        assert sorted(rows) == [("gdddddddddddd-0-0", 1), ("gdddddddddddd-0-0#4", 1), ("gdddddddddddd-1-0", 1),
                                ("gdddddddddddd-2-0", 1)]  # the filled order's id taken again: order 4
    finally:
        store.close()


# ---------------------------------------------------------------------- auth and time
async def test_wrong_secret_is_a_permanent_refusal(paper) -> None:  # type: ignore[no-untyped-def]
    server, _, clock = paper
    intruder = ccxt_venue(server, clock, secret="not-the-secret")
    try:
        with pytest.raises(PermanentVenueError, match="-1022"):
            await intruder.place_order(order("geeeeeeeeeeee-0-0", Side.BUY, "0.1"))
    finally:
        await intruder.close()
    assert server.exchange.store.all_orders() == []


async def test_clock_skew_is_resynced_after_one_retryable_error(paper) -> None:  # type: ignore[no-untyped-def]
    _, venue, _ = paper
    await venue.instruments()
    venue.ex.options["timeDifference"] = -120_000  # our clock two minutes ahead of the server
    with pytest.raises(RetryableVenueError, match="InvalidNonce"):
        await venue.place_order(order("geeeeeeeeeeee-1-0", Side.BUY, "0.1"))
    report = await venue.place_order(order("geeeeeeeeeeee-1-0", Side.BUY, "0.1"))
    assert report.status is OrderStatus.FILLED


async def test_server_clock_skew_fault_is_survived_by_resyncing(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, _ = paper
    await venue.instruments()
    server.set_faults(Faults(clock_skew_ms=-90_000))  # the server's clock 90 s behind ours
    with pytest.raises(RetryableVenueError, match="InvalidNonce"):
        await venue.place_order(order("geeeeeeeeeeee-2-0", Side.BUY, "0.1"))
    assert abs(venue.ex.options["timeDifference"] - 90_000) < 5_000  # resynced from /time
    report = await venue.place_order(order("geeeeeeeeeeee-2-0", Side.BUY, "0.1"))
    assert report.status is OrderStatus.FILLED


# ---------------------------------------------------------------------- faults
async def set_faults(server: PaperServer, **changes: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.post(server.url + "/admin/faults", json=changes) as resp:
            return {"status": resp.status, **(await resp.json())}


async def test_5xx_429_418_happen_before_anything_is_processed(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, _ = paper
    await venue.instruments()
    await set_faults(server, p_5xx=1.0)
    with pytest.raises(RetryableVenueError):
        await venue.book_top(BTC)
    with pytest.raises(UnknownOutcomeError):
        await venue.place_order(order("gfaaaaaaaaaaa-0-0", Side.BUY, "0.1"))
    await set_faults(server, p_5xx=0.0, p_429=1.0, retry_after_seconds=3)
    with pytest.raises(RetryableVenueError) as info:
        await venue.place_order(order("gfaaaaaaaaaaa-0-0", Side.BUY, "0.1"))
    assert info.value.retry_after_seconds == 3.0
    state = await set_faults(server, p_429=0.0, p_418=1.0, retry_after_seconds=30)
    assert state["counts"] == {"5xx": 2, "429": 1}
    with pytest.raises(RetryableVenueError) as info:
        await venue.place_order(order("gfaaaaaaaaaaa-0-0", Side.BUY, "0.1"))
    assert info.value.retry_after_seconds == 30.0
    await set_faults(server, p_418=0.0)
    assert (await venue.fetch_order(BTC, "gfaaaaaaaaaaa-0-0")).status is OrderStatus.NOT_FOUND
    assert (await set_faults(server, p_oops=1))["status"] == 400


@pytest.mark.parametrize("fault", [{"p_timeout_after_accept": 1.0, "hold_seconds": 0.6},
                                   {"p_drop_response": 1.0}])
async def test_lost_response_after_accept_is_resolved_by_client_id(tmp_path: Path,
                                                                   fault: dict[str, Any]) -> None:
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock, faults=Faults(orders_only=True, **fault))
    venue = ccxt_venue(server, clock, timeout_ms=300)
    try:
        request = order("gfbbbbbbbbbbb-0-0", Side.BUY, "0.2")
        with pytest.raises(UnknownOutcomeError):
            await venue.place_order(request)
        # the engine's own caller: unknown outcome -> look up by client id -> the accepted order
        # (never a second send: the exchange takes a filled order's id again, as Binance does)
        caller = VenueCaller(venue, clock, RetryPolicy(base_seconds=0.01), lambda: False,
                             structlog.get_logger("test"))
        report = await caller.lookup_intended(request, clock.now())
        assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.2"))
        orders = server.exchange.store.all_orders()
        assert [(o.client_order_id, o.executed_qty) for o in orders] == [("gfbbbbbbbbbbb-0-0", D("0.2"))]
    finally:
        await venue.close()
        await server.stop()


def test_fault_settings_parse_and_validate() -> None:
    faults = Faults.parse("p_5xx=0.1, p_429=0.05, orders_only=true, seed=7, retry_after_seconds=2")
    assert (faults.p_5xx, faults.p_429, faults.orders_only, faults.seed) == (0.1, 0.05, True, 7)
    with pytest.raises(ValueError, match="p_5xx must be a number between 0 and 1"):
        Faults.parse("p_5xx=2")
    with pytest.raises(ValueError, match="unknown fault setting"):
        Faults.parse("p_boom=0.1")


# ---------------------------------------------------------------------- the command
async def test_command_serves_until_sigterm(tmp_path: Path) -> None:
    port, state = _free_port(), tmp_path / "paper.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GENESIS_API_KEY": "", "GENESIS_API_SECRET": ""}
    proc = subprocess.Popen([sys.executable, "-m", "genesis.paper", "--port", str(port), "--state",
                             str(state), "--speed", "60", "--start", "2025-06-10T13:00:00Z"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        clock = None
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(f"http://127.0.0.1:{port}/admin/clock") as resp:
                        clock = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        assert clock is not None and clock["speed"] == 60.0
        assert clock["now"].startswith("2025-06-10T13:0")
        creds = Path(str(state) + ".credentials.json")
        assert creds.stat().st_mode & 0o777 == 0o600 and set(json.loads(creds.read_text())) == {
            "apiKey", "secret"}
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=10)[0].decode()
    assert proc.returncode == 0, output
    assert sqlite3.connect(state).execute("SELECT value FROM meta WHERE key = 'api_key'").fetchone()


# ---------------------------------------------------------------------- end to end
def _cli_wired() -> bool:
    from genesis.cli import main

    import click

    ctx = click.Context(main)
    run = main.get_command(ctx, "run")
    return main.get_command(ctx, "paper-exchange") is not None and run is not None and any(
        p.name == "exchange_url" for p in run.params)


@pytest.mark.slow
@pytest.mark.skipif(not _cli_wired(), reason="genesis run --exchange-url / genesis paper-exchange "
                                               "not wired into the CLI yet")
def test_daemon_and_paper_exchange_processes_complete_a_twap(tmp_path: Path) -> None:
    """Both as real subprocesses; every child order on the exchange carries a client id of
    this execution, none twice, and the exchange executed exactly what the daemon recorded."""
    from genesis.paper.demo import run_demo

    result = run_demo(tmp_path, speed=120.0, qty="1.2", duration="5m", echo=lambda *_: None)
    assert result.status["state"] == "completed" and D(result.status["filled_qty"]) == D("1.2")
    assert len(result.client_ids) == len(set(result.client_ids)) >= 5
    assert {parse_client_order_id(cid)[0] for cid in result.client_ids} == {result.execution_id}
    assert len({client_order_namespace(cid) for cid in result.client_ids} - {None}) == 1
