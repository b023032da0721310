"""Binance spot REST JSON shapes and error bodies, as the real API returns them.

Field names and order follow the Binance spot API documentation (``/api/v3/order``,
``/myTrades``, ``/account``, ``/exchangeInfo``, ``/klines``...). Decimal fields are strings with
8 decimals; ids and times are integers.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from genesis.domain.instrument import Instrument
from genesis.paper.store import OrderRow, TradeRow
from genesis.venue.base import Candle
from genesis.venue.candles import to_epoch_ms

CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
INTEGER_RE = re.compile(r"^[0-9]{1,19}$")
MAX_LONG = 2 ** 63 - 1  # Binance's integer parameters are Java longs
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a time can name
ZERO8 = "0.00000000"


class BinanceError(Exception):
    """An API error: HTTP status plus Binance's ``{"code": ..., "msg": ...}`` body."""

    def __init__(self, http_status: int, code: int, msg: str,
                 headers: dict[str, str] | None = None):
        super().__init__(f"{code} {msg}")
        self.http_status, self.code, self.msg = http_status, code, msg
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


# the errors the paper exchange raises (text as on api.binance.com)
def duplicate_order() -> BinanceError:
    return BinanceError(400, -2010, "Duplicate order sent.")


def insufficient_balance() -> BinanceError:
    return BinanceError(400, -2010, "Account has insufficient balance for requested action.")


