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
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import ccxt.async_support as ccxt
import structlog

from genesis.domain.orders import BookTop
from genesis.venue.ccxt_errors import describe
from genesis.venue.ccxt_support import dec, ms_to_dt

log = structlog.get_logger("genesis.venue.market_hub")
TAPE_LENGTH = 2000
KLINE_MINUTES = 30 * 24 * 60  # kept per symbol: the volume curve reads 20 days
REFRESH_SECONDS = 0.1
USER_ORDERS_KEPT = 20_000  # orders (and their trades) kept; older ones are read over REST


def forget_oldest(kept: dict[Any, Any], limit: int) -> None:
    """Drop the oldest entries (insertion order) of ``kept`` beyond ``limit``."""
    if len(kept) <= limit:
        return
    for key in list(kept)[:max(0, len(kept) - limit)]:
        kept.pop(key, None)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``base * 2**attempt`` capped at ``max``, with full jitter."""

    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_seconds, self.base_seconds * 2 ** min(attempt, 16)))


@dataclass
class StreamState:
    """Health of one watch loop (wall-clock monotonic seconds)."""

    up: bool = False
    down_since: float | None = field(default_factory=time.monotonic)
    reconnects: int = 0
    last_error: str = ""
    gap: bool = False  # the connection dropped since the last message handed out

    def mark_up(self) -> None:
        """The stream is subscribed (or delivered a message)."""
        self.up, self.down_since = True, None

    def mark_down(self, error: str) -> None:
        if self.up:
            self.reconnects += 1
            self.gap = True
        self.up, self.last_error = False, error
        if self.down_since is None:
            self.down_since = time.monotonic()

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since


@dataclass
class SymbolFeed:
    """What the market streams told about one symbol."""

    symbol: str
    book: BookTop | None = None
    trades: deque = field(default_factory=lambda: deque(maxlen=TAPE_LENGTH))
    klines: dict[int, list[Any]] = field(default_factory=dict)  # open ms -> [t, o, h, l, c, v]
    closed: set[int] = field(default_factory=set)  # open ms of minutes seen to their end
    kline_connection_start: int | None = None  # first minute seen on the current connection
    book_state: StreamState = field(default_factory=StreamState)
    kline_state: StreamState = field(default_factory=StreamState)
    trade_state: StreamState = field(default_factory=StreamState)

    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set (and replaced) per kline
    absent: set[int] = field(default_factory=set)  # closed minutes REST has no candle for
    rest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def keep_closed(self, rows: list[list[Any]], asked: list[int]) -> None:
        """Closed candles read over REST for the minutes ``asked``: kept (a closed candle never
        changes); asked minutes it has no candle for are remembered as absent."""
        got = {int(row[0]) for row in rows}
        for row in rows:
            t = int(row[0])
            if t not in self.closed:
                self.klines[t] = list(row)
                self.closed.add(t)
        self.absent.update(t for t in asked if t not in got and t not in self.closed)

    def on_klines(self, new: list[list[Any]], cached: list[list[Any]], reconnected: bool) -> None:
        """``new``: the rows the watch call returned; ``cached``: ccxt's whole kline cache
        (several messages can arrive between two watch calls: only the cache has them all)."""
        if new and (reconnected or self.kline_connection_start is None):
            self.kline_connection_start = max(int(row[0]) for row in new)
        if self.kline_connection_start is None:
            return
        mine = []  # rows of this connection; ccxt's cache is in time order, newest last
        for row in reversed(cached):
            if int(row[0]) < self.kline_connection_start or int(row[0]) in self.closed:
                break  # older than this connection, or final already
            mine.append(row)
        if not mine:
            return
        latest = max(int(row[0]) for row in mine)
        for row in mine:
            t = int(row[0])
            self.klines[t] = list(row)
            if t < latest:  # a later minute arrived on this connection: this one was seen to its end
                self.closed.add(t)
        if len(self.klines) > KLINE_MINUTES:
            for t in sorted(self.klines)[:-KLINE_MINUTES]:
                self.klines.pop(t)
                self.closed.discard(t)
            self.absent = {t for t in self.absent if t >= min(self.klines)}
        self.changed.set()
        self.changed = asyncio.Event()

    def on_bids_asks(self, tickers: dict[str, Any], now_ms: int) -> None:
        t = tickers.get(self.symbol)
        if t and t.get("bid") is not None and t.get("ask") is not None:
            stamp = t.get("timestamp") or now_ms
            self.book = BookTop(dec(t["bid"]), dec(t["ask"]), ms_to_dt(stamp))


@dataclass
class UserFeed:
    """Orders and trades of the account from the user data stream, keyed by exchange order id."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_client_id: dict[str, str] = field(default_factory=dict)  # client order id -> order id
    trades: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # order -> id -> t
    orders_state: StreamState = field(default_factory=StreamState)
    trades_state: StreamState = field(default_factory=StreamState)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_orders(self, orders: list[dict[str, Any]]) -> None:
        for o in orders:
            if o.get("id") is not None:
                self.orders[str(o["id"])] = dict(o)
                if o.get("clientOrderId"):
                    self.by_client_id[str(o["clientOrderId"])] = str(o["id"])
        for kept in (self.orders, self.by_client_id, self.trades):
            forget_oldest(kept, USER_ORDERS_KEPT)
        self._notify()

    def on_trades(self, trades: list[dict[str, Any]]) -> None:
        for t in trades:
            if t.get("order") is not None and t.get("id") is not None:
                self.trades.setdefault(str(t["order"]), {})[str(t["id"])] = dict(t)  # dedup by id
        self._notify()

    def merge_trades(self, order_id: str, trades: list[dict[str, Any]]) -> None:
        """Trades read over REST after a gap, merged by trade id (never counted twice)."""
        self.on_trades([{**t, "order": order_id} for t in trades])

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self.orders_state.up and self.trades_state.up


