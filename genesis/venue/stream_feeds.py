"""What the WebSocket streams told, kept per symbol (``SymbolFeed``) and per account
(``UserFeed``), and each stream's health (``StreamState``) and reconnect delays (``Backoff``).
Filled by ``genesis.venue.market_hub.MarketHub``'s watch loops."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from genesis.domain.orders import BookTop
from genesis.venue.ccxt_support import dec, ms_to_dt
from genesis.venue.trade_volume import TradeVolume

KLINE_MINUTES = 30 * 24 * 60  # kept per symbol: the volume curve reads 20 days
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
    stalls: int = 0  # times it was found open but silent past its stall time, and closed
    last_message: float = field(default_factory=time.monotonic)  # when it last delivered
    last_message_ms: int = 0  # the same on the venue's clock (epoch ms)

    def mark_up(self) -> None:
        """The stream is subscribed (or delivered a message)."""
        self.up, self.down_since = True, None

    def heard(self, now_ms: int) -> None:
        """It delivered a message (or just subscribed): the stall timer starts again."""
        self.last_message, self.last_message_ms = time.monotonic(), now_ms

    def silent_for(self, now_ms: int, time_scale: float = 1.0) -> float:
        """Exchange seconds since it last delivered: the shorter of the venue clock's and the
        wall clock's (times ``time_scale``), so a clock that jumps or stands still (a paper
        exchange's) never makes a stream look stalled before messages could have come."""
        return min((now_ms - self.last_message_ms) / 1000,
                   (time.monotonic() - self.last_message) * time_scale)

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
    volume: TradeVolume = field(default_factory=TradeVolume)  # the trade stream's, bucketed
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

    def book_dropped(self) -> None:
        """The book stream dropped: its last book top is forgotten (the book moves on unseen),
        so the first read after it is back is a REST snapshot or the next push."""
        self.book = None

    def on_bids_asks(self, tickers: dict[str, Any], now_ms: int) -> None:
        t = tickers.get(self.symbol)
        if t and t.get("bid") is not None and t.get("ask") is not None:
            stamp = t.get("timestamp") or now_ms
            self.book = BookTop(dec(t["bid"]), dec(t["ask"]), ms_to_dt(stamp))


FINAL_CCXT_STATUSES = ("closed", "canceled", "expired", "rejected")


def later_state(known: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ccxt order ``new`` is at least as far along as ``known``: a final state is never
    replaced by an open one, nor a fill quantity by a smaller one."""
    if known.get("status") in FINAL_CCXT_STATUSES and new.get("status") not in FINAL_CCXT_STATUSES:
        return False
    return dec(new.get("filled") or 0) >= dec(known.get("filled") or 0)


@dataclass
class UserFeed:
    """Orders and trades of the account from the user data stream, keyed by exchange order id."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_client_id: dict[str, str] = field(default_factory=dict)  # client order id -> order id
    trades: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # order -> id -> t
    orders_state: StreamState = field(default_factory=StreamState)
    trades_state: StreamState = field(default_factory=StreamState)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _order_update: dict[str, Any] = field(default_factory=dict)  # order id -> its last message taken
    _stream_last_id: dict[str, int] = field(default_factory=dict)  # symbol -> highest trade id the stream delivered
    _reconcile_from: dict[str, int] | None = None  # ``_stream_last_id`` as the stream dropped, until reconciled
    drops: int = 0  # times the trades stream dropped

    def on_order_cache(self, cache: list[dict[str, Any]]) -> None:
        """ccxt's order cache (``ArrayCacheBySymbolById``: an updated order moves to its end,
        carrying the update's message as ``info``): only the orders updated since the last look
        are merged (``on_orders``), the rest is not read again."""
        fresh = []
        for o in reversed(cache):
            info, oid = o.get("info"), o.get("id")
            if info is not None and oid is not None and self._order_update.get(str(oid)) is info:
                break  # this one and every order before it were taken as they are
            fresh.append(o)
        if not fresh:
            return
        for o in fresh:
            if o.get("id") is not None:
                self._order_update[str(o["id"])] = o.get("info")
        forget_oldest(self._order_update, USER_ORDERS_KEPT)
        self.on_orders(fresh[::-1])

    def on_trade_cache(self, cache: list[dict[str, Any]]) -> None:
        """ccxt's trade cache (``ArrayCacheBySymbolById``, newest last, but a trade told again
        moves to its end, behind newer ones): the trades whose id the feed does not hold for
        their order yet are merged (``on_trades``); one it holds is not read again. Looked up
        by id: no position in the cache marks where the new trades start."""
        held, fresh = self.trades, []
        for t in cache:
            oid, tid = t.get("order"), t.get("id")
            if oid is None or tid is None or str(tid) in held.get(str(oid), ()):
                continue
            fresh.append(t)
            if t.get("symbol") and str(tid).isdigit():
                symbol = t["symbol"]
                self._stream_last_id[symbol] = max(int(tid), self._stream_last_id.get(symbol, 0))
        if fresh:
            self.on_trades(fresh)

    def on_orders(self, orders: list[dict[str, Any]]) -> None:
        """Orders' states from the stream (ccxt's cache) or REST, merged so that an order never
        goes back to an earlier state (a late, duplicated or reordered event, or ccxt's cache
        after a gap REST has already filled in)."""
        for o in orders:
            if o.get("id") is not None:
                known = self.orders.get(str(o["id"]))
                if known is not None and not later_state(known, o):
                    continue
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

    def trades_dropped(self) -> None:
        """The trades stream dropped: the highest trade id it delivered per symbol so far is
        where its gap starts (kept across further drops until ``reconciled``)."""
        self.drops += 1
        if self._reconcile_from is None:
            self._reconcile_from = dict(self._stream_last_id)

    def reconcile_from(self, symbol: str) -> int | None:
        """The highest trade id (numeric) the stream delivered on ``symbol`` before its gap
        not yet reconciled (its latest while none is open); None before any. Trades merged
        from REST (a placement response during the gap) do not count: a lower id may be
        missing below them."""
        marks = self._stream_last_id if self._reconcile_from is None else self._reconcile_from
        return marks.get(symbol)

    def reconciled(self, drops: int) -> None:
        """A reconciliation that started after ``drops`` drops completed: its gap is closed,
        unless the stream dropped again since."""
        if drops == self.drops:
            self._reconcile_from = None

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self.orders_state.up and self.trades_state.up
