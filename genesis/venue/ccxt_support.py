"""Conversions between ccxt's unified structures and the domain, and exchange construction.

ccxt hands out numbers as floats; every one is turned into ``Decimal`` through its shortest
``repr`` (exact for the <= 15 significant digits exchanges quote), never used as a float.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt

from genesis.clock import utc
from genesis.domain.instrument import Instrument
from genesis.domain.orders import Fill, Liquidity, OrderTerms
from genesis.venue.base import PermanentVenueError
from genesis.venue.credentials import Credentials

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def dec(value: Any) -> Decimal:
    """Exact ``Decimal`` of a ccxt number (float/int/str) via its shortest repr."""
    if isinstance(value, Decimal):
        return value
    if value is None:
        raise ValueError("missing number")
    return Decimal(repr(value) if isinstance(value, float) else str(value))


def ms_to_dt(ms: int | float) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def dt_to_ms(t: datetime) -> int:
    return (utc(t) - _EPOCH) // timedelta(milliseconds=1)


def order_terms(order: dict[str, Any], time_difference_ms: int = 0) -> OrderTerms | None:
    """What a ccxt unified order says it is (``None`` when it does not carry its symbol, side,
    type and amount, as in an ACK). Its creation time is moved onto our clock by ccxt's
    measured ``timeDifference`` (ours minus the exchange's, 0 until measured)."""
    symbol, side, kind, amount = (order.get(k) for k in ("symbol", "side", "type", "amount"))
    if not (symbol and side and kind) or amount is None:
        return None
    price, stamp = order.get("price"), order.get("timestamp")
    return OrderTerms(str(symbol), str(side).lower(), str(kind).lower(), dec(amount),
                      dec(price) if price not in (None, 0, "0") else None,
                      ms_to_dt(stamp + time_difference_ms) if stamp is not None else None)


def override_urls(exchange: ccxt.Exchange, base_url: str) -> None:
    """Point every API URL on the exchange's main REST host at ``base_url`` (paper exchange,
    proxy, testnet mirror): ``https://api.binance.com/api/v3`` -> ``<base_url>/api/v3``."""
    base_url = base_url.rstrip("/")
    api = exchange.urls["api"]
    if isinstance(api, str):
        exchange.urls["api"] = base_url
        return
    main = api.get("public") or api.get("rest") or next(iter(api.values()))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(main))
    exchange.urls["api"] = {k: (v.replace(origin, base_url, 1) if isinstance(v, str) else v)
                            for k, v in api.items()}


def market_to_instrument(m: dict[str, Any], tick_size_mode: bool = True) -> Instrument:
    """tick = price precision, step = amount precision (converted from decimal places unless
    the exchange counts in tick sizes), min qty (at least one step), min notional =
    ``limits.cost.min`` (0 when absent)."""
    tick = _increment(m["precision"]["price"], tick_size_mode)
    step = _increment(m["precision"]["amount"], tick_size_mode)
    limits = m.get("limits") or {}
    amount, cost = limits.get("amount") or {}, limits.get("cost") or {}
    min_qty = dec(amount["min"]) if amount.get("min") else step
    max_qty = dec(amount["max"]) if amount.get("max") else None
    min_notional = dec(cost["min"]) if cost.get("min") else Decimal(0)
    if tick <= 0 or step <= 0:
        raise ValueError("non-positive tick or step")
    return Instrument(m["symbol"], m["base"], m["quote"], tick, step, max(min_qty, step),
                      min_notional, max_qty)


def _increment(precision: Any, tick_size_mode: bool) -> Decimal:
    return dec(precision) if tick_size_mode else Decimal(1).scaleb(-int(precision))


def trade_to_fill(t: dict[str, Any], client_order_id: str, now: datetime) -> Fill:
    """ccxt unified trade -> ``Fill``: trade id = the exchange's, fee in the trade's fee
    currency (quote when absent), maker/taker from ``takerOrMaker`` (taker when unknown)."""
    fee = t.get("fee") or {}
    quote = t["symbol"].split("/")[1].split(":")[0] if t.get("symbol") else ""
    return Fill(trade_id=str(t["id"]), client_order_id=client_order_id, qty=dec(t["amount"]),
                price=dec(t["price"]),
                fee=dec(fee["cost"]) if fee.get("cost") is not None else Decimal(0),
                fee_asset=fee.get("currency") or quote,
                liquidity=Liquidity.MAKER if t.get("takerOrMaker") == "maker" else Liquidity.TAKER,
                timestamp=ms_to_dt(t["timestamp"]) if t.get("timestamp") else now)


