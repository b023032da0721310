"""Client order ids are unique per account across databases, and an order found by client
order id is adopted only when it is the order this database intended.

The two-database scenario, against the paper exchange through the real ccxt client: the same
``--id`` (so the same execution id) submitted on two databases trading one account."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import structlog
from sqlalchemy import select

from genesis.clock import VirtualClock
from genesis.domain.ids import is_store_namespace
from genesis.domain.orders import (OrderRequest, OrderTerms, OrderType, Side, TimeInForce,
                                   foreign_order_reason)
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.requests import validate_submit
from genesis.store import migrate
from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.test_fault_matrix import BTC, TAKER_ONLY, engine_on, exchange_orders
from tests.test_fault_matrix import paper  # noqa: F401  (the fixture: paper exchange + ccxt venue)
from tests.test_venue_contract import minute, order
from tests.migrated import migrated_sqlite


def single(qty: str, request_id: str):  # type: ignore[no-untyped-def]
    return validate_submit(symbol=BTC, side="buy", qty=qty, algo="single", duration=None, slices=None,
                           limit_price=None, request_id=request_id, instruments=SIM_INSTRUMENTS,
                           config=TAKER_ONLY)


@asynccontextmanager
async def daemon_on(directory: Path, clock: VirtualClock, venue: Any) -> AsyncIterator[tuple[Any, Any, Any]]:
    """The daemon's wiring (store, supervisor) on the database in ``directory``."""
    directory.mkdir(exist_ok=True)
    async with engine_on(directory, clock, venue, TAKER_ONLY) as wired:
        yield wired


async def run_once(directory: Path, clock: VirtualClock, venue: Any, qty: str, request_id: str) -> dict[str, Any]:
    async with daemon_on(directory, clock, venue) as (store, supervisor, engine):
        execution_id = await supervisor.submit(single(qty, request_id))
        await supervisor.wait_all()
        agg = await store.load(execution_id)
        async with engine.connect() as conn:
            fills = [r[0] for r in await conn.execute(select(t.fills.c.trade_id))]
            orders = [tuple(r) for r in await conn.execute(
                select(t.child_orders.c.client_order_id, t.child_orders.c.status, t.child_orders.c.reason))]
    return {"execution_id": execution_id, "state": agg.state.value, "filled": agg.filled_qty,
            "avg": agg.avg_price, "fills": fills, "orders": orders}


async def test_same_request_id_on_two_databases_trades_twice_for_real(paper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock = paper
    first = await run_once(tmp_path / "a", clock, venue, "0.6", "two-1")
    second = await run_once(tmp_path / "b", clock, venue, "0.6", "two-1")
    assert first["execution_id"] == second["execution_id"]  # the same --id: the same execution id
    assert (first["state"], first["filled"]) == ("completed", D("0.6"))
    assert (second["state"], second["filled"]) == ("completed", D("0.6"))
    # each database's fills are its own trades on the exchange, none shared
    assert first["fills"] and second["fills"] and not set(first["fills"]) & set(second["fills"])
    orders = exchange_orders(server)
    assert len(orders) == len({c for c, _ in orders}) == 2
    assert [q for _, q in orders] == [D("0.6"), D("0.6")]


async def namespace_of(directory: Path) -> str:
    engine = async_engine(directory / "genesis.db")
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(t.store_identity.c.namespace))).scalar_one()
    finally:
        await engine.dispose()


async def share_namespace(source: Path, target: Path) -> None:
    """``target`` takes ``source``'s namespace, as a copy of the database file would."""
    target.mkdir()
    migrated_sqlite(target / "genesis.db")
    engine = async_engine(target / "genesis.db")
    try:
        async with engine.begin() as conn:
            await conn.execute(t.store_identity.update().values(namespace=await namespace_of(source)))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("later_minutes, qty, why", [
    (2, "0.6", "before the intent"),  # the same terms, sent two minutes before this intent
    (0, "0.5", "qty 0.6 (intended 0.5)"),  # at the same instant, another quantity
], ids=["created-before-the-intent", "another-quantity"])
async def test_an_order_found_under_our_client_id_that_we_did_not_intend_is_never_adopted(
        paper, tmp_path: Path, later_minutes: int, qty: str, why: str) -> None:  # type: ignore[no-untyped-def]
    """Two databases sharing a namespace (a copied file): the second one's send is answered
    -2010 "Duplicate order sent."; the order found under that id is the first one's, so the
    child is rejected with the reason, none of its fills recorded, and the execution fails.
    Binance answers -2010 only while the first order is open (a filled one's id is taken
    again, as a new order): the paper exchange is told to refuse every id it has seen, to show
    what the engine does with the answer."""
    server, venue, clock = paper
    server.exchange.reuse_filled_ids = False
    first = await run_once(tmp_path / "a", clock, venue, "0.6", "two-1")
    await share_namespace(tmp_path / "a", tmp_path / "b")
    clock.advance_to(minute(0.5 + later_minutes))
    second = await run_once(tmp_path / "b", clock, venue, qty, "two-1")
    assert (first["state"], first["filled"]) == ("completed", D("0.6"))
    assert (second["state"], second["filled"], second["avg"], second["fills"]) == ("failed", D(0), None, [])
    [(cid, status, reason)] = second["orders"]
    assert status == "rejected" and why in reason and "did not intend" in reason and cid in reason
    assert len(exchange_orders(server)) == 1  # nothing else traded


