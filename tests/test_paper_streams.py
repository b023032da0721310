"""The paper exchange's WebSocket side, driven by the unmodified ccxt.pro binance client:
market streams (trades, best bid/ask, order book, klines), the user data stream over the
WebSocket API (order events for a place, partial fill, fill and cancel), and stream faults."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from decimal import Decimal as D
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import ccxt.pro as ccxtpro
import pytest

from genesis.clock import VirtualClock
from genesis.paper.faults import StreamFaults
from genesis.paper.local import point_ccxt_at
from genesis.paper.server import PaperServer
from tests.test_paper_exchange import start
from genesis.venue.base import Candle
from genesis.venue.candles import CandleSeries
from tests.test_venue_contract import BTC, KEY, SECRET, minute

# a market that moves every minute (open -> close), so the book changes as time passes
ROWS = [(D(100) + i, D(100) + i + D("1.5"), D(100) + i - D("0.5"), D(101) + i, D(10))
        for i in range(10)]


def moving_series() -> dict[str, CandleSeries]:
    return {BTC: CandleSeries.from_candles([Candle(minute(i), *row) for i, row in enumerate(ROWS)],
                                           symbol=BTC)}

WAIT = 5.0  # seconds a stream message may take (the pump ticks every 50 ms of wall time)


def pro_client(server: PaperServer, secret: str = SECRET) -> Any:
    """ccxt.pro's binance class as shipped, its URLs pointed at the paper exchange."""
    client = ccxtpro.binance({"apiKey": KEY, "secret": secret, "enableRateLimit": False,
                              "options": {"defaultType": "spot",
                                          "fetchMarkets": {"types": ["spot"]},
                                          "fetchCurrencies": False, "fetchMargins": False}})
    point_ccxt_at(client, server.url)
    return client


@asynccontextmanager
async def exchange_and_client(tmp_path: Path,
                              **start_options: Any) -> AsyncIterator[tuple[PaperServer, Any, VirtualClock]]:
    """A paper exchange on a virtual clock and an unmodified ccxt.pro client pointed at it."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock, **start_options)
    client = pro_client(server)
    try:
        yield server, client, clock
    finally:
        await client.close()
        await server.stop()


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[tuple[PaperServer, Any, VirtualClock]]:
    async with exchange_and_client(tmp_path, series=moving_series()) as running:
        yield running


async def soon(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, WAIT)


async def until(condition: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def subscribed(server: PaperServer, stream: str = "btcusdt@trade") -> None:
    """Wait until the server has the client's subscription (the market moves only after)."""
    await until(lambda: any(stream in c.streams for c in server.app.streams.connections), stream)


async def user_subscribed(server: PaperServer) -> None:
    await until(lambda: bool(server.app.user.subscriptions), "the user data subscription")


async def test_watch_trades_delivers_the_seeded_tape_inside_the_candle(market: Any) -> None:
    server, client, clock = market
    await client.load_markets()
    first = asyncio.ensure_future(client.watch_trades(BTC))
    await subscribed(server)  # trades from now on
    clock.advance_to(minute(2))
    seen: list[dict[str, Any]] = list(await soon(first))
    while seen[-1]["timestamp"] < int(minute(2).timestamp() * 1000) - 2_000:
        seen += (await collect(lambda: client.watch_trades(BTC), clock, 2.0, 1))[0]
    low, high = ROWS[1][2], ROWS[1][1]
    minute_one = [t for t in seen if minute(1).timestamp() * 1000 <= t["timestamp"]
                  < minute(2).timestamp() * 1000]
    assert minute_one and all(low <= D(str(t["price"])) <= high for t in minute_one)
    assert {t["symbol"] for t in seen} == {BTC}
    assert {D(str(t["price"])) for t in minute_one} >= {low, high}  # both extremes traded
    assert minute_one[-1]["price"] == float(ROWS[1][3])  # ends at the close
    assert sum(D(str(t["amount"])) for t in minute_one) == ROWS[1][4]  # the volume


async def test_watch_bids_asks_follows_the_book_ticker(market: Any) -> None:
    server, client, clock = market
    first = asyncio.ensure_future(client.watch_bids_asks([BTC]))
    await subscribed(server, "btcusdt@bookTicker")
    clock.advance_to(minute(1.7))
    quotes = await soon(first)
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/api/v3/ticker/bookTicker?symbol=BTCUSDT") as resp:
            rest = await resp.json()
    quote = quotes[BTC]
    assert (quote["bid"], quote["ask"]) == (float(rest["bidPrice"]), float(rest["askPrice"]))
    assert quote["bid"] < quote["ask"]


