"""The paper exchange's endpoints: Binance spot REST (``/api/v3/...``) and a small admin API.

Binance semantics kept: ``/klines`` start/end/limit selection (1m only, closed candles only:
the simulated market has no partial candle without look-ahead), ``/depth`` with one level per
side, ``/ticker/*`` for one, some (``symbols=["A","B"]``) or all symbols, ``/myTrades``
filters (``orderId``, ``fromId``, ``startTime``, ``endTime``, ``limit``), ``/aggTrades`` from
the seeded tape of the trade stream (``genesis.paper.tape``), up to now.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from genesis.domain.instrument import Instrument
from genesis.domain.orders import Liquidity
from genesis.paper import binance_json as bj
from genesis.paper.ws_json import agg_trade_event
from genesis.venue.candles import from_epoch_ms, to_epoch_ms

if TYPE_CHECKING:
    from genesis.paper.app import Ctx, PaperApp

MINUTE = timedelta(minutes=1)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY = timedelta(days=1)


def install(app: "PaperApp") -> None:
    """Register every endpoint on ``app``."""
    public = [("/ping", ping), ("/time", server_time), ("/exchangeInfo", exchange_info),
              ("/depth", depth), ("/klines", klines), ("/ticker/24hr", ticker_24hr),
              ("/ticker/bookTicker", book_ticker), ("/ticker/price", ticker_price),
              ("/aggTrades", agg_trades)]
    for path, handler in public:
        app.api("GET", "/api/v3" + path, handler)
    for method, path, handler in [("POST", "/order", new_order), ("GET", "/order", get_order),
                                  ("DELETE", "/order", cancel_order),
                                  ("GET", "/openOrders", open_orders),
                                  ("GET", "/myTrades", my_trades), ("GET", "/account", account)]:
        app.api(method, "/api/v3" + path, handler, signed=True)
    admin = Admin(app)
    app.web.router.add_get("/admin/clock", admin.clock)
    app.web.router.add_get("/admin/faults", admin.get_faults)
    app.web.router.add_post("/admin/faults", admin.set_faults)
    app.web.router.add_get("/admin/stream-faults", admin.get_stream_faults)
    app.web.router.add_post("/admin/stream-faults", admin.set_stream_faults)
    app.web.router.add_get("/admin/orders", admin.orders)


# ----------------------------------------------------------------------------- public
async def ping(ctx: "Ctx") -> dict[str, Any]:
    return {}


async def server_time(ctx: "Ctx") -> dict[str, Any]:
    """Wall-clock time: the clock request timestamps (recvWindow) are checked against."""
    return {"serverTime": ctx.app.wall_ms()}


async def exchange_info(ctx: "Ctx") -> dict[str, Any]:
    wanted = _symbols(ctx)
    return {"timezone": "UTC", "serverTime": ctx.app.wall_ms(), "rateLimits": bj.RATE_LIMITS,
            "exchangeFilters": [], "symbols": [bj.symbol_json(i) for i in wanted]}


async def depth(ctx: "Ctx") -> dict[str, Any]:
    """One level per side; ``lastUpdateId`` is the book's update id of the ``@depth`` stream."""
    inst = ctx.exchange.instrument(ctx.params.get("symbol"))
    book = await ctx.app.streams.book(inst)
    return {"lastUpdateId": book.update_id, "bids": [[bj.fmt(book.bid), bj.fmt(book.size)]],
            "asks": [[bj.fmt(book.ask), bj.fmt(book.size)]]}


async def klines(ctx: "Ctx") -> list[Any]:
    ex, p = ctx.exchange, ctx.params
    inst = ex.instrument(p.get("symbol"))
    if p.get("interval") != "1m":
        raise bj.BinanceError(400, -1120, "Invalid interval.") if p.get("interval") else (
            bj.mandatory("interval"))
    limit = max(1, min(1000, bj.parse_int(p, "limit", 500) or 500))
    start_ms, end_ms = bj.parse_time_ms(p, "startTime"), bj.parse_time_ms(p, "endTime")
    now = ex.clock.now()
    # compared as integers first: only times up to now become datetimes (and then add minutes)
    end = now if end_ms is None or end_ms + 1 > to_epoch_ms(now) else from_epoch_ms(end_ms + 1)
    if start_ms is not None:
        if start_ms >= to_epoch_ms(end):
            return []  # starts after the end, or in the future: nothing has closed there
        start = from_epoch_ms(start_ms)
        candles = (await ex.candles(inst, start, min(end, start + limit * MINUTE)))[:limit]
    else:
        candles = (await ex.candles(inst, end - (limit + 1) * MINUTE, end))[-limit:]
    return [bj.kline_json(c) for c in candles]