async def intended_before_a_crash(directory: Path, clock: VirtualClock, venue: Any, cid: str, qty: str) -> str:
    """A database whose execution intended one market buy under ``cid`` and then stopped
    before learning the outcome (the daemon was killed after the intent)."""
    from genesis.domain import events as ev

    execution_id = cid.split("-")[-3]
    now = clock.now()
    async with daemon_on(directory, clock, venue) as (store, _, _):
        await store.append([
            ev.ExecutionSubmitted(execution_id, now, "crashed-1", BTC, "buy", D(qty), "single", 0,
                                  execution_style="single"),
            ev.ExecutionStarted(execution_id, now, D("100"), now, (ev.PlannedSlice(0, now, D(qty)),)),
            ev.OrderIntended(execution_id, now, 0, 0, cid, "market", "gtc", D(qty), None, D("100"),
                             execution_style="single", slice_count=1)], expected_version=0)
    return execution_id


async def recover(directory: Path, clock: VirtualClock, venue: Any, execution_id: str) -> dict[str, Any]:
    async with daemon_on(directory, clock, venue) as (store, supervisor, engine):
        assert await supervisor.recover() == [execution_id]
        await supervisor.wait_all()
        agg = await store.load(execution_id)
        async with engine.connect() as conn:
            fills = [r[0] for r in await conn.execute(select(t.fills.c.trade_id))]
            orders = [tuple(r) for r in await conn.execute(select(t.child_orders.c.status, t.child_orders.c.reason))]
    return {"state": agg.state.value, "filled": agg.filled_qty, "fills": fills, "orders": orders}


LEGACY_CID = "gabcdef012345-0-0"  # an id made before databases had a namespace


