"""SimulatedVenue and its fill model, on hand-made candles (exact numbers) and shipped data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from genesis.clock import VirtualClock
from genesis.domain.orders import (Fill, Liquidity, OrderRequest, OrderStatus, OrderType, Side,
                                   TimeInForce)
from genesis.venue import fill_model as fm
from genesis.venue.base import (Candle, DuplicateOrderError, PermanentVenueError,
                                RetryableVenueError, UnknownOutcomeError, Venue)
from genesis.venue.candles import CandleSeries, shipped_candles
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.sim import FillModel, SimulatedVenue
from tests.faulty_venue import FaultyVenue

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
BTC = "BTC/USDT"
FLAT = ("100", "100.02", "99.99", "100", "10")  # mid 100: bid 99.99, ask 100.01, low not < bid


def minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def series(*rows: tuple[str, str, str, str, str]) -> CandleSeries:
    """Synthetic BTC/USDT candles from T0, one row per minute: (open, high, low, close, volume)."""
    return CandleSeries.from_candles(
        [Candle(minute(i), *(D(x) for x in row)) for i, row in enumerate(rows)], symbol=BTC)


def venue(rows: list[tuple[str, str, str, str, str]], at: float = 0, seed: int = 0,
          balances: dict[str, D] | None = None) -> tuple[SimulatedVenue, VirtualClock]:
    clock = VirtualClock(minute(at))
    return SimulatedVenue(clock, {BTC: series(*rows)}, balances=balances, seed=seed), clock


def market(cid: str, side: Side, qty: str) -> OrderRequest:
    return OrderRequest(cid, BTC, side, OrderType.MARKET, D(qty))


def limit(cid: str, side: Side, qty: str, price: str,
          tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return OrderRequest(cid, BTC, side, OrderType.LIMIT, D(qty), D(price), tif)


# ---------------------------------------------------------------------- quotes
async def test_book_top_on_shipped_data_is_on_tick_and_ordered() -> None:
    clock = VirtualClock(datetime(2025, 5, 20, 0, 0, 30, tzinfo=timezone.utc))
    sim = SimulatedVenue(clock, {s: shipped_candles(s) for s in (BTC, "ETH/USDT")})
    assert isinstance(sim, Venue)
    day = datetime(2025, 5, 20, tzinfo=timezone.utc)
    for symbol in (BTC, "ETH/USDT"):
        for seconds in (0, 17, 59, 600, 86_399):
            clock.advance_to(day + timedelta(seconds=seconds + 30))
            top = await sim.book_top(symbol)
            assert top.bid < top.ask
            assert top.bid % D("0.01") == 0 and top.ask % D("0.01") == 0
            assert top.timestamp == clock.now()
    clock.advance_to(datetime(2025, 7, 20, tzinfo=timezone.utc))
    with pytest.raises(PermanentVenueError, match="no BTC/USDT market data"):
        await sim.book_top(BTC)


async def test_reference_price_interpolates_open_to_close() -> None:
    sim, clock = venue([("100", "101", "100", "101", "10")], at=0.5)
    top = await sim.book_top(BTC)  # mid 100.5, half spread 0.01005
    assert (top.bid, top.ask) == (D("100.48"), D("100.52"))
    clock.advance_to(minute(0) + timedelta(seconds=59, microseconds=999_999))
    assert (await sim.book_top(BTC)).bid < D("101")


async def test_unknown_symbol_is_permanent() -> None:
    sim, _ = venue([FLAT])
    with pytest.raises(PermanentVenueError, match="unknown symbol 'XRP/USDT'"):
        await sim.book_top("XRP/USDT")
    with pytest.raises(PermanentVenueError, match="unknown symbol"):
        await sim.place_order(OrderRequest("u", "XRP/USDT", Side.BUY, OrderType.MARKET, D(1)))


# ---------------------------------------------------------------------- taker orders
async def test_market_buy_price_fee_and_balances() -> None:
    sim, _ = venue([FLAT], at=0.5)
    before = sim.balances()
    report = await sim.place_order(market("m1", Side.BUY, "1"))
    assert report.status is OrderStatus.FILLED and report.filled_qty == D(1)
    (fill,) = report.fills
    # ask 100.01 * (1 + 10 bps * sqrt(1/10) / 1e4) = 100.0416.. -> rounded up to 100.05
    assert fill.price == D("100.05") and fill.liquidity is Liquidity.TAKER
    assert fill.fee == D("0.10005000") == (fill.qty * fill.price * D("0.001")).quantize(D("1e-8"))
    assert fill.fee_asset == "USDT" and fill.timestamp == minute(0.5)
    assert fill.trade_id == "m1.1" and report.venue_order_id == "sim-o-1"
    after = sim.balances()
    assert after["USDT"] == before["USDT"] - D("100.05") - D("0.10005")
    assert after["BTC"] == before["BTC"] + 1


async def test_market_price_moves_against_us_and_grows_with_qty() -> None:
    sim, _ = venue([FLAT])
    top = await sim.book_top(BTC)
    buys = [(await sim.place_order(market(f"b{q}", Side.BUY, q))).fills[0].price
            for q in ("0.1", "1", "4", "40")]
    sells = [(await sim.place_order(market(f"s{q}", Side.SELL, q))).fills[0].price
             for q in ("0.1", "1", "4", "40")]
    assert top.ask <= buys[0] < buys[1] < buys[2] < buys[3]
    assert top.bid >= sells[0] > sells[1] > sells[2] > sells[3]
    assert buys[2] == D("100.08")  # 100.01 * (1 + 10 * sqrt(0.4) / 1e4) = 100.0733 -> up


async def test_ioc_not_marketable_gets_nothing() -> None:
    sim, _ = venue([FLAT])
    report = await sim.place_order(limit("i1", Side.BUY, "1", "100.00", TimeInForce.IOC))
    assert report.status is OrderStatus.CANCELLED and report.filled_qty == 0
    assert report.fills == () and sim.trades() == [] and sim.open_orders() == []


async def test_ioc_marketable_is_capped_at_limit() -> None:
    sim, _ = venue([FLAT])
    report = await sim.place_order(limit("i2", Side.BUY, "1", "100.03", TimeInForce.IOC))
    assert report.status is OrderStatus.FILLED
    assert report.fills[0].price == D("100.03") and report.fills[0].liquidity is Liquidity.TAKER


async def test_gtc_marketable_takes_like_ioc() -> None:
    sim, _ = venue([FLAT])
    report = await sim.place_order(limit("g1", Side.SELL, "1", "99.00"))
    assert report.status is OrderStatus.FILLED
    assert report.fills[0].price == D("99.95")  # 99.99 * (1 - 3.162 bps) = 99.9583 -> down


async def test_post_only_marketable_is_rejected() -> None:
    sim, _ = venue([FLAT])
    report = await sim.place_order(limit("p1", Side.BUY, "1", "100.01", TimeInForce.POST_ONLY))
    assert report.status is OrderStatus.REJECTED
    assert report.reason == "post-only order would take liquidity"
    assert (await sim.fetch_order(BTC, "p1")).status is OrderStatus.REJECTED
    assert sim.trades() == []


# ---------------------------------------------------------------------- resting orders
async def test_resting_buy_fills_only_strictly_below_and_capped_by_volume_share() -> None:
    rows = [FLAT, FLAT, ("100", "100.02", "99.98", "100", "10"), ("100", "100", "99.5", "100", "8")]
    sim, clock = venue(rows)
    report = await sim.place_order(limit("r1", Side.BUY, "4", "99.99", TimeInForce.POST_ONLY))
    assert report.status is OrderStatus.OPEN
    clock.advance_to(minute(2))  # two candles with low == 99.99: not strictly below
    assert (await sim.fetch_order(BTC, "r1")).filled_qty == 0
    clock.advance_to(minute(3))  # low 99.98: fills 25 % of 10
    report = await sim.fetch_order(BTC, "r1")
    assert report.status is OrderStatus.PARTIALLY_FILLED and report.filled_qty == D("2.5")
    (fill,) = report.fills
    assert fill.price == D("99.99") and fill.liquidity is Liquidity.MAKER
    assert minute(2) <= fill.timestamp < minute(3)
    assert fill.fee == D("0.24997500")
    clock.advance_to(minute(4))  # next candle: 25 % of 8 = 2, only 1.5 left
    report = await sim.fetch_order(BTC, "r1")
    assert report.status is OrderStatus.FILLED and report.filled_qty == D(4)
    assert [f.qty for f in report.fills] == [D("2.5"), D("1.5")]
    assert minute(3) <= report.fills[1].timestamp < minute(4)
    assert sim.open_orders() == []


async def test_resting_sell_fills_when_high_strictly_above() -> None:
    sim, clock = venue([FLAT, ("100", "100.05", "99.9", "100", "2")])
    await sim.place_order(limit("s1", Side.SELL, "1", "100.02"))
    clock.advance_to(minute(1))
    assert (await sim.fetch_order(BTC, "s1")).filled_qty == 0  # high == 100.02
    clock.advance_to(minute(2))
    report = await sim.fetch_order(BTC, "s1")
    assert report.filled_qty == D("0.5") and report.fills[0].price == D("100.02")


async def test_partly_elapsed_minute_is_pro_rated_and_never_before_placement() -> None:
    crossing = ("100", "100.02", "99.90", "100", "10")
    sim, clock = venue([crossing, crossing], at=0.5)
    await sim.place_order(limit("r2", Side.BUY, "10", "99.99"))
    clock.advance_to(minute(0.75))  # 15 s of a crossing minute: 0.25 * 10 * 0.25
    report = await sim.fetch_order(BTC, "r2")
    assert report.filled_qty == D("0.625")
    assert minute(0.5) <= report.fills[0].timestamp < minute(0.75)
    clock.advance_to(minute(1.5))  # rest of minute 0 (0.625) + half of minute 1 (1.25)
    report = await sim.fetch_order(BTC, "r2")
    assert [f.qty for f in report.fills] == [D("0.625"), D("0.625"), D("1.25")]
    assert all(f.timestamp <= clock.now() for f in report.fills)


async def test_resting_orders_share_a_candles_volume() -> None:
    sim, clock = venue([FLAT, ("100", "100.02", "99.0", "100", "10")])
    await sim.place_order(limit("a", Side.BUY, "2", "99.99"))
    await sim.place_order(limit("b", Side.BUY, "2", "99.98"))
    clock.advance_to(minute(2))
    a, b = await sim.fetch_order(BTC, "a"), await sim.fetch_order(BTC, "b")
    assert (a.filled_qty, b.filled_qty) == (D(2), D("0.5"))  # 2.5 in all, time priority


async def test_cancel_keeps_fills_and_stops_matching() -> None:
    crossing = ("100", "100.02", "99.0", "100", "4")
    sim, clock = venue([FLAT, crossing, crossing])
    await sim.place_order(limit("c1", Side.BUY, "3", "99.99"))
    clock.advance_to(minute(2))
    report = await sim.cancel_order(BTC, "c1")
    assert report.status is OrderStatus.CANCELLED and report.filled_qty == D(1)
    clock.advance_to(minute(3))
    assert await sim.cancel_order(BTC, "c1") == report
    assert await sim.fetch_order(BTC, "c1") == report
    assert (await sim.cancel_order(BTC, "nope")).status is OrderStatus.NOT_FOUND


# ---------------------------------------------------------------------- rules and balances
async def test_duplicate_client_order_id() -> None:
    sim, _ = venue([FLAT])
    await sim.place_order(market("d1", Side.BUY, "0.1"))
    with pytest.raises(DuplicateOrderError, match="d1"):
        await sim.place_order(market("d1", Side.BUY, "0.1"))
    assert len(sim.trades()) == 1


async def test_fetch_unknown_is_not_found() -> None:
    sim, _ = venue([FLAT])
    report = await sim.fetch_order(BTC, "never")
    assert report.status is OrderStatus.NOT_FOUND and report.filled_qty == 0
    assert report.venue_order_id is None


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (market("n1", Side.BUY, "0.04"), "below the minimum notional 5 USDT"),
        (market("n2", Side.BUY, "0.100005"), "not a multiple of step size 0.00001"),
        (market("n3", Side.BUY, "0"), "below the minimum quantity"),
        (market("n4", Side.BUY, "9001"), "above the maximum quantity"),
        (limit("n5", Side.BUY, "1", "99.995"), "not a multiple of tick size 0.01"),
        (limit("n6", Side.SELL, "0.05", "99.00"), "below the minimum notional"),
    ],
)
async def test_instrument_rules_are_permanent_errors(request_: OrderRequest, message: str) -> None:
    sim, _ = venue([FLAT])
    with pytest.raises(PermanentVenueError, match=message):
        await sim.place_order(request_)
    assert (await sim.fetch_order(BTC, request_.client_order_id)).status is OrderStatus.NOT_FOUND


async def test_insufficient_balance() -> None:
    sim, _ = venue([FLAT], balances={"USDT": D("250"), "BTC": D("0.5")})
    with pytest.raises(PermanentVenueError, match="insufficient balance: need .* USDT"):
        await sim.place_order(market("x1", Side.BUY, "3"))
    with pytest.raises(PermanentVenueError, match="insufficient balance: need 1 BTC"):
        await sim.place_order(market("x2", Side.SELL, "1"))
    await sim.place_order(limit("x3", Side.BUY, "2", "99.00"))  # locks 198 + 0.198 USDT
    assert sim.free_balance("USDT") == D("250") - D("198.198")
    with pytest.raises(PermanentVenueError, match="insufficient balance"):
        await sim.place_order(limit("x4", Side.BUY, "1", "99.00"))
    await sim.cancel_order(BTC, "x3")
    assert sim.free_balance("USDT") == D("250")


async def test_equity_values_balances_at_mid() -> None:
    sim, _ = venue([FLAT], balances={"USDT": D("1000"), "BTC": D("2")})
    assert await sim.equity_usdt() == D("1200")
    await sim.place_order(market("e1", Side.BUY, "1"))
    assert await sim.equity_usdt() == D("1200") - D("0.05") - D("0.10005")


# ---------------------------------------------------------------------- data access and faults
async def test_candles_have_no_look_ahead() -> None:
    sim, clock = venue([FLAT] * 5, at=2.5)
    got = await sim.candles(BTC, minute(0), minute(5))
    assert [c.open_time for c in got] == [minute(0), minute(1)]
    clock.advance_to(minute(3))
    got = await sim.candles(BTC, minute(1), minute(5))
    assert [c.open_time for c in got] == [minute(1), minute(2)]
    assert got[0].close == D("100") and got[0].volume == D("10")


async def test_fail_next_after_accept_then_fetch_finds_the_fill() -> None:
    sim = FaultyVenue(venue([FLAT])[0])
    sim.fail_next(1, UnknownOutcomeError("timeout"), after_accept=True)
    with pytest.raises(UnknownOutcomeError):
        await sim.place_order(market("f1", Side.BUY, "1"))
    report = await sim.fetch_order(BTC, "f1")
    assert report.status is OrderStatus.FILLED and report.filled_qty == D(1)
    with pytest.raises(DuplicateOrderError):
        await sim.place_order(market("f1", Side.BUY, "1"))


async def test_fail_next_before_accept_leaves_no_trace() -> None:
    sim = FaultyVenue(venue([FLAT])[0])
    sim.fail_next(2, RetryableVenueError("rate limited"))
    for _ in range(2):
        with pytest.raises(RetryableVenueError):
            await sim.place_order(market("f2", Side.BUY, "1"))
        assert (await sim.fetch_order(BTC, "f2")).status is OrderStatus.NOT_FOUND
    assert (await sim.place_order(market("f2", Side.BUY, "1"))).status is OrderStatus.FILLED


async def _scenario(seed: int) -> tuple[list[Fill], dict[str, D]]:
    clock = VirtualClock(datetime(2025, 5, 20, 13, 0, 7, tzinfo=timezone.utc))
    sim = SimulatedVenue(clock, {BTC: shipped_candles(BTC)}, seed=seed)
    top = await sim.book_top(BTC)
    await sim.place_order(limit("d-1", Side.BUY, "3", str(top.bid)))
    await sim.place_order(limit("d-2", Side.SELL, "2", str(top.ask)))
    await sim.place_order(market("d-3", Side.BUY, "0.5"))
    for step in range(1, 40):
        clock.advance_to(clock.now() + timedelta(seconds=23))
        if step % 5 == 0:
            await sim.fetch_order(BTC, "d-1")
    return sim.trades(), sim.balances()


async def test_same_seed_and_calls_give_identical_fills() -> None:
    first, again, other = await _scenario(7), await _scenario(7), await _scenario(8)
    assert first == again
    fills = first[0]
    assert len(fills) > 3 and {f.liquidity for f in fills} == {Liquidity.MAKER, Liquidity.TAKER}
    assert [f.timestamp for f in fills] != [f.timestamp for f in other[0]]  # seed matters


# ---------------------------------------------------------------------- pure fill model
def test_fill_model_functions() -> None:
    model = FillModel()
    inst = SIM_INSTRUMENTS[BTC]
    assert fm.impact_bps(model, D("2.5"), D("10")) == D("5")
    assert fm.impact_bps(model, D("1"), D("0")) == D("10")
    assert fm.quote_prices(model, D("100"), inst) == (D("99.99"), D("100.01"))
    no_spread = FillModel(half_spread_bps=D(0))
    assert fm.quote_prices(no_spread, D("100"), inst) == (D("100"), D("100.01"))
    assert fm.fee(model, D("123.456789"), Liquidity.MAKER) == D("0.12345679")
    assert fm.maker_capacity(model, inst, D("0.123456")) == D("0.03086")
    with pytest.raises(TypeError):
        FillModel(half_spread_bps=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FillModel(limit_fill_share=D("1.5"))


def test_sim_instruments() -> None:
    btc, eth = SIM_INSTRUMENTS[BTC], SIM_INSTRUMENTS["ETH/USDT"]
    assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional, btc.max_qty) == (
        D("0.01"), D("0.00001"), D("0.00001"), D("5"), D("9000"))
    assert (eth.tick_size, eth.step_size, eth.min_qty, eth.min_notional, eth.max_qty) == (
        D("0.01"), D("0.0001"), D("0.0001"), D("5"), D("100000"))
