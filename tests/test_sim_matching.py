"""The simulated venue's lazy matching takes short cuts (only the orders the current candle
crosses are replayed while the clock stays in it; finished orders are kept as plain tuples;
locked funds are running totals). Whatever the calls, it must give exactly what replaying
every resting order on every call gives."""

from __future__ import annotations

import gc
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from genesis.clock import VirtualClock
from genesis.domain.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from genesis.venue.base import PermanentVenueError
from genesis.venue.candles import shipped_candles
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.sim import SimulatedVenue

START = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)
BTC, ETH = "BTC/USDT", "ETH/USDT"
BALANCES = {"USDT": D("5000"), "BTC": D("0.2"), "ETH": D("3")}  # small: some orders are refused


class ReplayEverything(SimulatedVenue):
    """The reference: every call replays every resting order (no candle short cut)."""

    def _sync(self) -> None:
        self._book._swept.clear()
        self._book._synced_at = None
        super()._sync()


def venues() -> tuple[SimulatedVenue, SimulatedVenue, VirtualClock]:
    clock = VirtualClock(START)
    series = {s: shipped_candles(s) for s in (BTC, ETH)}
    return (SimulatedVenue(clock, series, SIM_INSTRUMENTS, balances=dict(BALANCES), seed=7),
            ReplayEverything(clock, series, SIM_INSTRUMENTS, balances=dict(BALANCES), seed=7), clock)


async def outcome(venue: SimulatedVenue, call: str, *args: object) -> object:
    try:
        return await getattr(venue, call)(*args)
    except PermanentVenueError as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_matching_short_cuts_change_nothing(seed: int) -> None:
    fast, reference, clock = venues()
    rng = random.Random(seed)
    placed: list[tuple[str, str]] = []
    for n in range(400):
        clock.advance_to(clock.now() + timedelta(seconds=rng.choice([0, 0, 0.05, 0.2, 1, 3, 7, 20, 45])))
        symbol = rng.choice([BTC, ETH])
        action = rng.random()
        if action < 0.55 or not placed:
            top = await fast.book_top(symbol)
            side = rng.choice([Side.BUY, Side.SELL])
            tick = SIM_INSTRUMENTS[symbol].tick_size
            price = top.touch(side) + tick * rng.randint(-3, 1) * (1 if side is Side.BUY else -1)
            qty = D(rng.choice(["0.002", "0.005", "0.01"])) * (1 if symbol == BTC else 20)
            tif = rng.choice([TimeInForce.GTC, TimeInForce.POST_ONLY, TimeInForce.IOC])
            request = OrderRequest(f"o{n}", symbol, side, OrderType.LIMIT, qty, price, tif)
            call: tuple[object, ...] = ("place_order", request)
            placed.append((symbol, request.client_order_id))
        elif action < 0.75:
            call = ("cancel_order", *rng.choice(placed))
        elif action < 0.9:
            call = ("fetch_order", *rng.choice(placed))
        else:
            call = ("candles", symbol, clock.now() - timedelta(minutes=3), clock.now())
        assert await outcome(fast, *call) == await outcome(reference, *call), (n, call)  # type: ignore[arg-type]
        for asset in BALANCES:  # the running total of locked funds is the recomputed one
            assert fast.balances()[asset] - fast._book.locked(asset) == fast.free_balance(asset)
    assert fast.trades() == reference.trades()
    assert fast.balances() == reference.balances()
    assert fast.open_orders() == reference.open_orders()
    maker = [f for f in fast.trades() if f.liquidity.value == "maker"]
    assert len({f.client_order_id for f in maker}) < len(maker)  # resting orders filled in parts
    assert any(r.status is OrderStatus.CANCELLED for r in
               [await fast.fetch_order(s, c) for s, c in placed])


async def test_a_finished_order_is_kept_untracked_and_reports_the_same() -> None:
    fast, _, clock = venues()
    top = await fast.book_top(BTC)
    resting = OrderRequest("r1", BTC, Side.BUY, OrderType.LIMIT, D("0.03"), top.bid, TimeInForce.GTC)
    taken = OrderRequest("m1", BTC, Side.SELL, OrderType.MARKET, D("0.01"))
    await fast.place_order(resting)
    filled = await fast.place_order(taken)
    clock.advance_to(clock.now() + timedelta(milliseconds=100))
    before = await fast.fetch_order(BTC, "r1")
    assert before.status is OrderStatus.PARTIALLY_FILLED
    cancelled = await fast.cancel_order(BTC, "r1")
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.fills == before.fills
    assert await fast.fetch_order(BTC, "r1") == cancelled
    assert await fast.fetch_order(BTC, "m1") == filled
    assert await fast.fetch_order(ETH, "m1") != filled  # the symbol still has to match
    gc.collect()
    gc.collect()  # the collector untracks a tuple of untracked values (inner tuples first)
    # 10,000s of finished orders must not lengthen every full garbage collection
    assert not gc.is_tracked(fast._orders["r1"]) and not gc.is_tracked(fast._orders["m1"])
