"""The account's balances and the prices that value them, kept current without a REST read per
caller: what the tier gate reads at every submission (``equity_usdt``).

* **Balances** (``AccountBalances``): one REST snapshot (``fetch_balance``), then the user data
  stream's ``outboundAccountPosition`` events (ccxt.pro ``watch_balance``, on the hub's user
  stream connection) overwrite the assets they name. An asset's total is the last value seen,
  the stream's if it spoke after the snapshot was asked for (an event that lands while the
  snapshot is in flight is kept over the snapshot's value: it may be the newer one). The
  snapshot is read again when the stream reconnected since it was taken (it may have missed
  events), or, while the stream is down, when it is older than ``ttl_seconds`` (REST then, at
  most once per ``ttl_seconds``). Concurrent callers share one read (single flight).
* **Prices** (``SharedTickers``): the best bid/ask mid of a symbol the market hub streams, else
  last prices from one ``fetch_tickers`` shared by every caller for ``ttl_seconds``.

``ttl_seconds`` are the venue clock's seconds (the exchange's simulated seconds on a paper
exchange). N submissions within a TTL cost one balance snapshot and one ticker read: O(1)
request weight, not O(N).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any, Awaitable, Callable, Iterable

import structlog

from genesis.clock import Clock
from genesis.venue.ccxt_support import dec
from genesis.venue.market_hub import MarketHub, StreamState

log = structlog.get_logger("genesis.venue.account_stream")
DEFAULT_TTL_SECONDS = 30.0
EQUITY_QUANTUM = Decimal("0.00000001")
_ACCOUNT_TYPE = "spot"


def equity_in_usdt(totals: dict[str, Decimal], prices: dict[str, Decimal],
                   on_unpriced: Callable[[str, Decimal], None]) -> Decimal:
    """USDT plus every other asset at the price of ``ASSET/USDT`` in ``prices``; an asset
    without a price is left out and reported to ``on_unpriced``."""
    total = totals.get("USDT", Decimal(0))
    for asset, amount in totals.items():
        if asset == "USDT" or not amount:
            continue
        price = prices.get(f"{asset}/USDT")
        if price is None:
            on_unpriced(asset, amount)
            continue
        total += amount * price
    return total.quantize(EQUITY_QUANTUM)


def ticker_price(ticker: dict[str, Any]) -> Decimal | None:
    """A ccxt ticker's last price (close, bid as fallbacks)."""
    price = ticker.get("last") or ticker.get("close") or ticker.get("bid")
    return None if price is None else dec(price)


class _SingleFlight:
    """A value read at most once per ``ttl_seconds`` of ``clock``; concurrent readers share it."""

    def __init__(self, clock: Clock, ttl_seconds: float):
        self.clock, self.ttl_seconds = clock, ttl_seconds
        self.lock = asyncio.Lock()
        self.read_at: datetime | None = None

    def stale(self) -> bool:
        return self.read_at is None or (self.clock.now() - self.read_at).total_seconds() >= self.ttl_seconds


class AccountBalances:
    """Total balance per asset from a REST snapshot and the user data stream (module docstring).

    ``fetch_balance``: the REST read (ccxt balance structure). ``hub``: the market hub whose
    ccxt.pro client runs ``watch_balance``."""

    def __init__(self, hub: MarketHub, fetch_balance: Callable[[], Awaitable[dict[str, Any]]],
                 clock: Clock, ttl_seconds: float = DEFAULT_TTL_SECONDS):
        self.hub, self._fetch, self.clock = hub, fetch_balance, clock
        self.state = StreamState()
        self.snapshot_reads = 0
        self._totals: dict[str, Decimal] = {}
        self._seen_in_stream: dict[str, Decimal] = {}  # ccxt's cache as last read
        self._updated_during_read: set[str] | None = None  # assets the stream changed while a snapshot was read
        self._snapshot_reconnects: int | None = None
        self._flight = _SingleFlight(clock, ttl_seconds)
        self._started = False

    def start(self) -> None:
        """Subscribe ``watch_balance`` (once) on the hub's client."""
        if not self._started:
            self._started = True
            self.hub.start_user_stream()
            self.hub.watch("user balance", self.state, lambda: self.hub.ex.watch_balance(),
                           lambda _data, _reconnected: self._on_stream())

    def _on_stream(self) -> None:
        cached = ((getattr(self.hub.ex, "balance", None) or {}).get(_ACCOUNT_TYPE) or {}).get("total") or {}
        for asset, value in cached.items():
            if value is None:
                continue
            amount = dec(value)
            if self._seen_in_stream.get(asset) != amount:
                self._seen_in_stream[asset] = amount
                if self._updated_during_read is not None:
                    self._updated_during_read.add(asset)
                if self._snapshot_reconnects is not None:
                    self._totals[asset] = amount

    def _needs_snapshot(self) -> bool:
        if self._snapshot_reconnects is None or self._snapshot_reconnects != self.state.reconnects:
            return True
        return not self.state.up and self._flight.stale()

    async def totals(self) -> dict[str, Decimal]:
        """Total per asset (free + locked), non-zero ones."""
        self.start()
        if self._needs_snapshot():
            async with self._flight.lock:
                if self._needs_snapshot():
                    reconnects = self.state.reconnects
                    self._updated_during_read = set()
                    try:
                        balance = await self._fetch()
                    finally:  # the marker reset with the read, whatever its end
                        updated, self._updated_during_read = self._updated_during_read, None
                    self.snapshot_reads += 1
                    totals = {a: dec(v) for a, v in (balance.get("total") or {}).items() if v is not None}
                    # what the stream told while the snapshot was in flight may be newer than
                    # the snapshot, and is not told again: kept over the snapshot's value
                    totals.update({a: self._seen_in_stream[a] for a in updated})
                    self._totals = totals
                    self._snapshot_reconnects = reconnects
                    self._flight.read_at = self.clock.now()
        return {a: v for a, v in self._totals.items() if v}


class SharedTickers:
    """Prices of ``ASSET/USDT`` symbols: streamed book mids, else one shared ``fetch_tickers``
    per ``ttl_seconds`` (module docstring)."""

    def __init__(self, hub: MarketHub, fetch_tickers: Callable[[list[str]], Awaitable[dict[str, Any]]],
                 clock: Clock, ttl_seconds: float = DEFAULT_TTL_SECONDS):
        self.hub, self._fetch = hub, fetch_tickers
        self.reads = 0
        self._prices: dict[str, Decimal] = {}
        self._symbols: frozenset[str] = frozenset()
        self._flight = _SingleFlight(clock, ttl_seconds)

    def _streamed(self, symbol: str) -> Decimal | None:
        feed = self.hub.feeds.get(symbol)
        if feed is None or not feed.book_state.up or feed.book is None:
            return None
        return (feed.book.bid + feed.book.ask) / 2

    async def prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Price per symbol of ``symbols`` (symbols with no price are left out)."""
        wanted = set(symbols)
        out = {s: p for s in wanted if (p := self._streamed(s)) is not None}
        rest = wanted - set(out)
        if rest and (self._flight.stale() or not rest <= self._symbols):
            async with self._flight.lock:
                if self._flight.stale() or not rest <= self._symbols:
                    asked = sorted(rest | (self._symbols if not self._flight.stale() else set()))
                    tickers = await self._fetch(asked)
                    self.reads += 1
                    self._prices = {s: p for s, t in tickers.items() if (p := ticker_price(t or {})) is not None}
                    self._symbols = frozenset(asked)
                    self._flight.read_at = self._flight.clock.now()
        out.update({s: self._prices[s] for s in rest if s in self._prices})
        return out