async def test_watch_order_book_syncs_snapshot_and_diffs(market: Any) -> None:
    server, client, clock = market
    first = asyncio.ensure_future(client.watch_order_book(BTC))
    await subscribed(server, "btcusdt@depth@100ms")
    clock.advance_to(minute(1.2))
    book = await soon(first)
    for n in range(1, 4):  # every diff continues the one before (ccxt checks U == u + 1)
        clock.advance_to(minute(1.2 + n * 0.2))
        book = await soon(client.watch_order_book(BTC))
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/api/v3/depth?symbol=BTCUSDT") as resp:
            rest = await resp.json()
    assert book["bids"][0][0] == float(rest["bids"][0][0])
    assert book["asks"][0][0] == float(rest["asks"][0][0])
    assert len(book["bids"]) == len(book["asks"]) == 1  # removed levels were removed
    assert book["nonce"] == rest["lastUpdateId"]


async def test_watch_ohlcv_closes_on_the_shipped_candle(market: Any) -> None:
    server, client, clock = market
    first = asyncio.ensure_future(client.watch_ohlcv(BTC, "1m"))
    await subscribed(server, "btcusdt@kline_1m")
    clock.advance_to(minute(2.5))
    candles: dict[int, list[Any]] = {}
    for row in await soon(first):
        candles[row[0]] = row
    step = 2.5
    while int(minute(2).timestamp() * 1000) not in candles:  # each watch waits for new data
        step += 0.05
        clock.advance_to(minute(step))
        for row in await soon(client.watch_ohlcv(BTC, "1m")):
            candles[row[0]] = row
    closed = candles[int(minute(1).timestamp() * 1000)]
    assert closed[1:] == [float(x) for x in ROWS[1]]  # open, high, low, close, volume
    forming = candles[int(minute(2).timestamp() * 1000)]
    assert ROWS[2][2] <= D(str(forming[4])) <= ROWS[2][1]
    assert forming[5] < float(ROWS[2][4])  # half a minute: part of the volume


async def test_stream_name_unknown_is_refused(market: Any) -> None:
    server, _, _ = market
    async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws") as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}))
        assert json.loads((await ws.receive()).data) == {"result": None, "id": 1}
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_5m"],
                                      "id": 2}))
        reply = json.loads((await ws.receive()).data)
        assert reply["id"] == 2 and reply["error"]["code"] == 2
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert json.loads((await ws.receive()).data) == {"result": ["btcusdt@trade"], "id": 3}


@pytest.fixture
async def trading(tmp_path: Path) -> AsyncIterator[tuple[PaperServer, Any, VirtualClock]]:
    """The contract's market (dip minutes fill resting buys at 99.90, 2.5 BTC a minute)."""
    async with exchange_and_client(tmp_path) as running:
        yield running


async def next_orders(client: Any) -> list[dict[str, Any]]:
    return list(await soon(client.watch_orders(BTC)))


async def test_watch_orders_and_my_trades_see_place_partial_fill_fill_and_cancel(
        trading: Any) -> None:
    server, client, clock = trading
    await client.load_markets()
    watching = asyncio.ensure_future(client.watch_orders(BTC))
    await user_subscribed(server)  # through userDataStream.subscribe.signature
    placed = await client.create_order(BTC, "limit", "buy", 4, 99.90,
                                       {"newClientOrderId": "resting-buy-1"})
    (new,) = await soon(watching)
    assert (new["id"], new["clientOrderId"], new["status"], new["filled"]) == (
        placed["id"], "resting-buy-1", "open", 0)
    trades = asyncio.ensure_future(client.watch_my_trades(BTC))
    await asyncio.sleep(0.3)
    clock.advance_to(minute(3))  # one dip minute: 2.5 of 4
    (partial,) = await next_orders(client)
    assert (partial["status"], partial["filled"], partial["remaining"]) == ("open", 2.5, 1.5)
    (first_fill,) = await soon(trades)
    assert (first_fill["order"], first_fill["amount"], first_fill["price"]) == (
        placed["id"], 2.5, 99.90)
    clock.advance_to(minute(6))  # the next dip fills the rest
    (filled,) = await next_orders(client)
    assert (filled["status"], filled["filled"], filled["remaining"]) == ("closed", 4, 0)
    resting = await client.create_order(BTC, "limit", "buy", 1, 99.00,
                                        {"newClientOrderId": "to-cancel-1"})
    (opened,) = await next_orders(client)
    assert (opened["clientOrderId"], opened["status"]) == ("to-cancel-1", "open")
    balance = asyncio.ensure_future(client.watch_balance())
    await asyncio.sleep(0.1)
    await client.cancel_order(resting["id"], BTC)
    (cancelled,) = await next_orders(client)
    assert (cancelled["id"], cancelled["clientOrderId"], cancelled["status"]) == (
        resting["id"], "to-cancel-1", "canceled")
    usdt = (await soon(balance))["USDT"]
    # the placement's own outboundAccountPosition (99.099 used) may be the first one the watch
    # sees (Python 3.12 schedules it so): the cancel's follows it
    for _ in range(2):
        if usdt["used"] == 0:
            break
        usdt = (await soon(client.watch_balance()))["USDT"]
    assert (usdt["used"], usdt["free"]) == (0, usdt["total"])  # nothing rests any more


