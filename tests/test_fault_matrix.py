"""The fault matrix: every exchange failure the engine must survive, against the paper exchange
over HTTP through the real ccxt client (``CcxtVenue``) and the engine's ``VenueCaller`` and
runner. Each case shows what the engine does (retry with the same client id, resolve by
lookup, back off, or fail the slice with the reason recorded) and that the exchange ends up
with at most one order per client id (its own ``orders`` table and request audit).

Time is a ``VirtualClock``: back-offs are virtual seconds, so "waited at least Retry-After"
is an exact assertion, not a timing one.
"""

from __future__ import annotations

import asyncio
import decimal
from contextlib import asynccontextmanager
from decimal import Decimal as D
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import ccxt.async_support as ccxt
import pytest
import structlog
from sqlalchemy import select
from structlog.testing import capture_logs

from genesis.clock import VirtualClock
from genesis.config import RuntimeConfig, parse_config
from genesis.domain.orders import OrderReport, OrderRequest, OrderStatus, Side
from genesis.runtime.wiring import EngineOptions, build_engine
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.paper.faults import Faults
from genesis.paper.server import PaperServer, start_paper_exchange
from genesis.requests import validate_submit
from genesis.store import tables as t
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.order_budget import OrderBudget
from genesis.venue.send_fence import SendWindow
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, market_series, minute, order
from tests.migrated import migrated_sqlite

CID = "gfa0000000000-0-0"
BALANCES = {"USDT": D("1000"), "BTC": D("5")}


async def start_paper(tmp_path: Path, clock: VirtualClock, port: int = 0, **faults: Any) -> PaperServer:
    return await start_paper_exchange(port=port, state_path=tmp_path / "paper.db", key=KEY, secret=SECRET,
                                      clock=clock, series=market_series(), initial_balances=BALANCES,
                                      faults=Faults(**faults))


# order requests expire fast: a re-send after an unknown outcome waits their recvWindow out (wall time)
SEND_WINDOW = SendWindow(recv_window_ms=300, clock_margin_ms=100)


def ccxt_venue(url: str, clock: VirtualClock) -> CcxtVenue:
    return CcxtVenue("binance", credentials=Credentials(KEY, SECRET), exchange_url=url, clock=clock,
                     budget=OrderBudget(clock=clock), timeout_ms=300, config=FAST, send_window=SEND_WINDOW)


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[tuple[PaperServer, CcxtVenue, VirtualClock]]:
    clock = VirtualClock(minute(0.5))
    server = await start_paper(tmp_path, clock)
    venue = ccxt_venue(server.url, clock)
    await venue.instruments()
    try:
        yield server, venue, clock
    finally:
        await venue.close()
        await server.stop()


def heal_after(server: PaperServer, fault: str, n: int) -> Callable[[], bool]:
    """A ``should_stop`` hook for the caller: it never stops, but once the exchange has
    injected ``n`` faults of kind ``fault`` it switches fault injection off (the outage ends)."""
    def hook() -> bool:
        if server.app.faults.counts.get(fault, 0) >= n:
            server.set_faults(Faults())
        return False
    return hook


async def place(clock: VirtualClock, venue: CcxtVenue, request: OrderRequest,
                should_stop: Callable[[], bool] = lambda: False) -> OrderReport:
    """``VenueCaller.place`` as a runner calls it: an actor on the virtual clock."""
    caller = VenueCaller(venue, clock, RetryPolicy(base_seconds=1.0, max_seconds=30.0), should_stop,
                         structlog.get_logger("test"))
    async with clock.actor():
        return await caller.place(request, clock.now())


def exchange_orders(server: PaperServer) -> list[tuple[str, D]]:
    return [(o.client_order_id, o.executed_qty) for o in server.exchange.store.all_orders()]


def order_posts(server: PaperServer) -> list[tuple[str, int, int | None, str | None]]:
    """Every ``POST /api/v3/order`` the exchange received: (client id, HTTP status, code, fault)."""
    return list(server.exchange.store.db.execute(
        "SELECT client_order_id, http_status, error_code, fault FROM requests "
        "WHERE method = 'POST' AND path = '/api/v3/order' ORDER BY id"))


