"""The book top after the ``@bookTicker`` stream dropped: the stream's last book is forgotten
with the drop, so the first read after the reconnect (before any push) is a REST snapshot,
not the pre-outage bid/ask stamped now. The hub's real watch loop, the client's watch and
REST calls scripted."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal as D
from typing import Any

import ccxt

from genesis.clock import VirtualClock
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.market_hub import Backoff
from tests.test_ccxt_stream import until

BTC = "BTC/USDT"


async def test_the_book_top_after_a_drop_is_not_the_pre_outage_one() -> None:
    venue = StreamingCcxtVenue("binance", exchange_url="http://127.0.0.1:9",
                               clock=VirtualClock(datetime(2026, 1, 1, tzinfo=timezone.utc)),
                               backoff=Backoff(base_seconds=0.01, max_seconds=0.02))
    drop, never = asyncio.Event(), asyncio.Event()
    watches: list[int] = []
    rest_reads: list[str] = []

    async def watch_bids_asks(symbols: Any = None, params: Any = None) -> dict[str, Any]:
        watches.append(1)
        if len(watches) == 1:  # the first push
            return {BTC: {"symbol": BTC, "bid": 100.0, "ask": 101.0, "timestamp": None}}
        if len(watches) == 2:  # the connection drops
            await drop.wait()
            raise ccxt.NetworkError("connection closed")
        await never.wait()  # subscribed again; the book is quiet: nothing pushed
        return {}

    async def blocked(*args: Any, **kwargs: Any) -> Any:
        await never.wait()

    async def fetch_order_book(symbol: str, limit: int | None = None, params: Any = None) -> dict[str, Any]:
        rest_reads.append(symbol)
        return {"bids": [[90.0, 1.0]], "asks": [[91.0, 1.0]], "timestamp": None}  # moved meanwhile

    venue.ex.watch_bids_asks = watch_bids_asks
    venue.ex.watch_trades = venue.ex.watch_ohlcv = blocked
    venue.ex.fetch_order_book = fetch_order_book
    venue.hub._market_connected = lambda hint=None: True  # type: ignore[method-assign]
    try:
        feed = venue.hub.feed(BTC)
        await until(lambda: feed.book is not None and feed.book_state.up, "the first push")
        assert (await venue.book_top(BTC)).bid == D(100) and not rest_reads
        drop.set()
        await until(lambda: feed.book_state.reconnects == 1 and feed.book_state.up, "the reconnect")
        top = await venue.book_top(BTC)
        assert (top.bid, top.ask) == (D(90), D(91)) and rest_reads == [BTC]
        assert (await venue.book_top(BTC)).bid == D(90) and rest_reads == [BTC]  # kept until a push
    finally:
        never.set()
        await venue.close()