def would_take() -> BinanceError:
    return BinanceError(400, -2010, "Order would immediately match and take.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(400, -2013, "Order does not exist.")


def unknown_order() -> BinanceError:
    return BinanceError(400, -2011, "Unknown order sent.")


def invalid_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(400, -1013, f"Filter failure: {name}")


def mandatory(param: str) -> BinanceError:
    return BinanceError(400, -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, "
                                    f"or malformed.")


def illegal_chars(param: str, legal: str) -> BinanceError:
    return BinanceError(400, -1100, f"Illegal characters found in parameter '{param}'; legal "
                                    f"range is '{legal}'.")


def illegal_chars_somewhere() -> BinanceError:
    """A request whose text is not UTF-8: no parameter can be read."""
    return BinanceError(400, -1100, "Illegal characters found in a parameter.")


def invalid_parameter(param: str) -> BinanceError:
    return BinanceError(400, -1130, f"Data sent for parameter '{param}' is not valid.")


def too_many_requests(retry_after_seconds: int, weight_per_minute: int = 6000) -> BinanceError:
    return BinanceError(429, -1003, f"Too much request weight used; current limit is "
                        f"{weight_per_minute} request weight per 1 MINUTE. Please use WebSocket "
                        f"Streams for live updates to avoid polling the API.",
                        {"Retry-After": str(retry_after_seconds)})


def ip_banned(until_ms: int, retry_after_seconds: int) -> BinanceError:
    return BinanceError(418, -1003, f"Way too much request weight used; IP banned until {until_ms}. "
                        f"Please use WebSocket Streams for live updates to avoid bans.",
                        {"Retry-After": str(retry_after_seconds)})


# ----------------------------------------------------------------------------- values
def fmt(value: Decimal) -> str:
    """Binance's 8-decimal string."""
    return f"{value:.8f}"


def parse_decimal(params: dict[str, str], name: str, required: bool = True) -> Decimal | None:
    text = params.get(name)
    if text in (None, ""):
        if required:
            raise mandatory(name)
        return None
    assert text is not None
    if not DECIMAL_RE.match(text):
        raise illegal_chars(name, DECIMAL_RE.pattern)
    return Decimal(text)


def parse_int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    """A non-negative integer parameter that fits a long; -1100 otherwise."""
    text = params.get(name)
    if text in (None, ""):
        return default
    assert text is not None
    if not INTEGER_RE.match(text) or int(text) > MAX_LONG:
        raise illegal_chars(name, INTEGER_RE.pattern)
    return int(text)


def parse_time_ms(params: dict[str, str], name: str) -> int | None:
    """An epoch-milliseconds parameter (``startTime``, ``endTime``): as ``parse_int``, and
    -1130 for a time after the year 9999, which no clock can name."""
    value = parse_int(params, name)
    if value is not None and value > MAX_TIME_MS:
        raise invalid_parameter(name)
    return value


def body_text(raw: bytes) -> str:
    """A request body as text: UTF-8, or -1100 (no parameter in it can be read)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise illegal_chars_somewhere() from None


# ----------------------------------------------------------------------------- shapes
def symbol_id(instrument: Instrument) -> str:
    return instrument.base + instrument.quote


def order_json(o: OrderRow, instrument: Instrument) -> dict[str, Any]:
    """``GET /api/v3/order`` and ``/openOrders`` entries."""
    return {"symbol": symbol_id(instrument), "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.public_client_id, "price": fmt(o.price), "origQty": fmt(o.orig_qty),
            "executedQty": fmt(o.executed_qty), "cummulativeQuoteQty": fmt(o.cumm_quote_qty),
            "status": o.status, "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
            "stopPrice": ZERO8, "icebergQty": ZERO8, "time": o.created_ms,
            "updateTime": o.updated_ms, "isWorking": True, "workingTime": o.created_ms,
            "origQuoteOrderQty": ZERO8, "selfTradePreventionMode": "NONE"}


def new_order_json(o: OrderRow, instrument: Instrument, trades: list[TradeRow],
                   resp_type: str) -> dict[str, Any]:
    """``POST /api/v3/order`` response for ``newOrderRespType`` ACK, RESULT or FULL."""
    out: dict[str, Any] = {"symbol": symbol_id(instrument), "orderId": o.order_id,
                           "orderListId": -1, "clientOrderId": o.public_client_id,
                           "transactTime": o.created_ms}
    if resp_type == "ACK":
        return out
    out.update({"price": fmt(o.price), "origQty": fmt(o.orig_qty),
                "executedQty": fmt(o.executed_qty), "origQuoteOrderQty": ZERO8,
                "cummulativeQuoteQty": fmt(o.cumm_quote_qty), "status": o.status,
                "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
                "workingTime": o.created_ms, "selfTradePreventionMode": "NONE"})
    if resp_type == "FULL":
        out["fills"] = [{"price": fmt(t.price), "qty": fmt(t.qty), "commission": fmt(t.commission),
                         "commissionAsset": t.commission_asset, "tradeId": t.trade_id}
                        for t in trades]
    return out


def cancel_json(o: OrderRow, instrument: Instrument, cancel_client_id: str,
                transact_ms: int) -> dict[str, Any]:
    """``DELETE /api/v3/order`` response."""
    return {"symbol": symbol_id(instrument), "origClientOrderId": o.public_client_id,
            "orderId": o.order_id, "orderListId": -1, "clientOrderId": cancel_client_id,
            "transactTime": transact_ms, "price": fmt(o.price), "origQty": fmt(o.orig_qty),
            "executedQty": fmt(o.executed_qty), "origQuoteOrderQty": ZERO8,
            "cummulativeQuoteQty": fmt(o.cumm_quote_qty), "status": o.status,
            "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
            "selfTradePreventionMode": "NONE"}


def trade_json(t: TradeRow, instrument: Instrument) -> dict[str, Any]:
    """``GET /api/v3/myTrades`` entry."""
    return {"symbol": symbol_id(instrument), "id": t.trade_id, "orderId": t.order_id,
            "orderListId": -1, "price": fmt(t.price), "qty": fmt(t.qty),
            "quoteQty": fmt(t.quote_qty), "commission": fmt(t.commission),
            "commissionAsset": t.commission_asset, "time": t.time_ms,
            "isBuyer": t.side == "BUY", "isMaker": t.is_maker, "isBestMatch": True}


def kline_json(c: Candle) -> list[Any]:
    """``GET /api/v3/klines`` row. Quote volume and trade counts are not in the shipped
    candles: reported as zero."""
    open_ms = to_epoch_ms(c.open_time)
    return [open_ms, fmt(c.open), fmt(c.high), fmt(c.low), fmt(c.close), fmt(c.volume),
            open_ms + 59_999, ZERO8, 0, ZERO8, ZERO8, "0"]


def symbol_json(i: Instrument) -> dict[str, Any]:
    """``exchangeInfo`` entry with PRICE_FILTER, LOT_SIZE and NOTIONAL filters."""
    return {
        "symbol": symbol_id(i), "status": "TRADING", "baseAsset": i.base, "baseAssetPrecision": 8,
        "quoteAsset": i.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": False,
        "ocoAllowed": False, "otoAllowed": False, "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False, "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt(i.tick_size),
             "maxPrice": "1000000.00000000", "tickSize": fmt(i.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": fmt(i.min_qty),
             "maxQty": fmt(i.max_qty if i.max_qty is not None else Decimal("9000000")),
             "stepSize": fmt(i.step_size)},
            {"filterType": "NOTIONAL", "minNotional": fmt(i.min_notional), "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": ["NONE"],
    }


RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]
