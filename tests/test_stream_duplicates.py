"""Duplicated and raced user-stream events through the real ccxt.pro binance handlers
(``handle_order_update``: ccxt's own order and trade caches), read by the streaming venue's
feed: a trade id is reported and recorded once, whatever ccxt's caches hold."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D
from typing import Any, AsyncIterator

import pytest
import structlog

from genesis.clock import VirtualClock
from genesis.domain.orders import Fill, Liquidity, OrderReport, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from genesis.venue.ccxt_stream import StreamingCcxtVenue

BTC = "BTC/USDT"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Client:
    """What ccxt.pro's handlers resolve their futures on (nothing waits here)."""

    def resolve(self, *args: Any, **kwargs: Any) -> None:
        return None


def report(x: str, X: str, z: str, t: int | None = None, last: str = "0") -> dict[str, Any]:
    """A spot ``executionReport`` of order 42 (client id ``cid1``, buy 0.3 at 100)."""
    return {"e": "executionReport", "E": 1700000000000, "s": "BTCUSDT", "c": "cid1", "S": "BUY",
            "o": "LIMIT", "f": "GTC", "q": "0.3", "p": "100", "x": x, "X": X, "i": 42,
            "l": last, "z": z, "L": "100", "n": "0", "N": "USDT", "T": 1700000000000,
            "t": -1 if t is None else t, "O": 1700000000000, "Z": "0", "m": True, "w": True}


@pytest.fixture
async def venue() -> AsyncIterator[StreamingCcxtVenue]:
    """A streaming venue whose client has markets but no server (no REST read can succeed)."""
    v = StreamingCcxtVenue("binance", exchange_url="http://127.0.0.1:9", clock=VirtualClock(T0),
                           fill_wait_seconds=0.05)
    v.ex.set_markets([{"id": "BTCUSDT", "symbol": BTC, "base": "BTC", "quote": "USDT", "baseId": "BTC",
                       "quoteId": "USDT", "type": "spot", "spot": True, "active": True,
                       "precision": {"amount": 1e-5, "price": 0.01}, "limits": {}}])
    v.ex.currencies = {"USDT": {"id": "USDT", "code": "USDT", "precision": 1e-8}}
    v.hub.user.orders_state.up = v.hub.user.trades_state.up = True
    try:
        yield v
    finally:
        await v.close()


def look(venue: StreamingCcxtVenue) -> None:
    """The feed reads ccxt's caches, as the hub's watch loops do after each message."""
    venue.hub.user.on_order_cache(list(venue.ex.orders))
    venue.hub.user.on_trade_cache(list(venue.ex.myTrades or []))


async def test_a_duplicated_execution_report_after_a_gap_reports_each_trade_once(venue: StreamingCcxtVenue) -> None:
    """Trade 1 is missed by the stream (read over REST by the reconciliation), trade 2's
    ``executionReport`` arrives twice, then the order is cancelled: ccxt's cached order lists
    trade 2 twice, which adds up to the order's filled quantity. The report carries trades 1
    and 2, once each, without a REST read."""
    ex, user, client = venue.ex, venue.hub.user, Client()
    ex.handle_order_update(client, report("NEW", "NEW", "0"))
    look(venue)
    venue.placed_at_reconnects["42"] = user.trades_state.reconnects
    user.on_trades([{"id": "1", "order": "42", "symbol": BTC, "amount": 0.1, "price": 100.0}])  # REST
    dup = report("TRADE", "PARTIALLY_FILLED", "0.2", t=2, last="0.1")
    ex.handle_order_update(client, dup)
    ex.handle_order_update(client, dict(dup))
    ex.handle_order_update(client, report("CANCELED", "CANCELED", "0.2"))
    look(venue)
    assert [t["id"] for t in user.orders["42"]["trades"]] == ["2", "2"]  # ccxt's list, as it is

    got = await venue.fetch_order(BTC, "cid1")
    assert (got.status, got.filled_qty) == (OrderStatus.CANCELLED, D("0.2"))
    assert sorted(f.trade_id for f in got.fills) == ["1", "2"]
    assert sum((f.qty for f in got.fills), D(0)) == D("0.2")


async def test_a_placement_response_listing_a_trade_twice_is_not_taken_as_its_fills(venue: StreamingCcxtVenue) -> None:
    """A response whose trades repeat one id is deduplicated by trade id: it no longer adds up
    to what was filled, so the fills come from the stream's trades of the order."""
    user = venue.hub.user
    user.on_trades([{"id": "7", "order": "9", "symbol": BTC, "amount": 0.1, "price": 100.0},
                    {"id": "8", "order": "9", "symbol": BTC, "amount": 0.1, "price": 100.0}])
    order = {"id": "9", "trades": [{"id": "8", "symbol": BTC, "amount": 0.1, "price": 100.0}] * 2}
    fills = await venue.order_fills(BTC, "cid9", order, D("0.2"))
    assert [f.trade_id for f in fills] == ["7", "8"]


def test_a_report_carrying_one_trade_twice_records_it_once() -> None:
    """``SliceRecords.outcome``: a fill whose trade id came earlier in the same report is
    dropped, so the execution's fold never sees a fill recorded twice."""
    from genesis.domain import events as ev
    from genesis.engine.slice_records import SliceRecords

    fill = Fill("2", "cid1", D("0.1"), D("100"), D(0), "USDT", Liquidity.MAKER, T0)
    agg = type("Agg", (), {"trade_ids": {"1"}})()
    s = type("Slice", (), {"index": 0})()
    request = OrderRequest("cid1", BTC, Side.BUY, OrderType.LIMIT, D("0.3"), D("100"), TimeInForce.POST_ONLY)
    rep = OrderReport("cid1", "42", OrderStatus.CANCELLED, D("0.3"),
                      (Fill("1", "cid1", D("0.1"), D("100"), D(0), "USDT", Liquidity.MAKER, T0), fill, fill))
    records = SliceRecords("e1", VirtualClock(T0), lambda *_: None, structlog.get_logger())  # type: ignore[arg-type,return-value]
    events = records.outcome(agg, s, request, rep)  # type: ignore[arg-type]
    assert [e.trade_id for e in events if isinstance(e, ev.FillRecorded)] == ["2"]
