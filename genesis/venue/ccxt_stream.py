"""``StreamingCcxtVenue``: ``CcxtVenue`` fed by the exchange's WebSocket streams
(``genesis run --venue ccxt:binance --streams``). See ``docs/ccxt.md``.

* Market data from the daemon's ``MarketHub`` (unmodified ``ccxt.pro`` watch loops): the book
  top from ``@bookTicker`` and closed 1-minute candles from ``@kline_1m`` while the stream is up;
  candles from before the subscription (history) are read once over REST and kept.
* Fills from the user data stream: an order's fills are its ``executionReport`` trades, awaited
  (not polled) until they add up to what the exchange reports filled.
* REST stays for placing and cancelling, for history and for reconciliation: when a stream is
  down the venue reads over REST; after the user stream reconnected, an order's fills are read
  again over REST and merged by trade id (nothing missed, nothing counted twice).
* Balances (the tier gate's equity) from the user data stream's ``watch_balance`` and prices
  shared by every caller (``genesis.venue.account_stream``).
* A market stream down for longer than ``unavailable_after_seconds`` makes ``book_top`` raise
  ``MarketDataUnavailable``: the engine holds new slices (recorded: ``SlicingHeld``) and retries.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from decimal import Decimal
from typing import Any, ContextManager

import ccxt.pro as ccxtpro

from genesis.domain.orders import BookTop, Fill, OrderReport, OrderRequest
from genesis.venue.account_stream import AccountBalances, SharedTickers, equity_in_usdt
from genesis.venue.base import Candle, MarketDataUnavailable
from genesis.venue.ccxt_support import (build_exchange, dec, distinct_trades, dt_to_ms, ms_to_dt,
                                        point_ccxt_at)
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.market_hub import USER_ORDERS_KEPT, Backoff, MarketHub, StreamState, forget_oldest
from genesis.venue.stream_feeds import FINAL_CCXT_STATUSES
from genesis.venue.stream_reconcile import StreamReconciler
from genesis.venue.volume_reader import VolumeReader

MINUTE_MS = 60_000
DEFAULT_UNAVAILABLE_AFTER_SECONDS = 60.0
DEFAULT_FILL_WAIT_SECONDS = 3.0
# ccxt.pro's order cache (``ordersLimit``, 1000 by default): ccxt looks an updated order up in it
# by a linear scan of its index on every executionReport (a tenth of the engine's CPU at 300
# parents). The user feed keeps every order itself (``USER_ORDERS_KEPT``) and reads the cache
# at every message and 10 times a second, so it only has to hold the orders updated between
# two reads and those still open: 200 is 20 s of orders at the order budget's 97 per 10 s.
STREAM_ORDERS_CACHED = 200


class StreamingCcxtVenue(CcxtVenue):
    """A ccxt.pro exchange as a ``Venue`` reading from streams (see module docstring).

    Takes ``CcxtVenue``'s arguments; the client is built from ``ccxt.pro`` unless injected.
    ``hub`` defaults to one over this venue's client (``stall_after_seconds`` per stream and
    ``backoff`` for it). ``fill_wait_seconds``: how long to await the user stream's trades of
    an order before reading them over REST."""

    def __init__(self, exchange_id: str, *, credentials: Credentials | None = None,
                 exchange_url: str | None = None, hub: MarketHub | None = None,
                 unavailable_after_seconds: float = DEFAULT_UNAVAILABLE_AFTER_SECONDS,
                 fill_wait_seconds: float = DEFAULT_FILL_WAIT_SECONDS,
                 stall_after_seconds: dict[str, float] | None = None,
                 backoff: Backoff | None = None, **kwargs: Any):
        if kwargs.get("exchange") is None:
            kwargs["exchange"] = build_exchange(
                exchange_id, credentials, exchange_url, kwargs.pop("timeout_ms", 10_000),
                {"ordersLimit": STREAM_ORDERS_CACHED, **(kwargs.pop("options", None) or {})},
                kwargs.pop("config", None),
                kwargs.get("time_scale", 1.0), module=ccxtpro)
            if exchange_url:
                point_ccxt_at(kwargs["exchange"], exchange_url)
        super().__init__(exchange_id, credentials=credentials, exchange_url=exchange_url, **kwargs)
        self.hub = hub or MarketHub(self.ex, lambda: dt_to_ms(self.clock.now()),
                                    backoff=backoff or Backoff(),
                                    stall_after_seconds=stall_after_seconds,
                                    time_scale=kwargs.get("time_scale", 1.0))
        self.unavailable_after_seconds = unavailable_after_seconds
        self.fill_wait_seconds = fill_wait_seconds
        # order id -> the user-stream reconnect count as of which the stream saw it whole (at
        # placement, or the reconciliation after a reconnect); behind the count: read REST
        self.placed_at_reconnects: dict[str, int] = {}
        self.reconciler = StreamReconciler(self)
        self.hub.on_user_reconnect.append(self.reconciler.run)
        # the traded volume: the trade stream's, REST for what it did not cover
        self.volumes = VolumeReader(self, lambda symbol: self.hub.feed(symbol).volume)
        self.account = AccountBalances(self.hub, lambda: self.calls.call(
            "fetch_balance", lambda: self.ex.fetch_balance()), self.clock)
        self.tickers = SharedTickers(self.hub, lambda symbols: self.calls.call(
            "fetch_tickers", lambda: self.ex.fetch_tickers(symbols)), self.clock)

    # ------------------------------------------------------------------ market data
    async def book_top(self, symbol: str) -> BookTop:
        """Best bid/ask from the ``@bookTicker`` stream; over REST while it is down (and once
        after subscribing, or subscribing again after a drop, which forgets the stream's last
        book: a quiet book pushes nothing until it changes)."""
        feed = self.hub.feed(symbol)
        if feed.book_state.up and feed.book is not None:
            return BookTop(feed.book.bid, feed.book.ask, self.clock.now())
        self._check_available(symbol, feed.book_state)
        drops = feed.book_state.reconnects
        top = await super().book_top(symbol)
        if feed.book_state.up and feed.book is None and feed.book_state.reconnects == drops:
            # subscribed: every change from now on is pushed, so this snapshot holds until then
            # (not one read across a drop: the stream dropping forgets the book, ``book_dropped``)
            feed.book = top
        return top

    async def candles(self, symbol: str, start: datetime, end: datetime,
                      timeframe: str = "1m") -> list[Candle]:
        """Closed 1-minute candles from the kline stream and the kept history; only minutes
        neither has seen are read over REST (and kept: a closed candle never changes)."""
        if timeframe != "1m":
            return await super().candles(symbol, start, end, timeframe)
        feed = self.hub.feed(symbol)
        now_ms, start_ms, end_ms = dt_to_ms(self.clock.now()), dt_to_ms(start), dt_to_ms(end)
        first = -(-start_ms // MINUTE_MS) * MINUTE_MS
        wanted = range(first, min(end_ms, now_ms - MINUTE_MS + 1), MINUTE_MS)
        missing = [t for t in wanted if t not in feed.closed and t not in feed.absent]
        if missing and feed.kline_state.up and feed.kline_connection_start is not None \
                and missing[0] >= feed.kline_connection_start:
            # minutes this connection saw (the one that just closed): the stream will close them
            deadline = time.monotonic() + self.fill_wait_seconds
            while missing and feed.kline_state.up and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(feed.changed.wait(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    break
                missing = [t for t in wanted if t not in feed.closed]
        if missing:
            async with feed.rest_lock:  # one REST read for concurrent callers
                missing = [t for t in wanted if t not in feed.closed and t not in feed.absent]
                if missing:
                    rest = await super().candles(symbol, ms_to_dt(missing[0]), end, timeframe)
                    feed.keep_closed([[dt_to_ms(c.open_time), c.open, c.high, c.low, c.close,
                                       c.volume] for c in rest], missing)
        return [Candle(ms_to_dt(t), *(dec(v) for v in feed.klines[t][1:6]))
                for t in wanted if t in feed.closed]

    def _check_available(self, symbol: str, state: StreamState) -> None:
        if state.down_for() > self.unavailable_after_seconds:
            raise MarketDataUnavailable(
                f"{symbol}: market data stream down for {state.down_for():.0f} s "
                f"({state.last_error or 'no message yet'}); holding new slices until it is back",
                symbol, state.down_for(), retry_after_seconds=min(5.0, self.unavailable_after_seconds))

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Base volume traded in ``[start, min(end, now))`` (``MeasuresTradedVolume``, what the
        participation cap is held to): the trade stream's count, REST (klines, aggTrades) for
        what it did not cover; a lower bound (``genesis.venue.trade_volume``)."""
        return await self.volumes.traded_volume(symbol, start, end)

    def traded_volume_waiter(self, symbol: str, start: datetime,
                             volume: Decimal) -> ContextManager[asyncio.Event]:
        """An event set once the trade stream has counted ``volume`` since ``start``
        (``WakesOnTradedVolume``; ``genesis.venue.volume_waiters``): what REST reads is not
        watched, the waiter's timed look covers it."""
        counted = self.hub.feed(symbol).volume

        def counted_since(start_ms: int) -> Decimal:
            now_ms = dt_to_ms(self.clock.now())
            return counted.volume(start_ms, now_ms, now_ms)

        return counted.waiters.waiter(dt_to_ms(start), volume, counted_since)

    # ------------------------------------------------------------------ account
    async def equity_usdt(self) -> Decimal:
        """As ``CcxtVenue.equity_usdt``, from the user stream's balances and shared prices
        (``genesis.venue.account_stream``): no REST read per submission."""
        totals = await self.account.totals()
        markets = self.ex.markets or {}
        prices = await self.tickers.prices(
            f"{a}/USDT" for a in totals if a != "USDT" and f"{a}/USDT" in markets)
        return equity_in_usdt(totals, prices, self._unpriced)

    # ------------------------------------------------------------------ orders and fills
    async def place_order(self, request: OrderRequest) -> OrderReport:
        """As ``CcxtVenue.place_order``, the user data stream subscribed (and up) first, so no
        ``executionReport`` of the order is missed."""
        await self.user_stream_ready()
        as_of = self.hub.user.trades_state.reconnects
        report = await super().place_order(request)
        if report.venue_order_id is not None:
            self.placed_at_reconnects.setdefault(report.venue_order_id, as_of)
            forget_oldest(self.placed_at_reconnects, USER_ORDERS_KEPT)
            self.reconciler.order_placed(report.venue_order_id, request.symbol,
                                         request.client_order_id)
        return report

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """From the user data stream when it saw this order (placed here) end; else REST."""
        final = self._final_in_stream(client_order_id)
        if final is not None:
            return await self._stream_report(symbol, client_order_id, final)
        return await super().fetch_order(symbol, client_order_id)

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """An order the user data stream saw end (filled, expired) needs no cancel: its final
        report comes from the stream; otherwise cancelled over REST."""
        final = self._final_in_stream(client_order_id)
        if final is not None:
            return await self._stream_report(symbol, client_order_id, final)
        return await super().cancel_order(symbol, client_order_id)

    async def _stream_report(self, symbol: str, cid: str, order: dict[str, Any]) -> OrderReport:
        """The report of an order from the stream's state: its fills are the feed's own trades
        of the order (by trade id), not ccxt's ``order["trades"]`` (ccxt appends every
        ``executionReport`` trade to it, a duplicated event twice, and misses what REST read
        after a gap); ccxt's entries are merged into the feed's first, by trade id."""
        user, order_id = self.hub.user, str(order["id"])
        user.merge_trades(order_id, distinct_trades(order.get("trades")))
        return await self._report(symbol, cid, {**order, "trades": self._stream_trades(order_id)})

    def _final_in_stream(self, client_order_id: str) -> dict[str, Any] | None:
        """The stream's last state of an order this venue placed, if final and the stream has
        been up without a gap since the placement (else it may have missed events)."""
        user = self.hub.user
        order_id = user.by_client_id.get(client_order_id)
        if order_id is None or not user.healthy:
            return None
        if self.placed_at_reconnects.get(order_id) != user.trades_state.reconnects:
            return None
        order = user.orders.get(order_id)
        if order is None or order.get("status") not in FINAL_CCXT_STATUSES:
            return None
        return order

    async def user_stream_ready(self, timeout_seconds: float | None = None) -> bool:
        """Subscribe the user data stream and wait (bounded) until it is up."""
        user = self.hub.start_user_stream()
        deadline = time.monotonic() + (self.fill_wait_seconds if timeout_seconds is None
                                       else timeout_seconds)
        while not user.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return user.healthy

    async def order_fills(self, symbol: str, cid: str, order: dict[str, Any],
                          filled: Decimal) -> list[Fill]:
        """The placement response's fills when they add up; else the order's trades from the
        user data stream, awaited until they add up to ``filled``; over REST (merged into the
        stream's by trade id) when the stream is down, had a gap since the order was placed,
        or does not deliver them within ``fill_wait_seconds`` (REST answers the complete set)."""
        trades = distinct_trades(order.get("trades"))  # a trade id once
        immediate = [self.fill_from_trade(t, cid) for t in trades]
        user, order_id = self.hub.user, str(order["id"])
        user.merge_trades(order_id, trades)
        if sum((f.qty for f in immediate), Decimal(0)) == filled:
            return immediate
        gap = (user.trades_state.reconnects != self.placed_at_reconnects.get(
            order_id, user.trades_state.reconnects))
        deadline = time.monotonic() + self.fill_wait_seconds
        while user.healthy and not gap and time.monotonic() < deadline:
            fills = self._stream_fills(order_id, cid)
            if sum((f.qty for f in fills), Decimal(0)) == filled:
                return fills
            try:
                await asyncio.wait_for(user.changed.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        return await self.fetch_fills(symbol, order_id, cid)  # the complete set, by trade id

    def _stream_fills(self, order_id: str, cid: str) -> list[Fill]:
        return [self.fill_from_trade(t, cid) for t in self._stream_trades(order_id)]

    def _stream_trades(self, order_id: str) -> list[dict[str, Any]]:
        """The feed's trades of an order (one per trade id), in trade id order."""
        trades = self.hub.user.trades.get(order_id, {})
        return sorted(trades.values(), key=lambda t: (len(str(t["id"])), str(t["id"])))

    def stream_status(self) -> dict[str, Any]:
        """Per stream: up, seconds down, reconnects, stalls found; the subscriptions started;
        the user stream's reconciliations."""
        states = {f"{s} {n}": st for s, f in self.hub.feeds.items()
                  for n, st in (("bookTicker", f.book_state), ("kline_1m", f.kline_state),
                                ("trade", f.trade_state))}
        states.update({"user orders": self.hub.user.orders_state,
                       "user trades": self.hub.user.trades_state})
        return {"streams": {k: {"up": st.up, "down_seconds": round(st.down_for(), 3),
                                "reconnects": st.reconnects, "stalls": st.stalls}
                            for k, st in states.items()},
                "subscriptions": dict(self.hub.subscriptions),
                "reconciliations": self.reconciler.runs}

    async def close(self) -> None:
        """Stop the hub's watch loops and close the client."""
        await self.hub.close()
        await super().close()