async def test_an_execution_started_with_an_old_format_id_recovers_by_its_stored_id(paper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Intended under the old id format, sent, then the daemon died: after the upgrade the
    order is found by the id its intent stored, adopted (it is ours) and never re-sent."""
    server, venue, clock = paper
    execution_id = await intended_before_a_crash(tmp_path / "g", clock, venue, LEGACY_CID, "0.4")
    sent = await venue.place_order(order(LEGACY_CID, Side.BUY, "0.4"))
    result = await recover(tmp_path / "g", clock, venue, execution_id)
    assert (result["state"], result["filled"]) == ("completed", D("0.4"))
    assert sorted(result["fills"]) == sorted(f.trade_id for f in sent.fills)
    assert exchange_orders(server) == [(LEGACY_CID, D("0.4"))]


async def test_recovery_refuses_an_order_under_our_id_created_before_the_intent(paper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, venue, clock = paper
    await venue.place_order(order(LEGACY_CID, Side.BUY, "0.4"))  # someone else's, minutes earlier
    clock.advance_to(minute(3))
    execution_id = await intended_before_a_crash(tmp_path / "g", clock, venue, LEGACY_CID, "0.4")
    result = await recover(tmp_path / "g", clock, venue, execution_id)
    assert (result["state"], result["filled"], result["fills"]) == ("failed", D(0), [])
    [(status, reason)] = result["orders"]
    assert status == "rejected" and "did not intend" in reason and "before the intent" in reason
    assert exchange_orders(server) == [(LEGACY_CID, D("0.4"))]


# ---------------------------------------------------------------------- the parts
def test_every_database_gets_its_own_namespace_once_kept_by_rebuilds(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from genesis.store.projector import rebuild_sync

    def namespaces(path: Path) -> list[str]:
        engine = create_engine(migrate.sqlite_url(path))
        try:
            with engine.begin() as conn:
                rebuild_sync(conn)  # genesis db rebuild-projections leaves the identity alone
                return [r[0] for r in conn.execute(select(t.store_identity.c.namespace))]
        finally:
            engine.dispose()

    old = tmp_path / "old.db"
    migrate.upgrade(old, "0004")  # a database made before namespaces existed, then upgraded
    migrate.upgrade(old)
    fresh = [tmp_path / f"{n}.db" for n in range(3)]
    for path in fresh:
        migrate.upgrade(path)
    found = [namespaces(p) for p in (old, *fresh)]
    assert all(len(ns) == 1 and is_store_namespace(ns[0]) for ns in found)
    assert len({ns[0] for ns in found}) == 4
    migrate.upgrade(old)  # upgrading again draws nothing new
    assert namespaces(old) == found[0]


INTENDED_AT = minute(3)
MARKET = OrderRequest("gx", BTC, Side.BUY, OrderType.MARKET, D("0.6"))
LIMIT = OrderRequest("gx", BTC, Side.SELL, OrderType.LIMIT, D("0.6"), D("100.01"), TimeInForce.POST_ONLY)


def terms(request: OrderRequest, **changes: Any) -> OrderTerms:
    fields = dict(symbol=request.symbol, side=request.side.value, order_type=request.order_type.value,
                  qty=request.qty, limit_price=request.limit_price, created_at=INTENDED_AT)
    return OrderTerms(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("request_, changes, why", [
    (MARKET, {"symbol": "ETH/USDT"}, "symbol ETH/USDT (intended BTC/USDT)"),
    (MARKET, {"side": "sell"}, "side sell (intended buy)"),
    (MARKET, {"order_type": "limit"}, "type limit (intended market)"),
    (MARKET, {"qty": D("0.60001")}, "qty 0.60001 (intended 0.6)"),
    (LIMIT, {"limit_price": D("100.02")}, "limit price 100.02 (intended 100.01)"),
    (MARKET, {"created_at": INTENDED_AT - timedelta(seconds=61)}, "created 2025-01-01T00:01:59+00:00, before"),
])
def test_an_order_that_differs_from_the_intent_is_foreign(request_: OrderRequest, changes: dict[str, Any],
                                                          why: str) -> None:
    reason = foreign_order_reason(request_, terms(request_, **changes), INTENDED_AT, timedelta(seconds=60))
    assert reason is not None and why in reason


@pytest.mark.parametrize("request_, changes", [
    (MARKET, {}), (LIMIT, {}),
    (MARKET, {"limit_price": D("100.04")}),  # a market order's price is its average: not a term
    (MARKET, {"qty": D("0.60000000")}),  # the same number, written with Binance's 8 decimals
    (MARKET, {"created_at": INTENDED_AT - timedelta(seconds=60)}),  # within the clock allowance
    (MARKET, {"created_at": INTENDED_AT + timedelta(minutes=5)}),  # sent later (a re-send)
    (MARKET, {"created_at": None}),  # the venue does not date it
])
def test_the_intended_order_is_ours(request_: OrderRequest, changes: dict[str, Any]) -> None:
    assert foreign_order_reason(request_, terms(request_, **changes), INTENDED_AT, timedelta(seconds=60)) is None


@pytest.mark.parametrize("side, price, tif", [
    (Side.BUY, None, TimeInForce.GTC),  # market
    (Side.BUY, "99.90", TimeInForce.GTC),  # rests
    (Side.SELL, "99.50", TimeInForce.IOC),  # takes
    (Side.SELL, "100.50", TimeInForce.POST_ONLY),  # LIMIT_MAKER on Binance, "limit" in ccxt
], ids=["market", "limit-gtc", "limit-ioc", "post-only"])
async def test_our_own_order_of_every_kind_is_recognised_when_looked_up(paper, side: Side, price: str | None,
                                                                       tif: TimeInForce) -> None:  # type: ignore[no-untyped-def]
    """The terms ccxt reports for an order (Binance's 8-decimal strings, LIMIT_MAKER, the
    creation time) match the intent it was sent for: no false alarm."""
    server, venue, clock = paper
    request = order("g5eed00c0de-0123456789ab-0-0", side, "0.5", price, tif)
    intended_at = clock.now()
    sent = await venue.place_order(request)
    caller = VenueCaller(venue, clock, RetryPolicy(), lambda: False, structlog.get_logger("test"))
    found = await caller.lookup_intended(request, intended_at)
    assert found.terms is not None and found.venue_order_id == sent.venue_order_id
    assert (found.terms.symbol, found.terms.side, found.terms.qty) == (BTC, side.value, D("0.5"))
