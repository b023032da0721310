"""Binance spot market streams on the paper exchange: ``/ws``, ``/ws/<streams>`` (raw) and
``/stream?streams=a/b`` (combined, ``{"stream", "data"}``), with the ``SUBSCRIBE`` /
``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` JSON methods (reply ``{"result": null, "id": N}``).

Streams: ``<symbol>@trade``, ``@aggTrade`` (the seeded tape of ``genesis.paper.tape``),
``@kline_1m`` (the forming candle from the tape so far, ``x=true`` once it closes: then it is
the shipped candle), ``@bookTicker`` and ``@depth`` / ``@depth@100ms`` (diffs of the simulated
book with contiguous update ids: each change of a symbol's book is update id + 1, and
``GET /api/v3/depth`` answers the current id as ``lastUpdateId``, so ccxt's snapshot-and-diff
sync works). Everything runs on the exchange's clock: ``pump`` looks at it every
``TICK_SECONDS`` of wall time and publishes what happened since.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import WSMsgType, web

from genesis.domain.instrument import Instrument
from genesis.paper import binance_json as bj
from genesis.paper import ws_json as wj
from genesis.paper.tape import MINUTE_MS, TapeTrade, minute_trades
from genesis.paper.ws_conn import WsConnection
from genesis.venue.base import PermanentVenueError
from genesis.venue.candles import from_epoch_ms

if TYPE_CHECKING:
    from genesis.paper.app import PaperApp

CHANNELS = ("trade", "aggTrade", "kline_1m", "bookTicker", "depth", "depth@100ms",
            "depth@1000ms")
log = structlog.get_logger("genesis.paper.streams")
REPLAY_LIMIT_MS = 2 * MINUTE_MS  # after a clock jump only the last two minutes are replayed


@dataclass(slots=True)
class _Book:
    update_id: int
    bid: Decimal
    ask: Decimal
    size: Decimal


class MarketStreams:
    """The subscribers of the market streams and what is published to them."""

    def __init__(self, app: "PaperApp", seed: int = 0):
        self.app, self.seed = app, seed
        self.connections: set[WsConnection] = set()
        # how many times each stream was subscribed over the exchange's life (every connection)
        self.subscribed: Counter[str] = Counter()
        self._books: dict[str, _Book] = {}
        self._tape_ms: dict[str, int] = {}  # per symbol: trades up to this time were published
        self._tapes: dict[tuple[str, int], list[TapeTrade]] = {}

    # ------------------------------------------------------------------ publishing
    def _subscribed(self, stream: str) -> list[WsConnection]:
        return [c for c in self.connections if stream in c.streams]

    def publish(self, stream: str, payload: Any) -> None:
        for conn in self._subscribed(stream):
            conn.push(payload, stream)

    def _wanted(self, inst: Instrument, *channels: str) -> bool:
        prefix = bj.symbol_id(inst).lower() + "@"
        return any(prefix + c in conn.streams for conn in self.connections for c in channels)

    async def book(self, inst: Instrument) -> _Book:
        """The symbol's book now; a change bumps the update id and publishes the diff."""
        bid, ask, size = await self.app.exchange.quote(inst)
        sid = bj.symbol_id(inst)
        old = self._books.get(sid)
        if old is not None and (old.bid, old.ask, old.size) == (bid, ask, size):
            return old
        new = _Book((old.update_id if old else 0) + 1, bid, ask, size)
        self._books[sid] = new
        if old is not None:
            now_ms = self.app.exchange.now_ms()
            self.publish(f"{sid.lower()}@bookTicker", wj.book_ticker_event(sid, new.update_id,
                                                                           bid, ask, size))
            diff = wj.depth_event(sid, new.update_id, new.update_id,
                                  _level_diff(old.bid, new.bid, size),
                                  _level_diff(old.ask, new.ask, size), now_ms)
            for channel in ("depth", "depth@100ms", "depth@1000ms"):
                self.publish(f"{sid.lower()}@{channel}", diff)
        return new

    def tape(self, inst: Instrument, open_ms: int) -> list[TapeTrade]:
        """The seeded trades of ``inst``'s minute opening at ``open_ms`` (all of them: callers
        keep only those up to now)."""
        key = (inst.symbol, open_ms)
        if key not in self._tapes:
            candle = self.app.exchange.series[inst.symbol].candle_at(from_epoch_ms(open_ms))
            if len(self._tapes) > 64:
                self._tapes.clear()
            self._tapes[key] = minute_trades(candle, inst, self.seed) if candle else []
        return self._tapes[key]

    def advance_tape(self, inst: Instrument, now_ms: int) -> None:
        """Publish the trades (and kline updates) of ``inst`` up to ``now_ms``."""
        sid = bj.symbol_id(inst)
        last = self._tape_ms.get(sid)
        self._tape_ms[sid] = max(now_ms, last or now_ms)
        if last is None or now_ms <= last:
            return
        start = max(last, now_ms - REPLAY_LIMIT_MS)
        name = sid.lower()
        for open_ms in range(start - start % MINUTE_MS, now_ms + 1, MINUTE_MS):
            trades = self.tape(inst, open_ms)
            for t in trades:
                if start < t.time_ms <= now_ms:
                    self.publish(f"{name}@trade", wj.trade_event(sid, t, now_ms))
                    self.publish(f"{name}@aggTrade", wj.agg_trade_event(sid, t, now_ms))
            closes_ms = open_ms + MINUTE_MS
            so_far = [t for t in trades if t.time_ms <= min(now_ms, closes_ms - 1)]
            fresh = any(start < t.time_ms for t in so_far)
            closed_now = start < closes_ms <= now_ms
            if so_far and (fresh or closed_now):
                self.publish(f"{name}@kline_1m", wj.kline_event(sid, so_far, open_ms,
                                                                 closes_ms <= now_ms, now_ms))

    async def tick(self) -> None:
        """Publish what the market did since the last tick (call under the app lock)."""
        if not self.connections:
            return
        now_ms = self.app.exchange.now_ms()
        for inst in self.app.exchange.instruments.values():
            if self._wanted(inst, "trade", "aggTrade", "kline_1m"):
                self.advance_tape(inst, now_ms)
            else:
                self._tape_ms.pop(bj.symbol_id(inst), None)
            if self._wanted(inst, "bookTicker", "depth", "depth@100ms", "depth@1000ms"):
                with contextlib.suppress(PermanentVenueError):  # outside the candle data
                    await self.book(inst)

    # ------------------------------------------------------------------ connections
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``/ws``, ``/ws/<a>/<b>`` and ``/stream?streams=a/b``."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        combined = request.path.startswith("/stream")
        conn = WsConnection(ws, self.app.stream_faults, combined)
        named = (request.query.get("streams", "") if combined
                 else request.match_info.get("tail", ""))
        self.connections.add(conn)
        try:
            await self._subscribe(conn, [s for s in named.split("/") if self._valid(s)])
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._request(conn, msg.data)
        finally:
            self.connections.discard(conn)
            await conn.close()
        return ws

    def _valid(self, stream: str) -> bool:
        symbol, _, channel = stream.partition("@")
        return channel in CHANNELS and symbol.upper() in self.app.exchange.by_id

    async def _subscribe(self, conn: WsConnection, streams: list[str]) -> None:
        """Add ``streams``; what they publish starts from the market as it is now."""
        async with self.app.lock:
            now_ms = self.app.exchange.now_ms()
            for stream in streams:
                symbol_id, _, channel = stream.partition("@")
                inst = self.app.exchange.by_id[symbol_id.upper()]
                if channel in ("trade", "aggTrade", "kline_1m"):
                    self._tape_ms.setdefault(bj.symbol_id(inst), now_ms)
                else:
                    with contextlib.suppress(PermanentVenueError):  # outside the candle data
                        await self.book(inst)
            self.subscribed.update(s for s in set(streams) if s not in conn.streams)
            conn.streams.update(streams)

    async def _request(self, conn: WsConnection, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError as exc:
            conn.reply({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None})
            return
        if not isinstance(message, dict):
            conn.reply({"error": {"code": 3, "msg": "Invalid JSON: expected an object"},
                        "id": None})
            return
        rid, method, params = message.get("id"), message.get("method"), message.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            conn.reply({"result": sorted(conn.streams), "id": rid})
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            conn.reply({"error": {"code": 2, "msg": f"Invalid request: unknown variant {method}, "
                        "expected one of SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS"}, "id": rid})
            return
        bad = [p for p in params if not isinstance(p, str) or not self._valid(p)]
        if not isinstance(params, list) or bad:
            conn.reply({"error": {"code": 2, "msg": f"Invalid request: invalid stream {bad}"},
                        "id": rid})
            return
        if method == "SUBSCRIBE":
            await self._subscribe(conn, params)
        else:
            conn.streams.difference_update(params)
        conn.reply({"result": None, "id": rid})


def _level_diff(old: Decimal, new: Decimal, size: Decimal) -> list[list[str]]:
    if old == new:
        return [[bj.fmt(new), bj.fmt(size)]]
    return [[bj.fmt(old), bj.ZERO8], [bj.fmt(new), bj.fmt(size)]]


TICK_SECONDS = 0.05


def install_streams(app: "PaperApp") -> None:
    """Register the WebSocket endpoints and run ``pump`` while the server runs."""
    router = app.web.router
    router.add_get("/ws", app.streams.handle)
    router.add_get("/ws/{tail:.*}", app.streams.handle)
    router.add_get("/stream", app.streams.handle)
    router.add_get("/ws-api/v3", app.user.handle)

    async def run_pump(_: web.Application) -> Any:
        task = asyncio.create_task(pump(app))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.web.cleanup_ctx.append(run_pump)

    async def close_sockets(_: web.Application) -> None:  # clients see the server go away
        for conn in list(app.streams.connections) + list(app.user.subscriptions.values()):
            await conn.close()

    app.web.on_shutdown.append(close_sockets)


async def pump(app: "PaperApp") -> None:
    """Every ``TICK_SECONDS``: let resting orders match up to now (when someone listens to the
    user data stream), publish the order events, then the market's."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        try:
            async with app.lock:
                if app.user.subscriptions and app.exchange.has_new_fills():
                    await app.exchange.sync()
                app.user.flush()
                await app.streams.tick()
        except Exception:  # task boundary: one bad tick must not stop the streams for good
            log.exception("paper_stream_tick_failed")
