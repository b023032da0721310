"""Binance spot WebSocket payloads: market streams and user-data events, with Binance's field
names (``web-socket-streams.md`` and ``user-data-stream.md`` of the spot API docs).

Decimal fields are 8-decimal strings (``binance_json.fmt``); times are epoch milliseconds of the
exchange's clock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from genesis.paper.binance_json import ZERO8, fmt
from genesis.paper.store import OrderRow, TradeRow
from genesis.paper.tape import TapeTrade


def trade_event(symbol_id: str, t: TapeTrade, event_ms: int) -> dict[str, Any]:
    """``<symbol>@trade``."""
    return {"e": "trade", "E": event_ms, "s": symbol_id, "t": t.trade_id, "p": fmt(t.price),
            "q": fmt(t.qty), "T": t.time_ms, "m": t.buyer_is_maker, "M": True}


def agg_trade_event(symbol_id: str, t: TapeTrade, event_ms: int) -> dict[str, Any]:
    """``<symbol>@aggTrade``: one aggregate per tape trade (its id is the trade's)."""
    return {"e": "aggTrade", "E": event_ms, "s": symbol_id, "a": t.trade_id, "p": fmt(t.price),
            "q": fmt(t.qty), "f": t.trade_id, "l": t.trade_id, "T": t.time_ms,
            "m": t.buyer_is_maker, "M": True}


def kline_event(symbol_id: str, trades: list[TapeTrade], open_ms: int, closed: bool,
                event_ms: int) -> dict[str, Any]:
    """``<symbol>@kline_1m`` built from the minute's trades so far (all of them when
    ``closed``: then it is the candle itself)."""
    prices = [t.price for t in trades]
    volume = sum((t.qty for t in trades), Decimal(0))
    quote = sum((t.qty * t.price for t in trades), Decimal(0))
    taker_buys = [t for t in trades if not t.buyer_is_maker]
    return {"e": "kline", "E": event_ms, "s": symbol_id, "k": {
        "t": open_ms, "T": open_ms + 59_999, "s": symbol_id, "i": "1m",
        "f": trades[0].trade_id, "L": trades[-1].trade_id, "o": fmt(prices[0]),
        "c": fmt(prices[-1]), "h": fmt(max(prices)), "l": fmt(min(prices)), "v": fmt(volume),
        "n": len(trades), "x": closed, "q": fmt(quote),
        "V": fmt(sum((t.qty for t in taker_buys), Decimal(0))),
        "Q": fmt(sum((t.qty * t.price for t in taker_buys), Decimal(0))), "B": "0"}}


def book_ticker_event(symbol_id: str, update_id: int, bid: Decimal, ask: Decimal,
                      size: Decimal) -> dict[str, Any]:
    """``<symbol>@bookTicker`` (spot: no event type or time, as on Binance)."""
    return {"u": update_id, "s": symbol_id, "b": fmt(bid), "B": fmt(size), "a": fmt(ask),
            "A": fmt(size)}


def depth_event(symbol_id: str, first_id: int, last_id: int, bids: list[list[str]],
                asks: list[list[str]], event_ms: int) -> dict[str, Any]:
    """``<symbol>@depth`` / ``@depth@100ms`` diff: levels whose size changed (``"0"``: gone)."""
    return {"e": "depthUpdate", "E": event_ms, "s": symbol_id, "U": first_id, "u": last_id,
            "b": bids, "a": asks}


def execution_report(o: OrderRow, symbol_id: str, execution_type: str, event_ms: int,
                     trade: TradeRow | None = None,
                     cancel_client_id: str | None = None) -> dict[str, Any]:
    """``executionReport`` for NEW, TRADE, CANCELED or EXPIRED. A cancel carries the cancel
    request's id in ``c`` and the order's own in ``C``, as on Binance."""
    return {
        "e": "executionReport", "E": event_ms, "s": symbol_id,
        "c": cancel_client_id or o.public_client_id, "S": o.side, "o": o.type,
        "f": o.time_in_force, "q": fmt(o.orig_qty), "p": fmt(o.price), "P": ZERO8, "F": ZERO8,
        "g": -1, "C": o.public_client_id if cancel_client_id else "", "x": execution_type,
        "X": o.status, "r": "NONE", "i": o.order_id,
        "l": fmt(trade.qty) if trade else ZERO8, "z": fmt(o.executed_qty),
        "L": fmt(trade.price) if trade else ZERO8,
        "n": fmt(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": trade.time_ms if trade else event_ms, "t": trade.trade_id if trade else -1,
        "v": 0, "I": event_ms, "w": o.is_open and o.type != "MARKET",
        "m": trade.is_maker if trade else False, "M": False, "O": o.created_ms,
        "Z": fmt(o.cumm_quote_qty), "Y": fmt(trade.quote_qty) if trade else ZERO8,
        "Q": ZERO8, "W": o.created_ms, "V": "NONE"}


def account_position(balances: list[dict[str, str]], event_ms: int) -> dict[str, Any]:
    """``outboundAccountPosition`` from ``/account``-style ``{"asset","free","locked"}`` rows."""
    return {"e": "outboundAccountPosition", "E": event_ms, "u": event_ms,
            "B": [{"a": b["asset"], "f": b["free"], "l": b["locked"]} for b in balances]}