# ---------------------------------------------------------------------- resolved by lookup
@pytest.mark.parametrize("fault,cause", [
    ({"p_timeout_after_accept": 1.0, "hold_seconds": 0.6}, "RequestTimeout"),
    ({"p_drop_response": 1.0}, "ExchangeNotAvailable"),
], ids=["RequestTimeout-after-accept", "dropped-connection-after-accept"])
async def test_lost_response_after_accept_is_resolved_by_lookup_never_resent(paper, fault, cause) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock = paper
    server.set_faults(Faults(orders_only=True, **fault))
    with capture_logs() as logs:
        report = await place(clock, venue, order(CID, Side.BUY, "0.5"))
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.5"))
    unknown = [e for e in logs if e["event"] == "order_outcome_unknown"]
    assert len(unknown) == 1 and cause in unknown[0]["error"]
    assert exchange_orders(server) == [(CID, D("0.5"))]
    assert [(c, s) for c, s, _, _ in order_posts(server)] == [(CID, 200)]  # sent once, found by its id


async def test_5xx_on_place_is_looked_up_then_resent_with_the_same_client_id(paper) -> None:  # type: ignore[no-untyped-def]
    """ExchangeNotAvailable (HTTP 503): the request may have arrived, so the order is looked up
    first; the exchange never saw it, so it is sent again, with the same client id."""
    server, venue, clock = paper
    server.set_faults(Faults(orders_only=True, p_5xx=1.0))
    report = await place(clock, venue, order(CID, Side.BUY, "0.5"), heal_after(server, "5xx", 2))
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.5"))
    assert [(c, s, f) for c, s, _, f in order_posts(server)] == [(CID, 503, "5xx"), (CID, 503, "5xx"),
                                                                 (CID, 200, None)]
    lookups = list(server.exchange.store.db.execute(
        "SELECT client_order_id, error_code FROM requests WHERE method = 'GET' AND path = '/api/v3/order'"))
    # after each 503: looked up at once, and again once the request's recvWindow has passed
    assert lookups == [(CID, -2013)] * 4  # "Order does not exist."
    assert exchange_orders(server) == [(CID, D("0.5"))]


# ---------------------------------------------------------------------- retried: nothing happened
@pytest.mark.parametrize("kind", ["429", "418"])
async def test_rate_limit_and_ban_back_off_for_retry_after_then_resend(paper, kind) -> None:  # type: ignore[no-untyped-def]
    """DDoSProtection (HTTP 429 / 418 ban): nothing was processed; the caller waits at least
    the server's Retry-After (virtual seconds) and sends the same order again."""
    server, venue, clock = paper
    server.set_faults(Faults(orders_only=True, retry_after_seconds=7, **{f"p_{kind}": 1.0}))
    started = clock.now()
    with capture_logs() as logs:
        report = await place(clock, venue, order(CID, Side.BUY, "0.5"), heal_after(server, kind, 2))
    assert report.status is OrderStatus.FILLED
    retries = [e for e in logs if e["event"] == "order_retry_before_send"]
    assert len(retries) == 2 and all("DDoSProtection" in e["error"] for e in retries)
    assert (clock.now() - started).total_seconds() >= 2 * 7
    assert [(c, s) for c, s, _, _ in order_posts(server)] == [(CID, int(kind)), (CID, int(kind)), (CID, 200)]
    assert exchange_orders(server) == [(CID, D("0.5"))]


async def test_too_many_new_orders_waits_for_the_next_window_and_resends(paper) -> None:  # type: ignore[no-untyped-def]
    """RateLimitExceeded (Binance -1015 "Too many new orders" in this 10 s window), injected in
    the ccxt client where ccxt would raise it: the order was not placed; the venue's order budget
    takes the window as full and the order goes in the next window of the exchange's clock,
    once."""
    server, venue, clock = paper
    real_create, refusals = venue.ex.create_order, []

    async def create_order(*args: Any, **kwargs: Any) -> Any:
        if not refusals:
            refusals.append(args)
            raise ccxt.RateLimitExceeded('binance {"code":-1015,"msg":"Too many new orders; current limit is '
                                         '50 orders per 10 SECOND."}')
        return await real_create(*args, **kwargs)

    venue.ex.create_order = create_order  # type: ignore[method-assign]
    started = clock.now()
    with capture_logs() as logs:
        report = await place(clock, venue, order(CID, Side.BUY, "0.5"))
    assert report.status is OrderStatus.FILLED and len(refusals) == 1
    full = [e for e in logs if e["event"] == "order_window_full"]
    assert len(full) == 1 and "RateLimitExceeded" in full[0]["error"]
    window = venue.budget.index(started.timestamp())
    assert venue.budget.index(clock.now().timestamp()) > window, "sent again in a later window"
    assert exchange_orders(server) == [(CID, D("0.5"))]


