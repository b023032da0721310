"""Reconciliation of the user data stream after it reconnects: what it may have missed while it
was down is read over REST at once (not when an order's report is next needed) and merged into
the ``UserFeed``, so nothing is missed and nothing counted twice:

* every order this venue placed that the stream has not seen end is fetched by client order id
  (``GET /api/v3/order``; its state merged so that it never goes back, ``later_state``);
* every fill since the last trade id the stream itself delivered before it dropped, on each
  symbol with such orders (``GET /api/v3/myTrades`` from ``fromId``, paged; by ``orderId`` per
  order when it delivered none yet), merged by trade id. Not from the highest id the feed
  holds: trades merged from placement responses during the gap can be newer than fills the
  stream missed.

The stream was subscribed again before these reads, so whatever happens after them arrives on
it. Once a run completes, the orders count as seen without a gap as of the reconnect it
started after (``StreamingCcxtVenue`` reads them from the stream again); a run that fails
(REST refused) leaves them to the per-order REST reads, and a reconnect during a run makes it
run once more.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from genesis.venue.base import VenueError
from genesis.venue.stream_feeds import FINAL_CCXT_STATUSES, USER_ORDERS_KEPT, forget_oldest

log = structlog.get_logger("genesis.venue.stream_reconcile")
TRADES_PAGE = 1000
MAX_TRADE_PAGES = 20  # per symbol and run; a longer backlog is left to the per-order reads


class StreamReconciler:
    """Reconciles a ``StreamingCcxtVenue``'s user feed after each user-stream reconnect
    (``venue``: its hub, client, ``calls``, ``_cid_params`` and ``placed_at_reconnects``)."""

    def __init__(self, venue: Any):
        self.venue = venue
        self.placed: dict[str, tuple[str, str]] = {}  # order id -> (symbol, client order id)
        self.runs = 0  # completed reconciliations
        self.last_error = ""
        self._lock = asyncio.Lock()
        self._again = False

    def order_placed(self, order_id: str, symbol: str, client_order_id: str) -> None:
        """Remember an order this venue placed (the most recent ``USER_ORDERS_KEPT``)."""
        self.placed[order_id] = (symbol, client_order_id)
        forget_oldest(self.placed, USER_ORDERS_KEPT)

    async def run(self) -> None:
        """One reconciliation (a call while one runs makes that one go again)."""
        if self._lock.locked():
            self._again = True
            return
        async with self._lock:
            while True:
                self._again = False
                try:
                    await self._reconcile()
                except VenueError as exc:  # REST refused: the per-order reads stay in force
                    self.last_error = str(exc)
                    log.warning("user_stream_reconcile_failed", error=self.last_error)
                    return
                if not self._again:
                    return

    async def _reconcile(self) -> None:
        venue, user = self.venue, self.venue.hub.user
        as_of, drops = user.trades_state.reconnects, user.drops
        unfinished = [oid for oid in self.placed
                      if (user.orders.get(oid) or {}).get("status") not in FINAL_CCXT_STATUSES]
        for oid in unfinished:
            symbol, cid = self.placed[oid]
            order = await venue.calls.call("fetch_order", lambda s=symbol, c=cid: venue.ex.fetch_order(
                "", s, venue._cid_params(c)))
            user.on_orders([order])
        symbols = sorted({self.placed[oid][0] for oid in unfinished})
        fills = 0
        for symbol in symbols:
            last = user.reconcile_from(symbol)
            if last is None:
                for oid in (o for o in unfinished if self.placed[o][0] == symbol):
                    trades = await venue.calls.call("fetch_my_trades", lambda s=symbol, o=oid: (
                        venue.ex.fetch_my_trades(s, None, TRADES_PAGE, {"orderId": o})))
                    fills += self._merge(trades)
                continue
            for _ in range(MAX_TRADE_PAGES):
                page = await venue.calls.call("fetch_my_trades_from_id", lambda s=symbol, f=last + 1: (
                    venue.ex.fetch_my_trades(s, None, TRADES_PAGE, {"fromId": str(f)})))
                fills += self._merge(page)
                ids = [int(t["id"]) for t in page if str(t.get("id", "")).isdigit()]
                if len(page) < TRADES_PAGE or not ids:
                    break
                last = max(ids)
        for oid in self.placed:  # the stream's view of them is whole again as of ``as_of``
            venue.placed_at_reconnects[oid] = max(venue.placed_at_reconnects.get(oid, 0), as_of)
        user.reconciled(drops)
        self.runs += 1
        log.info("user_stream_reconciled", orders=len(unfinished), symbols=len(symbols),
                 trades=fills, reconnects=as_of)

    def _merge(self, trades: list[dict[str, Any]]) -> int:
        mine = [t for t in trades if t.get("order") is not None and t.get("id") is not None]
        self.venue.hub.user.on_trades(mine)
        return len(mine)
