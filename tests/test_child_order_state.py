"""The child order's state machine (one status vocabulary, one transition table, a typed
error for an illegal move) and the one fill fold, as the aggregate, the store and the
simulated venue apply them."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.fills import FillTotals
from genesis.domain.orders import (ORDER_TRANSITIONS, Fill, IllegalOrderTransition, Liquidity, OrderReport,
                                   OrderStatus, order_transition)
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore, InvalidEventError

O = OrderStatus
D = Decimal
LIVE = {O.OPEN, O.PARTIALLY_FILLED}
FINAL = {O.FILLED, O.CANCELLED, O.REJECTED, O.NOT_FOUND}
# The specification, written out independently of the table: an intended or live order may
# be reported live again or end; an ended one never moves; nothing goes back to intended.
ALLOWED = {(a, b) for a in {O.INTENDED, *LIVE} for b in LIVE | FINAL}
DISALLOWED = [p for p in itertools.product(OrderStatus, OrderStatus) if p not in ALLOWED]
T0 = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_table_is_exactly_the_specification() -> None:
    assert {(a, b) for a, targets in ORDER_TRANSITIONS.items() for b in targets} == ALLOWED
    assert {s for s in OrderStatus if s.is_final} == FINAL


@pytest.mark.parametrize("current, target", sorted(ALLOWED))
def test_every_allowed_move(current: OrderStatus, target: OrderStatus) -> None:
    assert order_transition("c1", current, target) is target


@pytest.mark.parametrize("current, target", DISALLOWED)
def test_every_disallowed_move_is_an_illegal_order_transition(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(IllegalOrderTransition) as info:
        order_transition("c1", current, target)
    assert (info.value.current, info.value.target) == (current, target)
    assert str(info.value) == f"child order c1 cannot move from {current.value} to {target.value}"


def history() -> list[ev.Event]:
    return [
        ev.ExecutionSubmitted("e1", at(0), "r1", "BTC/USDT", "buy", D("1.0"), "twap", 120),
        ev.ExecutionStarted("e1", at(0), D("100"), at(120), (ev.PlannedSlice(0, at(0), D("1.0")),)),
        ev.OrderIntended("e1", at(1), 0, 0, "c1", "limit", "post_only", D("0.6"), D("100"), D("100")),
        ev.FillRecorded("e1", at(2), "c1", 0, "t1", D("0.25"), D("101"), D("0.01"), "USDT", "maker", at(2)),
        ev.FillRecorded("e1", at(2), "c1", 0, "t2", D("0.35"), D("102"), D("0.02"), "USDT", "taker", at(2)),
        ev.OrderAcknowledged("e1", at(3), "c1", "v1", "filled"),
        ev.OrderClosed("e1", at(3), "c1", "filled", D("0.6")),
    ]


def test_the_aggregate_moves_a_child_order_by_the_table() -> None:
    agg = Execution.replay("e1", history()[:3])
    assert agg.orders["c1"].status is O.INTENDED and agg.unresolved_orders()
    agg = Execution.replay("e1", history())
    assert agg.orders["c1"].status is O.FILLED and agg.unresolved_orders() == []


def test_a_closed_child_order_cannot_be_reopened_or_closed_again() -> None:
    agg = Execution.replay("e1", history())
    with pytest.raises(IllegalOrderTransition, match="from filled to open"):
        agg.apply(ev.OrderAcknowledged("e1", at(4), "c1", "v1", "open"))
    agg = Execution.replay("e1", history())
    with pytest.raises(IllegalOrderTransition, match="from filled to cancelled"):
        agg.apply(ev.OrderClosed("e1", at(4), "c1", "cancelled", D("0.6")))


def test_an_unknown_status_is_refused() -> None:
    agg = Execution.replay("e1", history()[:3])
    with pytest.raises(ValueError, match="'expired'"):
        agg.apply(ev.OrderClosed("e1", at(4), "c1", "expired", D("0")))


def test_a_close_that_is_not_final_leaves_the_order_unresolved() -> None:
    # a cancel the venue has not finished: the order is still to be reconciled
    agg = Execution.replay("e1", [*history()[:3], ev.OrderClosed("e1", at(3), "c1", "open", D("0"))])
    assert agg.orders["c1"].status is O.OPEN and [o.client_order_id for o in agg.unresolved_orders()] == ["c1"]


def test_one_fill_fold_for_the_execution_its_slices_and_venue_reports() -> None:
    agg = Execution.replay("e1", history())
    fills = [e for e in history() if isinstance(e, ev.FillRecorded)]
    totals = FillTotals().plus_all(fills)
    assert totals == FillTotals(D("0.60"), D("0.25") * 101 + D("0.35") * 102, D("0.03"), D("0.25"))
    assert agg.fills == agg.slices[0].fills == totals
    assert (agg.filled_qty, agg.filled_notional, agg.fees, agg.maker_qty) == (D("0.60"), D("60.95"), D("0.03"),
                                                                              D("0.25"))
    assert agg.avg_price == agg.slices[0].avg_price == D("60.95") / D("0.60")
    report = OrderReport("c1", "v1", O.FILLED, D("0.6"), tuple(
        Fill(f.trade_id, "c1", f.qty, f.price, f.fee, "USDT", Liquidity(f.liquidity), f.filled_at) for f in fills))
    assert report.avg_price == agg.avg_price
    assert FillTotals().avg_price is None and totals.taker_qty == D("0.35")


async def test_the_store_refuses_an_illegal_child_order_move_and_writes_nothing(db_path) -> None:
    engine = async_engine(db_path)
    store = EventStore(engine)
    await store.start()
    try:
        await store.append(history())
        before = await store.read()
        with pytest.raises(InvalidEventError, match="IllegalOrderTransition: child order c1 cannot move"):
            await store.append([ev.OrderClosed("e1", at(5), "c1", "cancelled", D("0.6"))])
        assert await store.read() == before
        assert (await store.load("e1")).orders["c1"].status is O.FILLED
    finally:
        await store.stop()
        await engine.dispose()