async def test_invalid_nonce_resyncs_the_clock_and_resends(paper) -> None:  # type: ignore[no-untyped-def]
    """InvalidNonce (-1021): the server's clock is 90 s behind ours; the venue resyncs its time
    offset from /api/v3/time and the caller sends the same order again."""
    server, venue, clock = paper
    server.set_faults(Faults(clock_skew_ms=-90_000))
    report = await place(clock, venue, order(CID, Side.BUY, "0.5"))
    assert report.status is OrderStatus.FILLED
    assert [(c, s, code) for c, s, code, _ in order_posts(server)] == [(CID, 400, -1021), (CID, 200, None)]
    assert exchange_orders(server) == [(CID, D("0.5"))]


async def test_network_error_before_connecting_is_retried_with_the_same_client_id(tmp_path: Path) -> None:
    """NetworkError with no connection (the exchange is down: connection refused): the order
    certainly did not arrive; the caller backs off and retries until the exchange is back."""
    clock = VirtualClock(minute(0.5))
    server = await start_paper(tmp_path, clock)
    port = int(server.url.rsplit(":", 1)[1])
    venue = ccxt_venue(server.url, clock)
    await venue.instruments()
    await server.stop()  # the exchange goes away
    restarted: list[PaperServer] = []

    def come_back() -> bool:
        if not restarted:
            restarted.append(None)  # type: ignore[arg-type]
            asyncio.get_running_loop().create_task(_restart(restarted, tmp_path, clock, port))
        return False

    try:
        with capture_logs() as logs:
            report = await place(clock, venue, order(CID, Side.BUY, "0.5"), come_back)
        assert report.status is OrderStatus.FILLED
        refused = [e for e in logs if e["event"] == "order_retry_before_send"]
        assert refused and all(e["client_order_id"] == CID and "ExchangeNotAvailable" in e["error"] for e in refused)
        assert exchange_orders(restarted[-1]) == [(CID, D("0.5"))]
        assert [(c, s) for c, s, _, _ in order_posts(restarted[-1])] == [(CID, 200)]
    finally:
        await venue.close()
        if restarted and restarted[-1] is not None:
            await restarted[-1].stop()


async def _restart(holder: list[PaperServer], tmp_path: Path, clock: VirtualClock, port: int) -> None:
    holder.append(await start_paper(tmp_path, clock, port=port))


# ---------------------------------------------------------------------- duplicate and permanent
async def test_duplicate_order_answer_fetches_the_existing_order_and_never_resends(paper) -> None:  # type: ignore[no-untyped-def]
    """-2010 "Duplicate order sent.": an earlier send with this client id reached the exchange
    (its answer was lost) and its order is open; the caller fetches that order instead of
    placing another. (A filled order's id is taken again, as on Binance: test_resend_fence.py.)"""
    server, venue, clock = paper
    resting = order(CID, Side.SELL, "0.5", "1000")
    first = await venue.place_order(resting)  # the earlier, "lost" send
    report = await place(clock, venue, resting)
    assert (report.status, report.venue_order_id, report.filled_qty) == (OrderStatus.OPEN, first.venue_order_id, D(0))
    assert [(s, code) for _, s, code, _ in order_posts(server)] == [(200, None), (400, -2010)]
    assert exchange_orders(server) == [(CID, D(0))]


async def test_insufficient_funds_is_a_rejected_report_with_the_reason_and_no_retry(paper) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock = paper
    report = await place(clock, venue, order(CID, Side.BUY, "50"))  # 5000 USDT, the account has 1000
    assert (report.status, report.filled_qty) == (OrderStatus.REJECTED, D(0))
    assert "InsufficientFunds" in (report.reason or "") and "insufficient balance" in (report.reason or "")
    assert [(s, code) for _, s, code, _ in order_posts(server)] == [(400, -2010)]
    assert exchange_orders(server) == []


