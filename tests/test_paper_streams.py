"""The paper exchange's WebSocket side, driven by the unmodified ccxt.pro binance client:
market streams (trades, best bid/ask, order book, klines), the user data stream over the
WebSocket API (order events for a place, partial fill, fill and cancel), and stream faults."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D
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


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[tuple[PaperServer, Any, VirtualClock]]:
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock, series=moving_series())
    client = pro_client(server)
    try:
        yield server, client, clock
    finally:
        await client.close()
        await server.stop()


async def soon(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, WAIT)


async def test_watch_trades_delivers_the_seeded_tape_inside_the_candle(market: Any) -> None:
    server, client, clock = market
    await client.load_markets()
    first = asyncio.ensure_future(client.watch_trades(BTC))
    await asyncio.sleep(0.2)  # subscribed: trades from now on
    clock.advance_to(minute(2))
    seen: list[dict[str, Any]] = list(await soon(first))
    step = 2.0
    while seen[-1]["timestamp"] < int(minute(2).timestamp() * 1000) - 2_000:
        step += 0.01  # each watch waits for new trades
        clock.advance_to(minute(step))
        seen += await soon(client.watch_trades(BTC))
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
    await asyncio.sleep(0.3)
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
    await asyncio.sleep(0.3)
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
    await asyncio.sleep(0.3)
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
