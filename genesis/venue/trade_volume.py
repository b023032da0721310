"""The volume a market actually traded, per symbol: what the participation cap is held to on a
ccxt venue (``MeasuresTradedVolume``; ``docs/ccxt.md``, "The cap on traded volume").

``TradeVolume`` keeps what is known of one symbol's tape, in bounded memory:

* trades bucketed by trade time (``BUCKET_MS``; a bucket holds a base volume, not the trades),
  for ``keep_seconds``; trade ids seen lately are remembered so a duplicated message is counted
  once (``SEEN_IDS_KEPT``); the stream's trades of the last minutes one by one as well
  (``recent``: an interval starting inside a bucket counts the rest of that bucket);
* whole minutes read from closed candles (``minutes``), for stretches nobody saw trade by trade
  (a minute known so counts whole or, when only partly asked, is read trade by trade);
* which stretches of time are **covered** (every trade in them is counted): the stream's open
  connection from when it subscribed (``stream_up``) to its horizon (``stream_horizon``: the
  newest event it delivered, plus the time since on the slower of the venue and wall clocks),
  its past connections up to their newest event (``stream_down``: what was in flight when it
  dropped is not vouched for), and what was read over REST. A trade the stream delivers in a
  stretch REST already read is not counted again.

Every figure is a lower bound of what traded, never above it: a bucket only partly inside the
asked interval is left out (at most ``BUCKET_MS`` of volume at its start, unless ``recent``
still holds that bucket's stream trades one by one), a candle minute only
counts when wholly inside, trades in flight are not counted yet. The cap computed from it can
only be tighter than the true one.

``fill_gaps`` reads the stretches nobody covered over REST, within a page budget: closed
candle minutes wholly inside a gap (klines), and the rest trade by trade (``aggTrades``).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Awaitable, Callable, Sequence

from genesis.venue.ccxt_support import dec
from genesis.venue.recent_trades import RecentTrades
from genesis.venue.volume_waiters import VolumeWaiters

BUCKET_MS = 1000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000  # Binance's aggTrades: at most an hour between startTime and endTime
DEFAULT_KEEP_SECONDS = 7200.0
DEFAULT_REST_PAGES = 5  # aggTrades pages (of 1000) one read may use; the rest stays a gap
SEEN_IDS_KEPT = 20_000
IN_FLIGHT_MS = 1000  # the trade stream's delivery may lag this much (see ``rest_gaps``)
AGG_TRADES_PAGE = 1000

FetchTrades = Callable[[int, int], Awaitable[list[dict[str, Any]]]]  # (since, until incl.) -> page
ClosedMinutes = Callable[[int, int], Awaitable[dict[int, Decimal]]]  # [start, end) -> open ms: vol


@dataclass
class TradeVolume:
    """What is known of one symbol's traded volume (see module docstring). Times in epoch ms.
    ``time_scale``: the exchange's clock runs this many times faster than the wall clock."""

    keep_seconds: float = DEFAULT_KEEP_SECONDS
    time_scale: float = 1.0
    buckets: dict[int, Decimal] = field(default_factory=dict)  # the stream's: bucket start -> volume
    rest_buckets: dict[int, Decimal] = field(default_factory=dict)  # the same, read over REST
    minutes: dict[int, Decimal] = field(default_factory=dict)  # candle open -> its volume
    covered: list[tuple[int, int]] = field(default_factory=list)  # closed stretches [a, b), merged
    rest_covered: list[tuple[int, int]] = field(default_factory=list)  # those read over REST
    open_since: int | None = None  # the stream's current connection covers from here
    waiters: VolumeWaiters = field(default_factory=VolumeWaiters)  # woken as trades are counted
    recent: RecentTrades = field(default_factory=lambda: RecentTrades(BUCKET_MS))  # the stream's, one by one
    _heard_ms: int = 0  # the newest event time it delivered (or when it subscribed)
    _heard_clock_ms: int = 0  # the venue clock when that arrived
    _heard_wall: float = 0.0  # the wall clock (monotonic) when that arrived
    _seen: dict[str, None] = field(default_factory=dict)  # trade ids, oldest first
    _marker: Any = None  # the newest entry of ccxt's cache already ingested
    _forgotten_at: int = 0

    # ------------------------------------------------------------------ the stream
    def stream_up(self, now_ms: int) -> None:
        """The trade stream subscribed: every trade from ``now_ms`` on will be delivered."""
        if self.open_since is None:
            self.open_since = now_ms
            self._heard(now_ms, now_ms)

    def stream_down(self) -> None:
        """The trade stream dropped (or stalled): its connection covered up to the newest event
        it delivered; what was in flight then is not vouched for (read over REST)."""
        if self.open_since is None:
            return
        self._cover(self.open_since, self._heard_ms + 1)
        self.open_since = None

    def stream_horizon(self, now_ms: int) -> int | None:
        """Up to when the open connection vouches for every trade: its newest event time, plus
        the time since it arrived (nothing more was sent meanwhile) on the slower of the venue
        clock and the wall clock: a clock that jumps ahead (a paper exchange's) is not taken
        for time the stream has already delivered. None while the stream is down."""
        if self.open_since is None:
            return None
        since = min(now_ms - self._heard_clock_ms,
                    (time.monotonic() - self._heard_wall) * 1000 * self.time_scale)
        return max(self.open_since, min(now_ms, self._heard_ms + max(0, int(since))))

    def ingest(self, cache: Sequence[dict[str, Any]], now_ms: int) -> int:
        """New trades of ccxt's trade cache (append-only, newest last): those after the last one
        ingested, counted once by trade id, only in time the open connection covers and no REST
        read covered already; ``waiters`` whose volume is then reached are woken. Returns how
        many were counted."""
        fresh = []
        for trade in reversed(cache):
            if trade is self._marker:
                break
            fresh.append(trade)
        if cache:
            self._marker = cache[-1]
        counted, newest = 0, None
        for trade in reversed(fresh):
            stamp, tid = trade.get("timestamp"), trade.get("id")
            if self.open_since is None or stamp is None or tid is None:
                continue
            event = (trade.get("info") or {}).get("E")
            newest = max(newest or 0, int(event) if isinstance(event, (int, float)) else int(stamp))
            if int(stamp) < self.open_since or self._is_covered(int(stamp)):
                continue
            if self._add(f"s{tid}", int(stamp), dec(trade["amount"])):
                self.recent.add(int(stamp), dec(trade["amount"]), now_ms)
                counted += 1
        if newest is not None:
            self._heard(max(self._heard_ms, newest), now_ms)
        self.forget_stale(now_ms)
        if counted:
            self.waiters.wake(lambda start_ms: self.volume(start_ms, now_ms, now_ms))
        return counted

    def _heard(self, event_ms: int, now_ms: int) -> None:
        self._heard_ms, self._heard_clock_ms, self._heard_wall = event_ms, now_ms, time.monotonic()

    def _is_covered(self, stamp_ms: int, end_ms: int | None = None) -> bool:
        """Whether a REST read covered ``stamp_ms`` (any of ``[stamp_ms, end_ms)``)."""
        spans = self.rest_covered
        i = bisect.bisect_right(spans, (stamp_ms, 1 << 62)) - 1
        if i >= 0 and spans[i][0] <= stamp_ms < spans[i][1]:
            return True
        return end_ms is not None and i + 1 < len(spans) and spans[i + 1][0] < end_ms

    # ------------------------------------------------------------------ reading
    def gaps(self, start_ms: int, end_ms: int, now_ms: int,
             horizon: int | None = None) -> list[tuple[int, int]]:
        """The parts of ``[start_ms, end_ms)`` nobody covered trade by trade (the open
        connection: up to its horizon); candle minutes inside them may be known."""
        horizon = horizon if horizon is not None else self.stream_horizon(now_ms)
        spans = sorted(self.covered + ([(self.open_since, horizon)] if self.open_since is not None
                                       and horizon is not None and self.open_since < horizon else []))
        out, at = [], start_ms
        for a, b in spans:
            if b <= at:
                continue
            if a >= end_ms:
                break
            if a > at:
                out.append((at, a))
            at = max(at, b)
        if at < end_ms:
            out.append((at, end_ms))
        return out

    def rest_gaps(self, start_ms: int, end_ms: int, now_ms: int) -> list[tuple[int, int]]:
        """The gaps worth reading over REST: all but the stretch between the open stream's
        horizon and now when it is shorter than ``in_flight_ms`` (those trades are on their way
        and count when they arrive: until then the figure is a lower bound)."""
        horizon = self.stream_horizon(now_ms)
        gaps = self.gaps(start_ms, end_ms, now_ms, horizon)
        if gaps and horizon is not None:
            a, _b = gaps[-1]
            if a >= horizon and now_ms - a <= self.in_flight_ms():
                gaps.pop()
        return gaps

    def in_flight_ms(self) -> int:
        """How far behind now the stream's delivery may be and still count as on time: 1 s,
        or half a wall second of a faster exchange clock."""
        return int(max(IN_FLIGHT_MS, IN_FLIGHT_MS / 2 * self.time_scale))

    def volume(self, start_ms: int, end_ms: int, now_ms: int) -> Decimal:
        """Base volume counted in ``[start_ms, end_ms)`` (a lower bound, see module docstring):
        candle minutes wholly inside, and the buckets wholly inside (the current one too when
        the interval reaches now) of the other minutes; of the bucket it starts inside, the
        stream's trades after its start while ``recent`` holds them."""
        whole = {m for m in self.minutes if m >= start_ms and m + MINUTE_MS <= end_ms}
        first = -(-start_ms // BUCKET_MS) * BUCKET_MS

        def inside(b: int) -> bool:
            return (b >= first and b - b % MINUTE_MS not in whole
                    and (b + BUCKET_MS <= end_ms or (end_ms >= now_ms and b < end_ms)))

        # a second REST read (any of it) counts from REST only: the stream may have delivered
        # the same trades while the read ran
        total = sum((v for b, v in _in_range(self.buckets, first, end_ms)
                     if inside(b) and not self._is_covered(b, b + BUCKET_MS)), Decimal(0))
        total += sum((v for b, v in _in_range(self.rest_buckets, first, end_ms) if inside(b)), Decimal(0))
        if first > start_ms and not self._is_covered(first - BUCKET_MS, first):
            # the interval starts inside a bucket: the stream's trades of it after the start
            total += self.recent.volume(start_ms, min(end_ms, first))
        return total + sum((self.minutes[m] for m in whole), Decimal(0))

    def forget_stale(self, now_ms: int) -> None:
        """``forget_before``, at most once an exchange minute (it reads everything kept)."""
        if now_ms - self._forgotten_at > MINUTE_MS:
            self.forget_before(now_ms)

    def forget_before(self, now_ms: int) -> None:
        """Drop what is older than ``keep_seconds`` (bounded memory)."""
        self._forgotten_at = now_ms
        horizon = now_ms - int(self.keep_seconds * 1000)
        for kept in (self.buckets, self.rest_buckets, self.minutes):
            for key in [k for k in kept if k < horizon]:
                del kept[key]
        self.covered = [(a, b) for a, b in self.covered if b > horizon]
        self.rest_covered = [(a, b) for a, b in self.rest_covered if b > horizon]

    # ------------------------------------------------------------------ REST
    async def fill_gaps(self, start_ms: int, end_ms: int, *, fetch_trades: FetchTrades,
                        closed_minutes: ClosedMinutes, now_ms: int,
                        max_pages: int = DEFAULT_REST_PAGES) -> None:
        """Read the gaps of ``[start_ms, end_ms)`` over REST: whole closed minutes from candles,
        the rest from ``aggTrades``, at most ``max_pages`` pages in all (a gap read short stays
        partly a gap: a lower bound until a later read)."""
        pages = 0
        for a, b in self.rest_gaps(start_ms, end_ms, now_ms):
            first_minute = -(-a // MINUTE_MS) * MINUTE_MS
            last_minute = min(b, now_ms) // MINUTE_MS * MINUTE_MS  # minutes closed by now
            if last_minute - first_minute >= MINUTE_MS:
                missing = [m for m in range(first_minute, last_minute, MINUTE_MS)
                           if m not in self.minutes]
                if missing:
                    got = await closed_minutes(missing[0], missing[-1] + MINUTE_MS)
                    for m in missing:
                        self.minutes[m] = got.get(m, Decimal(0))  # no candle: nothing traded
                pieces = [(a, first_minute), (last_minute, b)]
            else:
                pieces = [(a, b)]
            for pa, pb in pieces:
                while pa < pb and pages < max_pages:
                    pages += 1
                    until = min(pb, pa + HOUR_MS) - 1
                    page = await fetch_trades(pa, until)
                    mine = [t for t in page if t.get("timestamp") is not None
                            and pa <= int(t["timestamp"]) <= until]
                    if len(page) < AGG_TRADES_PAGE:
                        for t in mine:
                            self._add(f"r{t['id']}", int(t["timestamp"]), dec(t["amount"]), rest=True)
                        self._cover(pa, until + 1, rest=True)
                        pa = until + 1
                        continue
                    newest = max((int(t["timestamp"]) for t in mine), default=pa)
                    if newest <= pa:  # a whole page inside one millisecond: give up on it
                        break
                    for t in mine:  # the newest millisecond may go on in the next page
                        if int(t["timestamp"]) < newest:
                            self._add(f"r{t['id']}", int(t["timestamp"]), dec(t["amount"]), rest=True)
                    self._cover(pa, newest, rest=True)
                    pa = newest

    # ------------------------------------------------------------------ plumbing
    def _add(self, key: str, stamp_ms: int, qty: Decimal, rest: bool = False) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_IDS_KEPT:
            del self._seen[next(iter(self._seen))]
        bucket = stamp_ms - stamp_ms % BUCKET_MS
        kept = self.rest_buckets if rest else self.buckets
        kept[bucket] = kept.get(bucket, Decimal(0)) + qty
        return True

    def _cover(self, a: int, b: int, rest: bool = False) -> None:
        if b <= a:
            return
        self.covered = _merged(self.covered + [(a, b)])
        if rest:
            self.rest_covered = _merged(self.rest_covered + [(a, b)])


def _in_range(buckets: dict[int, Decimal], first: int, end_ms: int) -> list[tuple[int, Decimal]]:
    """The buckets starting in ``[first, end_ms]`` (``first`` on a bucket boundary): looked up
    one by one when the stretch has fewer buckets than are kept, else read off the whole."""
    if (end_ms - first) // BUCKET_MS + 1 < len(buckets):
        return [(b, buckets[b]) for b in range(first, end_ms + 1, BUCKET_MS) if b in buckets]
    return list(buckets.items())


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
