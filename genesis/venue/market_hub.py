"""``MarketHub``: one set of ccxt.pro watch loops per daemon, shared by every execution.

The hub owns the watch loops of one ``ccxt.pro`` client (unmodified): per symbol best bid/ask
(``watch_bids_asks``, Binance ``@bookTicker``), the trade tape (``watch_trades``, ``@trade``)
and 1-minute klines (``watch_ohlcv``, ``@kline_1m``); per account the user data stream
(``watch_orders`` and ``watch_my_trades`` over the WebSocket API). A symbol is subscribed once
however many runners trade it (``subscriptions`` counts the loops started).

Each loop reconnects after a dropped connection with exponential backoff and full jitter.
``StreamState`` says whether a stream is up, since when it is down, and how many times it
reconnected (a reconnect is a gap: what it may have missed must be read again over REST).
Klines: ccxt does not hand out Binance's ``x`` (closed) flag, so a minute counts as closed
when the stream moved on to a later minute on the same connection.

**Stalls**: a market stream that is open but has sent nothing for its ``stall_after_seconds``
(exchange seconds, per stream: ``book``, ``trade``, ``kline``) is treated as dropped: its
connection is closed through ccxt (``client.on_error``, as ccxt's own keep-alive does), and
the loop reconnects with backoff. The user data stream is legitimately silent while no order
changes, so silence is no evidence there (a gap in it shows in fills, read over REST).

**Trades**: every trade the stream delivers is counted, once, into the symbol's
``TradeVolume`` (``genesis.venue.trade_volume``) while the connection covers its time.
``on_user_reconnect`` callbacks run (as a named task) each time the user stream comes back
after a drop: reconciliation (``genesis.venue.stream_reconcile``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Awaitable, Callable, Mapping

import ccxt.async_support as ccxt
import structlog

from genesis.venue.ccxt_errors import describe
from genesis.venue.stream_feeds import (USER_ORDERS_KEPT, Backoff, StreamState, SymbolFeed,
                                        UserFeed, forget_oldest)

__all__ = ["USER_ORDERS_KEPT", "Backoff", "MarketHub", "StreamStalled", "StreamState",
           "SymbolFeed", "UserFeed", "forget_oldest", "DEFAULT_STALL_AFTER_SECONDS"]
log = structlog.get_logger("genesis.venue.market_hub")
REFRESH_SECONDS = 0.1
DEFAULT_STALL_AFTER_SECONDS = {"book": 60.0, "trade": 30.0, "kline": 10.0}


class StreamStalled(ccxt.NetworkError):
    """An open stream sent nothing for longer than its stall time: treated as dropped."""


class MarketHub:
    """Shared ccxt.pro watch loops (see module docstring). ``now_ms``: the venue clock (stamps
    book tops that carry no exchange time, times trades' coverage and silences);
    ``stall_after_seconds``: per stream (``book``, ``trade``, ``kline``); ``time_scale``: the
    exchange's clock runs this many times faster than the wall clock (a paper exchange)."""

    def __init__(self, exchange: Any, now_ms: Callable[[], int], *, backoff: Backoff = Backoff(),
                 seed: int | None = None, stall_after_seconds: Mapping[str, float] | None = None,
                 time_scale: float = 1.0):
        self.ex = exchange
        self._now_ms = now_ms
        self.backoff = backoff
        self.stall_after_seconds = {**DEFAULT_STALL_AFTER_SECONDS, **(stall_after_seconds or {})}
        self.time_scale = time_scale
        self._rng = random.Random(seed)
        self.feeds: dict[str, SymbolFeed] = {}
        self.user = UserFeed()
        self.subscriptions: dict[str, int] = {}  # "<symbol> <stream>" -> watch loops started
        self.on_user_reconnect: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._user_started = False
        self._closed = False

    def feed(self, symbol: str) -> SymbolFeed:
        """The symbol's feed, subscribing its market streams on first use."""
        feed = self.feeds.get(symbol)
        if feed is None:
            feed = self.feeds[symbol] = SymbolFeed(symbol)
            feed.volume.time_scale = self.time_scale
            self._start(f"{symbol} bookTicker", feed.book_state,
                        lambda: self.ex.watch_bids_asks([symbol]),
                        lambda data, _r: feed.on_bids_asks(
                            {**(getattr(self.ex, "bidsasks", None) or {}), **(data or {})},
                            self._now_ms()), kind="book", hint=f"bookTicker@{symbol}",
                        on_down=feed.book_dropped)
            self._start(f"{symbol} trade", feed.trade_state, lambda: self.ex.watch_trades(symbol),
                        lambda _data, _r: feed.volume.ingest(self._cached_trades(symbol), self._now_ms()),
                        kind="trade", hint=f"trade::{symbol}",
                        on_up=lambda: feed.volume.stream_up(self._now_ms()),
                        on_down=feed.volume.stream_down)
            self._start(f"{symbol} kline_1m", feed.kline_state,
                        lambda: self.ex.watch_ohlcv(symbol, "1m"),
                        lambda data, r: feed.on_klines(data or [], self._cached_klines(symbol), r),
                        kind="kline", hint=f"ohlcv::{symbol}::1m")
        return feed

    def start_user_stream(self) -> UserFeed:
        """Subscribe the account's user data stream (once)."""
        if not self._user_started:
            self._user_started = True
            # ccxt's caches hold every update, also those between two watch calls: only what
            # changed since the last look is taken from them
            self._start("user orders", self.user.orders_state, lambda: self.ex.watch_orders(),
                        lambda data, _r: self.user.on_order_cache(list(self.ex.orders or data or [])))
            self._start("user trades", self.user.trades_state, lambda: self.ex.watch_my_trades(),
                        lambda data, _r: self.user.on_trade_cache(list(self.ex.myTrades or data or [])),
                        on_up=lambda: self._user_back(self.user.trades_state),
                        on_down=self.user.trades_dropped)
        return self.user

    def _user_back(self, state: StreamState) -> None:
        """The user stream subscribed again after a drop: run the reconnect callbacks now (on
        the trades loop's return: both loops share one subscription)."""
        if state.reconnects == 0:
            return
        self._tasks = [t for t in self._tasks if not t.done()]
        for callback in self.on_user_reconnect:
            self._tasks.append(asyncio.create_task(callback(), name="user stream reconcile"))
    def watch(self, name: str, state: StreamState, watch: Callable[[], Awaitable[Any]],
              on_data: Callable[[Any, bool], None]) -> None:
        """One more watch loop on the hub's client, reconnecting and reporting like the others
        (a ``name`` starting with "user" authenticates the user data stream first)."""
        self._start(name, state, watch, on_data)

    def _start(self, name: str, state: StreamState, watch: Callable[[], Awaitable[Any]],
               on_data: Callable[[Any, bool], Any], *, kind: str | None = None,
               hint: str | None = None, on_up: Callable[[], None] | None = None,
               on_down: Callable[[], None] | None = None) -> None:
        """One watch loop; ``kind``: its stall time's name (None: never stalls); ``hint``: the
        ccxt subscription hash its connection carries; ``on_up`` / ``on_down``: its connection
        subscribed / dropped."""
        self.subscriptions[name] = self.subscriptions.get(name, 0) + 1
        stream = _Stream(name, state, watch, on_data, kind, hint, on_up or _nothing,
                         on_down or _nothing)
        self._tasks.append(asyncio.create_task(self._loop(stream), name=f"stream {name}"))

    def _cached_klines(self, symbol: str) -> list[list[Any]]:
        return list(((getattr(self.ex, "ohlcvs", None) or {}).get(symbol) or {}).get("1m") or [])

    def _cached_trades(self, symbol: str) -> list[dict[str, Any]]:
        return list((getattr(self.ex, "trades", None) or {}).get(symbol) or [])

    def _market_clients(self, hint: str | None) -> list[Any]:
        """ccxt's clients on the market streams' URL (those carrying ``hint``, the end of a ccxt
        subscription hash, when any does)."""
        ws = (self.ex.urls.get("api") or {}).get("ws") or {}
        base = ws.get("spot") if isinstance(ws, dict) else None
        clients = [c for c in list(getattr(self.ex, "clients", {}).values())
                   if base and str(getattr(c, "url", "")).startswith(base)]
        carrying = [c for c in clients if hint is not None and any(
            str(key).endswith(hint) for key in (getattr(c, "subscriptions", None) or {}))]
        return carrying if hint is not None and carrying else clients

    def _market_connected(self, hint: str | None = None) -> bool:
        """True when ccxt holds an open connection to the market streams' URL (the stream's own
        when it can be told): a quiet market sends nothing for a while; it is up all the same."""
        for client in self._market_clients(hint):
            connected = getattr(client, "connected", None)
            if (connected is not None and connected.done() and not connected.cancelled()
                    and connected.exception() is None):
                return True
        return False

    def _stalled(self, s: "_Stream") -> bool:
        limit = self.stall_after_seconds.get(s.kind) if s.kind else None
        return bool(limit) and s.state.up and s.state.silent_for(self._now_ms(), self.time_scale) >= limit

    def _drop_stalled(self, s: "_Stream") -> StreamStalled:
        """Close the stalled stream's connection the way ccxt drops a dead one."""
        silent = s.state.silent_for(self._now_ms(), self.time_scale)
        error = StreamStalled(f"{s.name}: open but silent for {silent:.1f} s "
                              f"(stall_after_seconds.{s.kind} {self.stall_after_seconds[s.kind]:g})")
        s.state.stalls += 1
        for client in self._market_clients(s.hint):
            client.on_error(error)
        return error

    async def _watch(self, s: "_Stream") -> Any:
        """One watch call; the stream counts as up once subscribed, before its first message.
        While it waits, ccxt's caches are read again every ``REFRESH_SECONDS``: messages that
        arrive between two watch calls resolve no one's future, and only the cache has them.
        A stream silent past its stall time raises ``StreamStalled`` (its connection closed)."""
        if s.name.startswith("user"):
            await self.ex.authenticate()  # confirmed userDataStream.subscribe.signature
            self._mark_up(s)
        task = asyncio.ensure_future(s.watch())
        task.add_done_callback(_retrieve)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=REFRESH_SECONDS)
                if task.done():
                    break
                if not s.state.up and self._market_connected(s.hint):
                    self._mark_up(s)
                if s.state.up and not s.state.gap:
                    s.on_data(None, False)
                if self._stalled(s):
                    raise self._drop_stalled(s)
        finally:
            if not task.done():
                task.cancel()
        return task.result()

    def _mark_up(self, s: "_Stream") -> None:
        if not s.state.up:
            s.state.heard(self._now_ms())
            s.on_up()
        s.state.mark_up()

    async def _loop(self, s: "_Stream") -> None:
        attempt = 0
        while not self._closed:
            try:
                data = await self._watch(s)
            except asyncio.CancelledError:
                raise
            except (ccxt.BaseError, KeyError) as exc:
                # KeyError: ccxt 4.5's own cleanup after a refused user-stream subscription
                if s.state.up:
                    s.on_down()
                s.state.mark_down(describe(exc))
                delay = self.backoff.delay(attempt, self._rng)
                log.warning("stream_down", stream=s.name, error=s.state.last_error,
                            retry_in_seconds=round(delay, 3))
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self._mark_up(s)
            s.state.heard(self._now_ms())
            reconnected, s.state.gap = s.state.gap, False
            if reconnected:
                log.info("stream_reconnected", stream=s.name, reconnects=s.state.reconnects)
            attempt = 0
            s.on_data(data, reconnected)

    async def close(self) -> None:
        """Stop every watch loop (the client itself is closed by its owner)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class _Stream:
    """One watch loop's parts (see ``MarketHub._start``)."""

    __slots__ = ("name", "state", "watch", "on_data", "kind", "hint", "on_up", "on_down")

    def __init__(self, name: str, state: StreamState, watch: Callable[[], Awaitable[Any]],
                 on_data: Callable[[Any, bool], Any], kind: str | None, hint: str | None,
                 on_up: Callable[[], None], on_down: Callable[[], None]):
        self.name, self.state, self.watch, self.on_data = name, state, watch, on_data
        self.kind, self.hint, self.on_up, self.on_down = kind, hint, on_up, on_down


def _nothing() -> None:
    return None


def _retrieve(task: "asyncio.Future[Any]") -> None:
    """A watch abandoned (stall, close) may still fail: its error is expected, not logged."""
    if not task.cancelled():
        task.exception()