class MarketHub:
    """Shared ccxt.pro watch loops (see module docstring). ``now_ms`` stamps book tops that
    carry no exchange time."""

    def __init__(self, exchange: Any, now_ms: Callable[[], int], *, backoff: Backoff = Backoff(),
                 seed: int | None = None):
        self.ex = exchange
        self._now_ms = now_ms
        self.backoff = backoff
        self._rng = random.Random(seed)
        self.feeds: dict[str, SymbolFeed] = {}
        self.user = UserFeed()
        self.subscriptions: dict[str, int] = {}  # "<symbol> <stream>" -> watch loops started
        self._tasks: list[asyncio.Task[None]] = []
        self._user_started = False
        self._closed = False

    def feed(self, symbol: str) -> SymbolFeed:
        """The symbol's feed, subscribing its market streams on first use."""
        feed = self.feeds.get(symbol)
        if feed is None:
            feed = self.feeds[symbol] = SymbolFeed(symbol)
            self._start(f"{symbol} bookTicker", feed.book_state,
                        lambda: self.ex.watch_bids_asks([symbol]),
                        lambda data, _r: feed.on_bids_asks(
                            {**(getattr(self.ex, "bidsasks", None) or {}), **(data or {})},
                            self._now_ms()))
            self._start(f"{symbol} trade", feed.trade_state, lambda: self.ex.watch_trades(symbol),
                        lambda data, _r: feed.trades.extend(data or []))
            self._start(f"{symbol} kline_1m", feed.kline_state,
                        lambda: self.ex.watch_ohlcv(symbol, "1m"),
                        lambda data, r: feed.on_klines(data or [], self._cached_klines(symbol), r))
        return feed

    def start_user_stream(self) -> UserFeed:
        """Subscribe the account's user data stream (once)."""
        if not self._user_started:
            self._user_started = True
            # ccxt's caches hold every update, also those between two watch calls
            self._start("user orders", self.user.orders_state, lambda: self.ex.watch_orders(),
                        lambda data, _r: self.user.on_orders([*(self.ex.orders or []), *(data or [])]))
            self._start("user trades", self.user.trades_state, lambda: self.ex.watch_my_trades(),
                        lambda data, _r: self.user.on_trades([*(self.ex.myTrades or []), *(data or [])]))
        return self.user

    def watch(self, name: str, state: StreamState, watch: Callable[[], Awaitable[Any]],
              on_data: Callable[[Any, bool], None]) -> None:
        """One more watch loop on the hub's client, reconnecting and reporting like the others
        (a ``name`` starting with "user" authenticates the user data stream first)."""
        self._start(name, state, watch, on_data)

    def _start(self, name: str, state: StreamState, watch: Callable[[], Awaitable[Any]],
               on_data: Callable[[Any, bool], None]) -> None:
        self.subscriptions[name] = self.subscriptions.get(name, 0) + 1
        self._tasks.append(asyncio.create_task(self._loop(name, state, watch, on_data),
                                               name=f"stream {name}"))

    def _cached_klines(self, symbol: str) -> list[list[Any]]:
        return list(((getattr(self.ex, "ohlcvs", None) or {}).get(symbol) or {}).get("1m") or [])

    def _market_connected(self) -> bool:
        """True when ccxt holds an open connection to the market streams' URL (a quiet market
        sends nothing for a while; the stream is up all the same)."""
        ws = (self.ex.urls.get("api") or {}).get("ws") or {}
        base = ws.get("spot") if isinstance(ws, dict) else None
        for client in list(getattr(self.ex, "clients", {}).values()):
            connected = getattr(client, "connected", None)
            if (base and str(getattr(client, "url", "")).startswith(base) and connected is not None
                    and connected.done() and not connected.cancelled()
                    and connected.exception() is None):
                return True
        return False

    async def _watch(self, name: str, state: StreamState, watch: Callable[[], Awaitable[Any]],
                     refresh: Callable[[], None]) -> Any:
        """One watch call; the stream counts as up once subscribed, before its first message.
        While it waits, ccxt's caches are read again every ``REFRESH_SECONDS``: messages that
        arrive between two watch calls resolve no one's future, and only the cache has them."""
        if name.startswith("user"):
            await self.ex.authenticate()  # confirmed userDataStream.subscribe.signature
            if not state.up:
                state.mark_up()
        task = asyncio.ensure_future(watch())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=REFRESH_SECONDS)
                if task.done():
                    break
                if not state.up and self._market_connected():
                    state.mark_up()
                if state.up and not state.gap:
                    refresh()
        finally:
            if not task.done():
                task.cancel()
        return task.result()

    async def _loop(self, name: str, state: StreamState, watch: Callable[[], Awaitable[Any]],
                    on_data: Callable[[Any, bool], None]) -> None:
        attempt = 0
        while not self._closed:
            try:
                data = await self._watch(name, state, watch, lambda: on_data(None, False))
            except asyncio.CancelledError:
                raise
            except (ccxt.BaseError, KeyError) as exc:
                # KeyError: ccxt 4.5's own cleanup after a refused user-stream subscription
                state.mark_down(describe(exc))
                delay = self.backoff.delay(attempt, self._rng)
                log.warning("stream_down", stream=name, error=state.last_error,
                            retry_in_seconds=round(delay, 3))
                attempt += 1
                await asyncio.sleep(delay)
                continue
            state.mark_up()
            reconnected, state.gap = state.gap, False
            if reconnected:
                log.info("stream_reconnected", stream=name, reconnects=state.reconnects)
            attempt = 0
            on_data(data, reconnected)

    async def close(self) -> None:
        """Stop every watch loop (the client itself is closed by its owner)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