async def agg_trades(ctx: "Ctx") -> list[dict[str, Any]]:
    """The tape's trades (one aggregate each, as on ``@aggTrade``) up to now: from ``fromId``
    or within ``startTime``..``endTime`` (inclusive, at most an hour apart; the last hour
    when neither is given), at most ``limit`` (500, up to 1000), oldest first."""
    ex, p = ctx.exchange, ctx.params
    inst = ex.instrument(p.get("symbol"))
    limit = max(1, min(1000, bj.parse_int(p, "limit", 500) or 500))
    now_ms = to_epoch_ms(ex.clock.now())
    start_ms, end_ms = bj.parse_time_ms(p, "startTime"), bj.parse_time_ms(p, "endTime")
    from_id = bj.parse_int(p, "fromId")
    if start_ms is not None and end_ms is not None and end_ms - start_ms > HOUR_MS:
        raise bj.BinanceError(400, -1127, "More than 1 hours between startTime and endTime.")
    if from_id is not None:
        start_ms = max(start_ms or 0, from_id // 1000 * MINUTE_MS)
    if start_ms is None:
        start_ms = (end_ms if end_ms is not None else now_ms) - HOUR_MS
    end_ms = min(now_ms, end_ms if end_ms is not None else start_ms + HOUR_MS)
    out: list[dict[str, Any]] = []
    for open_ms in range(start_ms - start_ms % MINUTE_MS, end_ms + 1, MINUTE_MS):
        for t in ctx.app.streams.tape(inst, open_ms):
            if start_ms <= t.time_ms <= end_ms and (from_id is None or t.trade_id >= from_id):
                out.append(agg_trade_event(bj.symbol_id(inst), t, now_ms))
                if len(out) == limit:
                    return [_agg_row(e) for e in out]
    return [_agg_row(e) for e in out]


def _agg_row(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")}


async def ticker_24hr(ctx: "Ctx") -> Any:
    rows = [await _ticker(ctx, i) for i in _symbols(ctx)]
    return rows[0] if ctx.params.get("symbol") else rows


async def book_ticker(ctx: "Ctx") -> Any:
    rows = []
    for inst in _symbols(ctx):
        bid, ask, size = await ctx.exchange.quote(inst)
        rows.append({"symbol": bj.symbol_id(inst), "bidPrice": bj.fmt(bid), "bidQty": bj.fmt(size),
                     "askPrice": bj.fmt(ask), "askQty": bj.fmt(size)})
    return rows[0] if ctx.params.get("symbol") else rows


async def ticker_price(ctx: "Ctx") -> Any:
    rows = []
    for inst in _symbols(ctx):
        bid, ask, _ = await ctx.exchange.quote(inst)
        rows.append({"symbol": bj.symbol_id(inst), "price": bj.fmt(_mid(inst, bid, ask))})
    return rows[0] if ctx.params.get("symbol") else rows


async def _ticker(ctx: "Ctx", inst: Instrument) -> dict[str, Any]:
    ex = ctx.exchange
    now = ex.clock.now()
    bid, ask, size = await ex.quote(inst)
    last = _mid(inst, bid, ask)
    day = await ex.candles(inst, now - DAY, now) or []
    open_ = day[0].open if day else last
    high = max([c.high for c in day] + [last])
    low = min([c.low for c in day] + [last])
    volume = sum((c.volume for c in day), Decimal(0))
    change = last - open_
    return {"symbol": bj.symbol_id(inst), "priceChange": bj.fmt(change),
            "priceChangePercent": f"{(change / open_ * 100):.3f}", "weightedAvgPrice": bj.fmt(last),
            "prevClosePrice": bj.fmt(open_), "lastPrice": bj.fmt(last), "lastQty": bj.ZERO8,
            "bidPrice": bj.fmt(bid), "bidQty": bj.fmt(size), "askPrice": bj.fmt(ask),
            "askQty": bj.fmt(size), "openPrice": bj.fmt(open_), "highPrice": bj.fmt(high),
            "lowPrice": bj.fmt(low), "volume": bj.fmt(volume), "quoteVolume": bj.ZERO8,
            "openTime": to_epoch_ms(now - DAY), "closeTime": to_epoch_ms(now), "firstId": -1,
            "lastId": -1, "count": 0}


def _mid(inst: Instrument, bid: Decimal, ask: Decimal) -> Decimal:
    return inst.round_price((bid + ask) / 2)


def _symbols(ctx: "Ctx") -> list[Instrument]:
    ex, p = ctx.exchange, ctx.params
    if p.get("symbol"):
        return [ex.instrument(p["symbol"])]
    if p.get("symbols"):
        try:
            ids = json.loads(p["symbols"])
        except ValueError:
            raise bj.illegal_chars("symbols", '^\\["[A-Z0-9]+"(,"[A-Z0-9]+")*\\]$') from None
        return [ex.instrument(str(i)) for i in ids]
    return list(ex.instruments.values())


# ----------------------------------------------------------------------------- signed
async def new_order(ctx: "Ctx") -> dict[str, Any]:
    resp_type = ctx.params.get("newOrderRespType") or "FULL"
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise bj.BinanceError(400, -1100, "Illegal characters found in parameter "
                                          "'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.")
    row, trades = await ctx.exchange.new_order(ctx.params)
    return bj.new_order_json(row, ctx.exchange.instruments[row.symbol], trades, resp_type)


async def get_order(ctx: "Ctx") -> dict[str, Any]:
    inst = ctx.exchange.instrument(ctx.params.get("symbol"))
    await ctx.exchange.sync()
    row = ctx.exchange.find(inst, ctx.params)
    if row is None:
        raise bj.order_does_not_exist()
    return bj.order_json(row, inst)


async def cancel_order(ctx: "Ctx") -> dict[str, Any]:
    row, cancel_id, at = await ctx.exchange.cancel(ctx.params)
    return bj.cancel_json(row, ctx.exchange.instruments[row.symbol], cancel_id, at)


async def open_orders(ctx: "Ctx") -> list[dict[str, Any]]:
    ex = ctx.exchange
    inst = ex.instrument(ctx.params["symbol"]) if ctx.params.get("symbol") else None
    await ex.sync()
    rows = ex.store.open_orders(inst.symbol if inst else None)
    return [bj.order_json(r, ex.instruments[r.symbol]) for r in rows]


async def my_trades(ctx: "Ctx") -> list[dict[str, Any]]:
    ex, p = ctx.exchange, ctx.params
    inst = ex.instrument(p.get("symbol"))
    await ex.sync()
    limit = max(1, min(1000, bj.parse_int(p, "limit", 500) or 500))
    rows = ex.store.trades(inst.symbol, bj.parse_int(p, "orderId"), bj.parse_int(p, "fromId"),
                           bj.parse_time_ms(p, "startTime"), bj.parse_time_ms(p, "endTime"), limit)
    return [bj.trade_json(t, inst) for t in rows]


async def account(ctx: "Ctx") -> dict[str, Any]:
    ex = ctx.exchange
    maker, taker = ex.commission_bps(Liquidity.MAKER), ex.commission_bps(Liquidity.TAKER)
    return {"makerCommission": maker, "takerCommission": taker, "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": bj.fmt(ex.model.maker_fee_rate),
                                "taker": bj.fmt(ex.model.taker_fee_rate),
                                "buyer": bj.ZERO8, "seller": bj.ZERO8},
            "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": ex.now_ms(), "accountType": "SPOT",
            "balances": await ex.account_balances(), "permissions": ["SPOT"], "uid": 1}


# ----------------------------------------------------------------------------- admin
class Admin:
    """``/admin/*``: not part of Binance; unauthenticated, so bind to localhost only."""

    def __init__(self, app: "PaperApp"):
        self.app = app

    async def clock(self, request: web.Request) -> web.Response:
        ex = self.app.exchange
        return web.json_response({"now_ms": ex.now_ms(), "now": ex.clock.now().isoformat(),
                                  "speed": self.app.speed, "wall_ms": self.app.wall_ms()})

    async def get_faults(self, request: web.Request) -> web.Response:
        return self._show(self.app.faults)

    async def set_faults(self, request: web.Request) -> web.Response:
        return await self._update(request, self.app.faults)

    async def get_stream_faults(self, request: web.Request) -> web.Response:
        return self._show(self.app.stream_faults)

    async def set_stream_faults(self, request: web.Request) -> web.Response:
        return await self._update(request, self.app.stream_faults)

    @staticmethod
    def _show(injector: Any) -> web.Response:
        return web.json_response({**injector.faults.as_dict(), "counts": injector.counts})

    async def _update(self, request: web.Request, injector: Any) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object of fault settings")
            injector.set(injector.faults.updated(changes))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return self._show(injector)

    async def orders(self, request: web.Request) -> web.Response:
        ex = self.app.exchange
        async with self.app.lock:
            await ex.sync()
            rows = ex.store.all_orders()
        return web.json_response([{**bj.order_json(r, ex.instruments[r.symbol]),
                                   "unifiedSymbol": r.symbol} for r in rows])