# ---------------------------------------------------------------------- through the runner
@asynccontextmanager
async def engine_on(tmp_path: Path, clock: VirtualClock, venue: CcxtVenue,
                    config: RuntimeConfig) -> AsyncIterator[tuple[Any, Any, Any]]:
    """The daemon's wiring (store, supervisor) on a given clock and venue."""
    db_path = tmp_path / "genesis.db"
    migrated_sqlite(db_path)
    engine = await build_engine(db_path, config, clock, lambda _clock: venue, lambda v: v.instruments(),
                                EngineOptions(candle_cache=False))
    try:
        yield engine.store, engine.supervisor, engine.database
    finally:
        await engine.close(close_venue=False)


TAKER_ONLY = parse_config({"router": {"maker_first": False}})


def single(qty: str, config: RuntimeConfig = TAKER_ONLY):  # type: ignore[no-untyped-def]
    return validate_submit(symbol=BTC, side="buy", qty=qty, algo="single", duration=None, slices=None,
                           limit_price=None, request_id=None, instruments=SIM_INSTRUMENTS, config=config)


async def test_runner_fails_the_slice_with_the_reason_when_funds_are_insufficient(paper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock = paper
    async with engine_on(tmp_path, clock, venue, TAKER_ONLY) as (store, supervisor, engine):
        execution_id = await supervisor.submit(single("50"))
        await supervisor.wait_all()
        async with engine.connect() as conn:
            slices = (await conn.execute(select(t.execution_slices.c.status, t.execution_slices.c.reason))).all()
            orders = (await conn.execute(select(t.child_orders.c.status, t.child_orders.c.reason))).all()
        agg = await store.load(execution_id)
    assert [s for s, _ in slices] == ["failed"] and "insufficient balance" in slices[0][1]
    assert [s for s, _ in orders] == ["rejected"] and "InsufficientFunds" in orders[0][1]
    assert agg.filled_qty == 0 and agg.state.value == "expired"
    assert exchange_orders(server) == []


async def test_runner_completes_through_every_fault_at_once_without_duplicates(paper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """5xx, 429, timeouts after accept and dropped responses on every order request: each
    child order reaches the exchange once, and the recorded fills are the exchange's."""
    server, venue, clock = paper
    server.set_faults(Faults(orders_only=True, p_5xx=0.3, p_429=0.2, p_timeout_after_accept=0.2,
                             p_drop_response=0.2, hold_seconds=0.4, retry_after_seconds=0, seed=5))
    async with engine_on(tmp_path, clock, venue, TAKER_ONLY) as (store, supervisor, engine):
        ids = [await supervisor.submit(single(q)) for q in ("0.4", "0.7", "1.1")]
        await supervisor.wait_all()
        aggs = [await store.load(e) for e in ids]
    assert [(a.state.value, a.filled_qty) for a in aggs] == [
        ("completed", D("0.4")), ("completed", D("0.7")), ("completed", D("1.1"))]
    orders = exchange_orders(server)
    assert len(orders) == len({c for c, _ in orders}) == 3
    assert sorted(q for _, q in orders) == [D("0.4"), D("0.7"), D("1.1")]
    trade_ids = {str(r[0]) for r in server.exchange.store.db.execute("SELECT trade_id FROM trades")}
    assert {tid for a in aggs for tid in a.trade_ids} == trade_ids
    assert sum(server.app.faults.counts.values()) > 0


# ---------------------------------------------------------------------- side effects of ccxt
async def test_ccxt_calls_leave_the_engine_decimal_context_alone(paper) -> None:  # type: ignore[no-untyped-def]
    """ccxt's ``decimal_to_precision`` sets the *current* decimal context to ROUND_HALF_UP (and
    traps Underflow). Found by the chaos verdict: a live ``executions.avg_price`` ended in ...13
    where the replay of the same events (ROUND_HALF_EVEN) gave ...12."""
    server, venue, clock = paper
    before = decimal.getcontext().copy()
    await venue.place_order(order(CID, Side.BUY, "0.5"))
    await venue.fetch_order(BTC, CID)
    await venue.cancel_order(BTC, CID)
    after = decimal.getcontext()
    assert (after.rounding, after.prec, after.traps) == (before.rounding, before.prec, before.traps)
    assert D("2722.991886125").quantize(D("0.00000001")) == D("2722.99188612")