def ws_api_signed(secret: str, **params: Any) -> dict[str, Any]:
    """WebSocket API signing, written independently of ccxt: sorted ``k=v`` joined by ``&``."""
    params = {"apiKey": KEY, "timestamp": int(time.time() * 1000), **params}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "signature": hmac.new(secret.encode(), payload.encode(),
                                            hashlib.sha256).hexdigest()}


async def test_user_data_subscription_checks_the_signature(trading: Any) -> None:
    server, _, _ = trading
    url = server.url + "/ws-api/v3"
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        method = "userDataStream.subscribe.signature"
        await ws.send_json({"id": "a", "method": method, "params": ws_api_signed("wrong")})
        assert await ws.receive_json() == {"id": "a", "status": 400, "error": {
            "code": -1022, "msg": "Signature for this request is not valid."}}
        await ws.send_json({"id": "b", "method": method, "params": ws_api_signed(SECRET)})
        assert await ws.receive_json() == {"id": "b", "status": 200,
                                           "result": {"subscriptionId": 0}}
    impostor = pro_client(server, secret="not-the-secret")
    try:  # ccxt 4.5.90 rejects, then trips over its own cleanup (KeyError 'spot')
        with pytest.raises((ccxtpro.AuthenticationError, KeyError)):
            await soon(impostor.watch_orders(BTC))
    finally:
        await impostor.close()


# ----------------------------------------------------------------------------- stream faults
async def subscribed_trades(server: PaperServer, client: Any, clock: VirtualClock,
                            at: float) -> list[dict[str, Any]]:
    watching = asyncio.ensure_future(client.watch_trades(BTC))
    await subscribed(server)
    clock.advance_to(minute(at))
    return list(await soon(watching))


async def test_stream_disconnect_makes_ccxt_raise_and_a_new_watch_reconnects(market: Any) -> None:
    server, client, clock = market
    await client.load_markets()
    server.set_stream_faults(StreamFaults(p_disconnect=1.0))
    with pytest.raises(ccxtpro.NetworkError):
        await subscribed_trades(server, client, clock, 1.0)
    server.set_stream_faults(StreamFaults())
    assert await subscribed_trades(server, client, clock, 1.5)  # a fresh connection, trades again


async def test_stream_stall_keeps_the_socket_open_and_silent(market: Any) -> None:
    server, client, clock = market
    await subscribed_trades(server, client, clock, 1.0)
    async with aiohttp.ClientSession() as s:  # switched from the admin API
        async with s.post(server.url + "/admin/stream-faults", json={"stall": True}) as resp:
            assert (await resp.json())["stall"] is True
    clock.advance_to(minute(1.5))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.watch_trades(BTC), 0.5)
    server.set_stream_faults(StreamFaults())
    clock.advance_to(minute(2.0))
    assert await soon(client.watch_trades(BTC))  # the same connection speaks again


async def collect(watch: Any, clock: VirtualClock, at: float, count: int) -> tuple[list[Any], float]:
    """Move the market on, 3 simulated seconds at a time, until ``watch()`` gave ``count``
    items; the items and the minute reached."""
    got: list[Any] = []
    pending = asyncio.ensure_future(watch())
    while len(got) < count:
        at += 0.05
        clock.advance_to(minute(at))
        done, _ = await asyncio.wait({pending}, timeout=0.5)
        if done:
            got += pending.result()
            pending = asyncio.ensure_future(watch())
    pending.cancel()
    return got, at


async def test_stream_duplicates_are_delivered_twice_and_reordering_swaps(market: Any) -> None:
    server, client, clock = market
    await client.load_markets()
    server.set_stream_faults(StreamFaults(p_duplicate=1.0))
    seen, at = await collect(lambda: client.watch_trades(BTC), clock, 0.5, 6)
    ids = [t["id"] for t in seen]
    whole = ids[:len(ids) // 2 * 2]  # the last one's copy may still be on its way
    assert whole[0::2] == whole[1::2] and len(set(whole)) == len(whole) // 2
    server.set_stream_faults(StreamFaults(p_out_of_order=1.0))
    later, _ = await collect(lambda: client.watch_trades(BTC), clock, at, 6)
    times = [t["timestamp"] for t in later]
    assert times != sorted(times)  # each message overtaken by the next one


async def test_combined_stream_wraps_payloads_with_the_stream_name(market: Any) -> None:
    server, _, clock = market
    url = server.url + "/stream?streams=btcusdt@trade/btcusdt@kline_1m"
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        await subscribed(server, "btcusdt@kline_1m")
        clock.advance_to(minute(0.6))
        message = await asyncio.wait_for(ws.receive_json(), WAIT)
        assert message["stream"] in ("btcusdt@trade", "btcusdt@kline_1m")
        data = message["data"]
        assert data["s"] == "BTCUSDT" and data["e"] in ("trade", "kline")
        assert set(data) >= ({"e", "E", "s", "t", "p", "q", "T", "m", "M"} if data["e"] == "trade"
                             else {"e", "E", "s", "k"})