def distinct_trades(trades: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The trades with an id, each id once (its first occurrence), in their order: ccxt.pro's
    binance client appends every ``executionReport`` trade to its cached order's ``trades``
    without dedup, so a duplicated event lists a trade twice."""
    seen: set[str] = set()
    out = []
    for t in trades or []:
        tid = t.get("id")
        if tid is None or tid == "" or str(tid) in seen:
            continue
        seen.add(str(tid))
        out.append(t)
    return out


def build_exchange(exchange_id: str, credentials: Credentials | None, exchange_url: str | None,
                   timeout_ms: int = 10_000, options: dict[str, Any] | None = None,
                   config: dict[str, Any] | None = None, time_scale: float = 1.0,
                   module: Any = ccxt) -> ccxt.Exchange:
    """A configured ``ccxt.async_support`` exchange (rate limiter on, spot only). With
    ``time_scale`` N the limiter allows N times the exchange's rate (its clock runs N x).
    ``module``: where the exchange class comes from (``ccxt.pro`` for the streaming venue)."""
    cls = getattr(module, exchange_id, None)
    if cls is None or not isinstance(cls, type):
        raise PermanentVenueError(f"unknown ccxt exchange id {exchange_id!r}")
    opts: dict[str, Any] = {"defaultType": "spot"}
    if exchange_id.startswith("binance"):
        opts.update({"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                     "fetchMargins": False})
    opts.update(options or {})
    if not time_scale > 0:
        raise ValueError(f"time_scale must be > 0, got {time_scale}")
    settings: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms, "options": opts,
                                **(config or {})}
    if credentials is not None:
        settings.update(credentials.ccxt_config())
    exchange = cls(settings)
    # each REST answer's own headers in its parsed body (``info["responseHeaders"]``): the
    # exchange object's ``last_response_headers`` is shared by every request in flight, so
    # with concurrent orders it may hold another answer's (``CcxtVenue``'s order counts)
    exchange.returnResponseHeaders = True
    if time_scale != 1.0 and "rateLimit" not in settings:
        exchange.rateLimit = exchange.rateLimit / time_scale
        exchange.tokenBucket = None
        exchange.init_rest_rate_limiter()  # rebuilds the limiter from the new rate
    if exchange_url:
        override_urls(exchange, exchange_url)
    return exchange


def request_clock_ms(exchange: Any) -> int:
    """The exchange's request clock now, as ccxt signs with it: the host's time less the
    measured ``timeDifference`` (milliseconds since the epoch)."""
    options = getattr(exchange, "options", None) or {}
    return int(ccxt.Exchange.milliseconds() - float(options.get("timeDifference") or 0))


def ws_urls(base_url: str) -> dict[str, Any]:
    """The WebSocket URLs of a paper exchange at ``base_url`` (``http://127.0.0.1:8765``), in
    the shape of ccxt.pro binance's ``urls['api']['ws']`` entries for spot."""
    origin = base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    return {"spot": origin + "/ws", "ws-api": {"spot": origin + "/ws-api/v3"}}


def point_ccxt_at(exchange: Any, base_url: str) -> None:
    """Point a ccxt (or ccxt.pro) ``binance`` client at a paper exchange: the REST URLs as
    ``--exchange-url`` does, and the spot WebSocket URLs (market streams and the WebSocket API
    of the user data stream)."""
    ws = exchange.urls["api"].get("ws")
    override_urls(exchange, base_url)
    if isinstance(ws, dict):
        paper = ws_urls(base_url)
        exchange.urls["api"]["ws"] = {**ws, "spot": paper["spot"], "margin": paper["spot"],
                                      "ws-api": {**ws.get("ws-api", {}), **paper["ws-api"]}}
