"""``CcxtVenue``: any ccxt exchange (``genesis run --venue ccxt:binance``) behind the ``Venue``
protocol. See ``docs/ccxt.md``.

* Spot only: Binance is told to load spot markets only and not to fetch currencies (both would
  call extra endpoints); other exchanges get ``defaultType: spot`` and non-spot markets are
  dropped.
* Client order ids are the domain's deterministic ids, sent in Binance's ``newClientOrderId``
  (ccxt ``clientOrderId`` elsewhere) and used to look orders up (``origClientOrderId``).
* Fills come from the order's own trades (``fetch_my_trades`` filtered by order id; at
  placement, the fills of Binance's FULL response). A final report always carries fills that
  add up to the filled quantity, or the call fails as retryable / unknown outcome.
* Every number is converted to ``Decimal`` through its shortest string form, never used as float.
* Errors: ``genesis.venue.ccxt_errors``, mapped in ``ccxt_calls.CcxtCalls``, which every REST
  request goes through (request weight, time resync, retried read steps).
* New orders (``ccxt_order_send``) first take a slot in the account's shared ``OrderBudget``
  (new orders per fixed window of the exchange's clock), held until the answer, whose
  ``X-MBX-ORDER-COUNT-10S`` the budget adopts; an order refused for the window's count
  (-1015, not placed) asks the budget again and goes in a later window, within its deadline.
  The budget's ``daily`` counts the account's orders in the exchange's UTC day
  (``X-MBX-ORDER-COUNT-1D``); at its limit less a margin an order is refused unsent. The budget
  reads the exchange's clock (``exchange_time``: live, the wall clock less ccxt's measured
  ``timeDifference``). ccxt's own request limiter stays on.
* On a Binance-family exchange (``binance*``; the paper exchange is reached as ``binance``)
  every new order carries its own ``timestamp`` (taken as it is sent, on the exchange's clock as
  ccxt reads it) and ``recvWindow`` (``send_window``): the exchange refuses it once older than
  that, so ``settle_sends`` knows when an earlier request under a client order id can no longer
  become an order (``genesis.venue.send_fence``; Binance takes a filled order's id again). Only
  such a venue has ``FencesResends``: any other exchange is sent no stamp, so an order of unknown
  outcome is only looked up there, never sent again (``genesis.engine.venue_calls``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

import ccxt.async_support as ccxt
import structlog

from genesis.clock import Clock, WallClock
from genesis.domain.instrument import Instrument
from genesis.domain.orders import BookTop, Fill, OrderReport, OrderRequest, OrderStatus, TimeInForce
from genesis.venue.account_stream import equity_in_usdt, ticker_price
from genesis.venue.base import (AcceptedUnreportedError, Candle, PermanentVenueError, RetryableVenueError,
                                UnknownOutcomeError)
from genesis.venue.ccxt_calls import CcxtCalls
from genesis.venue.ccxt_errors import describe, map_ccxt_error
from genesis.venue.ccxt_order_send import order_params, send_within_budget
from genesis.venue.ccxt_support import (build_exchange, dec, dt_to_ms, market_to_instrument, distinct_trades,
                                        ms_to_dt, order_terms, request_clock_ms, trade_to_fill)
from genesis.venue.budget_settings import BudgetSettings
from genesis.venue.credentials import Credentials
from genesis.venue.exchange_clock import exchange_time
from genesis.venue.order_budget import OrderBudget
from genesis.venue.request_weight import RequestWeight, shared_weight
from genesis.venue.send_fence import SendStamps, SendWindow

log = structlog.get_logger("genesis.venue.ccxt")

_OHLCV_PAGE = 1000
_TRADES_PAGE = 1000
_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED,
           "cancelled": OrderStatus.CANCELLED, "expired": OrderStatus.CANCELLED,
           "rejected": OrderStatus.REJECTED}


class CcxtVenue:
    """A ccxt exchange as a ``Venue`` (see module docstring).

    ``exchange`` may be injected; otherwise it is built from ``exchange_id``, ``credentials``,
    ``exchange_url``, ``timeout_ms``, ccxt ``options`` and other ccxt constructor ``config``
    (tests shorten ``rateLimit``). ``budget`` defaults to the account's
    process-wide ``OrderBudget`` made with ``budget_settings`` on the exchange's clock
    (``exchange_time`` of ``clock``: the exchange's windows are on the exchange's clock).
    ``clock`` stamps book tops and decides which candles closed.
    ``time_scale``: the exchange's clock runs this many times faster than the wall clock (a
    paper exchange at ``--speed N``); its rate limits, stated in its own time, are scaled too.
    ``send_window``: the ``recvWindow`` of order requests and the clock margin of a re-send;
    ``may_send``: whether this process may still send orders (the daemon's account lease).
    """

    def __init__(self, exchange_id: str, *, credentials: Credentials | None = None,
                 exchange_url: str | None = None, clock: Clock | None = None,
                 budget: OrderBudget | None = None, timeout_ms: int = 10_000,
                 options: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                 exchange: ccxt.Exchange | None = None, time_scale: float = 1.0,
                 budget_settings: BudgetSettings | None = None, send_window: SendWindow | None = None,
                 may_send: Callable[[], bool] | None = None):
        self.exchange_id = exchange_id
        self.name = f"ccxt:{exchange_id}"
        self.clock: Clock = clock or WallClock()
        self.ex = exchange or build_exchange(exchange_id, credentials, exchange_url, timeout_ms,
                                             options, config, time_scale)
        self.budget = budget or (budget_settings or BudgetSettings()).shared(
            exchange_id, credentials.api_key if credentials else None, exchange_time(self.clock, self.ex))
        self.weight: RequestWeight = shared_weight(
            exchange_id, credentials.api_key if credentials else None)
        self._binance = exchange_id.startswith("binance")
        self._log = log.bind(venue=self.name)
        self.calls = CcxtCalls(self.ex, self.weight, time_scale, self._log)  # every REST request
        self.stamps = SendStamps(send_window or SendWindow(), self._request_clock_ms, may_send)
        if self._binance:  # ``FencesResends``, on this venue object only: the exchange gets the stamp
            self.request_clock_ms, self.settle_sends = self._request_clock_ms, self._settle_sends
        else:
            self._log.warning("unknown_outcomes_resolved_by_lookup_only", reason=(
                "this exchange is sent no request stamp: an order whose send got no answer is looked up "
                "by its client order id until it is shown, never sent again (docs/guarantees.md)"))

    # ------------------------------------------------------------------ market data
    async def instruments(self) -> dict[str, Instrument]:
        """Spot markets' trading rules, keyed by unified symbol. A transient refusal (429/418,
        5xx, dropped connection) is retried a few times, honouring ``Retry-After``: a daemon
        starting while the exchange rate-limits it must wait, not exit (``CcxtCalls.read_step``)."""
        markets = await self.calls.read_step("load_markets", lambda: self.ex.load_markets())
        out: dict[str, Instrument] = {}
        for symbol, m in markets.items():
            if m.get("spot") and m.get("active") is not False:
                try:
                    out[symbol] = self.instrument_from_market(m)
                except (ValueError, TypeError, ArithmeticError) as exc:
                    self._log.debug("market_skipped", symbol=symbol, reason=str(exc))
        return out

    def instrument_from_market(self, market: dict[str, Any]) -> Instrument:
        """The domain's trading rules of one ccxt market (see ``market_to_instrument``)."""
        return market_to_instrument(market, self.ex.precisionMode == ccxt.TICK_SIZE)

    async def book_top(self, symbol: str) -> BookTop:
        """Best bid/ask from a 5-level order book."""
        book = await self.calls.call("fetch_order_book", lambda: self.ex.fetch_order_book(symbol, 5))
        if not book.get("bids") or not book.get("asks"):
            raise RetryableVenueError(f"{symbol}: empty side in the order book")
        stamp = ms_to_dt(book["timestamp"]) if book.get("timestamp") else self.clock.now()
        return BookTop(dec(book["bids"][0][0]), dec(book["asks"][0][0]), stamp)

    async def candles(self, symbol: str, start: datetime, end: datetime,
                      timeframe: str = "1m") -> list[Candle]:
        """Closed candles with ``start <= open_time < end``, paging ``fetch_ohlcv``."""
        step_ms = int(self.ex.parse_timeframe(timeframe) * 1000)
        now_ms = dt_to_ms(self.clock.now())
        since, end_ms, out = dt_to_ms(start), dt_to_ms(end), []
        while since < end_ms:
            page = await self.calls.read_step("fetch_ohlcv", lambda s=since: self.ex.fetch_ohlcv(
                symbol, timeframe, s, _OHLCV_PAGE, {"until": end_ms - 1}))
            rows = [r for r in page if since <= r[0] < end_ms]
            out += [Candle(ms_to_dt(r[0]), dec(r[1]), dec(r[2]), dec(r[3]), dec(r[4]), dec(r[5]))
                    for r in rows if r[0] + step_ms <= now_ms]
            if not rows or len(page) < _OHLCV_PAGE:
                break
            since = rows[-1][0] + step_ms
        return out

    async def equity_usdt(self) -> Decimal:
        """Total balances valued at last prices of ``ASSET/USDT``; assets without such a market
        are left out (logged)."""
        balance = await self.calls.call("fetch_balance", lambda: self.ex.fetch_balance())
        totals = {a: dec(v) for a, v in (balance.get("total") or {}).items() if v}
        markets = self.ex.markets or {}
        symbols = [f"{a}/USDT" for a in totals if a != "USDT" and f"{a}/USDT" in markets]
        tickers = (await self.calls.call("fetch_tickers", lambda: self.ex.fetch_tickers(symbols))
                   if symbols else {})
        prices = {s: p for s, t in tickers.items() if (p := ticker_price(t or {})) is not None}
        return equity_in_usdt(totals, prices, self._unpriced)

    def _unpriced(self, asset: str, amount: Decimal) -> None:
        self._log.warning("equity_asset_unpriced", asset=asset, amount=str(amount))

    async def balances(self) -> dict[str, Decimal]:
        """Total balance per asset (free + locked)."""
        balance = await self.calls.call("fetch_balance", lambda: self.ex.fetch_balance())
        return {a: dec(v) for a, v in (balance.get("total") or {}).items() if v is not None}

    # ------------------------------------------------------------------ orders
    async def place_order(self, request: OrderRequest) -> OrderReport:
        """Send one order with the request's client order id (see ``ccxt_errors`` for failures).

        A post-only order that would take comes back as a ``REJECTED`` report."""
        cid = request.client_order_id
        price, params = order_params(request, self._binance, self.stamps.window.recv_window_ms)
        self.stamps.check_may_send()  # before the budget counts it (checked again as it is stamped)
        try:
            order = await send_within_budget(
                request, lambda: self.calls.call("create_order", lambda: self.ex.create_order(
                    request.symbol, request.order_type.value, request.side.value, str(request.qty),
                    price, self._stamped(cid, params)), changes_state=True, raw=True),
                budget=self.budget, clock=self.clock, headers=self.calls.headers,
                mapped=self.calls.mapped, log=self._log)
        except ccxt.OrderImmediatelyFillable as exc:
            if request.time_in_force is not TimeInForce.POST_ONLY:
                raise map_ccxt_error(exc, changes_state=True) from exc
            return OrderReport(cid, None, OrderStatus.REJECTED, Decimal(0),
                               reason=f"post-only order would take liquidity ({describe(exc)})")
        try:
            return await self._report(request.symbol, cid, order, at_placement=True)
        except (RetryableVenueError, PermanentVenueError) as exc:
            # the order was accepted: whatever failed while completing its report, re-sending
            # is wrong; the engine must look it up
            raise AcceptedUnreportedError(f"{cid} accepted, report incomplete: {exc}") from exc

    def _stamped(self, cid: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the request's ``timestamp``, taken now (after the budget's wait),
        remembered for ``settle_sends``; ``LeaseLapsed`` (not sent) once the lease is gone."""
        stamp = self.stamps.stamp(cid)
        return {**params, "timestamp": stamp} if self._binance else params

    def _request_clock_ms(self) -> int:
        """The exchange's request clock now (``request_clock_ms`` on a Binance venue)."""
        return request_clock_ms(self.ex)

    async def _settle_sends(self, client_order_id: str, sent_by_ms: int | None = None) -> None:
        """``settle_sends`` on a Binance venue (``FencesResends``): once no request under
        ``client_order_id`` stamped here or by another process no later than ``sent_by_ms`` can
        still be accepted (``SendStamps.settle``)."""
        await self.stamps.settle(client_order_id, sent_by_ms)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """The order found by client order id (fills included); ``NOT_FOUND`` when unknown."""
        try:
            order = await self.calls.call("fetch_order", lambda: self.ex.fetch_order(
                "", symbol, self._cid_params(client_order_id)), raw=True)
        except ccxt.OrderNotFound:
            return OrderReport(client_order_id, None, OrderStatus.NOT_FOUND, Decimal(0))
        except ccxt.BaseError as exc:
            raise self.calls.mapped(exc, changes_state=False) from exc
        return await self._report(symbol, client_order_id, order)

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderReport:
        """Cancel by client order id and return the final report. An order that is already
        final (Binance answers -2011 "Unknown order sent.") or unknown is fetched instead."""
        try:
            order = await self.calls.call("cancel_order", lambda: self.ex.cancel_order(
                "", symbol, self._cid_params(client_order_id)), changes_state=True, raw=True)
        except ccxt.OrderNotFound:
            return await self.fetch_order(symbol, client_order_id)
        except ccxt.BaseError as exc:
            raise self.calls.mapped(exc, changes_state=True) from exc
        return await self._report(symbol, client_order_id, order)

    async def open_orders(self, symbol: str) -> list[OrderReport]:
        """Reports of the account's open orders on ``symbol`` (reconciliation after a crash:
        orders the store does not know about). Orders without a client id get ``""``."""
        orders = await self.calls.call("fetch_open_orders", lambda: self.ex.fetch_open_orders(symbol))
        return [await self._report(symbol, o.get("clientOrderId") or "", o) for o in orders]

    async def fetch_fills(self, symbol: str, venue_order_id: str,
                          client_order_id: str = "") -> list[Fill]:
        """Every trade of one order (paged), as ``Fill``s keyed by the exchange's trade id."""
        params: dict[str, Any] = {"orderId": venue_order_id}
        fills: list[Fill] = []
        while True:
            page = await self.calls.call("fetch_my_trades", lambda p=dict(params): self.ex.fetch_my_trades(
                symbol, None, _TRADES_PAGE, p))
            known = {f.trade_id for f in fills}  # a trade id once, across pages too
            mine = [t for t in distinct_trades(page) if str(t.get("order")) == str(venue_order_id)
                    and str(t["id"]) not in known]
            fills += [self.fill_from_trade(t, client_order_id) for t in mine]
            if len(page) < _TRADES_PAGE or not self._binance:
                return fills
            params["fromId"] = str(int(page[-1]["id"]) + 1)

    async def order_fills(self, symbol: str, cid: str, order: dict[str, Any],
                          filled: Decimal) -> list[Fill]:
        """The fills of an order that has ``filled`` executed: those of a placement response
        (its immediate, taker executions) when they add up, else the order's trades (REST)."""
        fills = [self.fill_from_trade(t, cid) for t in distinct_trades(order.get("trades"))]
        if sum((f.qty for f in fills), Decimal(0)) != filled:
            fills = await self.fetch_fills(symbol, order["id"], cid)
        return fills

    def fill_from_trade(self, trade: dict[str, Any], client_order_id: str) -> Fill:
        """ccxt unified trade -> ``Fill`` (see ``trade_to_fill``)."""
        return trade_to_fill(trade, client_order_id, self.clock.now())

    async def _report(self, symbol: str, cid: str, order: dict[str, Any],
                      at_placement: bool = False) -> OrderReport:
        filled = dec(order.get("filled") or 0)
        status = _STATUS.get(order.get("status") or "", OrderStatus.OPEN)
        if status is OrderStatus.OPEN and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        fills: list[Fill] = []
        if filled > 0:
            fills = await self.order_fills(symbol, cid, order, filled)
            got = sum((f.qty for f in fills), Decimal(0))
            if got != filled:
                message = (f"{cid}: exchange reports {filled} filled but its trades add up to "
                           f"{got}; look again")
                if at_placement:
                    raise UnknownOutcomeError(message)
                raise RetryableVenueError(message)
        reason = {"expired": "expired: IOC remainder not marketable", "canceled": "cancelled",
                  "rejected": f"rejected by {self.exchange_id}"}.get(order.get("status") or "")
        return OrderReport(cid, str(order["id"]) if order.get("id") else None, status, filled,
                           tuple(fills), reason,
                           order_terms(order, int(self.ex.options.get("timeDifference") or 0)))

    def _cid_params(self, client_order_id: str) -> dict[str, str]:
        return {"origClientOrderId" if self._binance else "clientOrderId": client_order_id}

    # ------------------------------------------------------------------ plumbing
    def request_weight(self) -> tuple[float, float]:
        """(request weight used in the exchange's current minute, its limit), account-wide."""
        return self.weight.used()

    async def close(self) -> None:
        """Close the ccxt HTTP session."""
        await self.ex.close()
