"""The participation cap on a ccxt venue is held to the volume the market actually traded: the
streaming venue counts the trade stream (REST klines/aggTrades where it did not cover), the
REST venue with ``ccxt.rest_traded_volume`` reads klines/aggTrades; both through the
unmodified ccxt client against the paper exchange, checked against the exchange's own tape."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from sqlalchemy import select

from genesis.clock import VirtualClock
from genesis.config import parse_config
from genesis.paper.tape import minute_trades
from genesis.requests import validate_submit
from genesis.store import tables as t
from genesis.venue.base import Candle
from genesis.venue.candles import CandleSeries, to_epoch_ms
from genesis.venue.ccxt_rest_volume import TradedVolumeCcxtVenue
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.order_budget import OrderBudget
from genesis.venue.trade_volume import TradeVolume
from tests.test_ccxt_stream import until
from tests.test_fault_matrix import engine_on
from tests.test_paper_exchange import start
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, minute

INSTRUMENT = SIM_INSTRUMENTS[BTC]
TAKER_ONLY = parse_config({"router": {"maker_first": False}})


def tape_volume(series: dict[str, CandleSeries], start_ms: int, end_ms: int) -> D:
    """What the paper exchange's own tape traded in ``[start_ms, end_ms)`` (its seed 0)."""
    total = D(0)
    for open_ms in range(start_ms - start_ms % 60_000, end_ms, 60_000):
        candle = series[BTC].candle_at(minute(0) + timedelta(milliseconds=open_ms - to_epoch_ms(minute(0))))
        if candle is not None:
            total += sum((tr.qty for tr in minute_trades(candle, INSTRUMENT, 0)
                          if start_ms <= tr.time_ms < end_ms), D(0))
    return total


def collapsing_series(minutes: int = 20) -> dict[str, CandleSeries]:
    """Five busy minutes (30 BTC each), then the volume collapses to 0.4 BTC a minute."""
    rows = [Candle(minute(i), D(100), D("100.02"), D("99.98"), D(100), D(30) if i < 5 else D("0.4"))
            for i in range(-30, minutes)]
    return {BTC: CandleSeries.from_candles(rows, symbol=BTC)}


# ---------------------------------------------------------------------- the bookkeeping
def trade(tid: int, stamp: int, qty: str, event: int | None = None) -> dict[str, Any]:
    return {"id": str(tid), "timestamp": stamp, "amount": float(qty),
            "info": {"E": event if event is not None else stamp}}


def test_trades_are_counted_once_by_id_in_their_own_second_and_gaps_are_named() -> None:
    volume = TradeVolume()
    volume.stream_up(10_000)
    cache = [trade(1, 10_500, "1"), trade(2, 12_200, "2"), trade(2, 12_200, "2"),  # duplicate
             trade(4, 14_100, "4"), trade(3, 13_900, "3")]  # out of order
    assert volume.ingest(cache, 15_000) == 4
    assert volume.ingest(cache, 15_000) == 0  # the same cache again: nothing new
    assert volume.volume(10_000, 15_000, 15_000) == D(10)
    assert volume.volume(12_000, 14_000, 15_000) == D(5)  # seconds 12 and 13
    assert volume.volume(12_500, 14_000, 15_000) == D(3)  # second 12 only partly inside: left out
    volume.stream_down()  # covered up to its newest event (14_100), not beyond
    assert volume.gaps(0, 20_000, 20_000) == [(0, 10_000), (14_101, 20_000)]
    volume.stream_up(30_000)
    assert volume.ingest(cache + [trade(5, 25_000, "9")], 31_000) == 0  # before this connection


async def test_traded_volume_is_the_exchanges_tape_from_stream_and_rest(tmp_path: Path) -> None:
    """Minutes before the subscription (REST), minutes the trade stream saw, and a partial
    minute: each equals the paper exchange's own tape; the REST venue agrees."""
    series = collapsing_series()
    clock = VirtualClock(minute(2.5))
    server = await start(tmp_path, clock, series=series)
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(),
                               config=FAST)
    rest = TradedVolumeCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                                 exchange_url=server.url, clock=clock, budget=OrderBudget(), config=FAST)
    try:
        await venue.instruments()
        await rest.instruments()
        venue.hub.feed(BTC)
        await until(lambda: venue.hub.feed(BTC).trade_state.up, "the trade stream")
        for n in range(3, 8):  # the stream sees minutes 2.5 .. 7.25 as they trade
            clock.advance_to(minute(n + 0.25))
            await until(lambda n=n: venue.hub.feed(BTC).volume.stream_horizon(
                to_epoch_ms(clock.now())) == to_epoch_ms(clock.now()) or False, "delivery")
        for a, b in [(minute(0), minute(2)), (minute(3), minute(6)), (minute(1.5), minute(4)),
                     (minute(6), minute(7.25)), (minute(4) + timedelta(seconds=20), minute(5))]:
            expected = tape_volume(series, to_epoch_ms(a), to_epoch_ms(b))
            assert await venue.traded_volume(BTC, a, b) == expected, (a, b)
            assert await rest.traded_volume(BTC, a, b) == expected, (a, b)
        paths = [r[0] for r in server.exchange.store.db.execute(
            "SELECT path FROM requests WHERE path LIKE '%aggTrades' OR path LIKE '%klines'")]
        assert paths  # the REST venue read them; the stream covered minutes 3 .. 7.25
    finally:
        await venue.close()
        await rest.close()
        await server.stop()


async def test_no_slice_takes_more_than_the_cap_of_the_exchanges_own_tape(tmp_path: Path) -> None:
    """Volume collapses for ten minutes under a TWAP through the streaming venue: each slice's
    fills stay within 10 % of what the exchange's tape traded in the slice's interval (plus one
    lot step), and the window ends short with the remainder recorded."""
    series = collapsing_series()
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock, series=series)
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(),
                               config=FAST, fill_wait_seconds=2.0)
    await venue.instruments()
    twap = validate_submit(symbol=BTC, side="buy", qty="6", algo="twap", duration="12m", slices=6,
                           limit_price=None, request_id=None, instruments=SIM_INSTRUMENTS,
                           config=TAKER_ONLY)
    try:
        async with engine_on(tmp_path, clock, venue, TAKER_ONLY) as (store, supervisor, engine):
            execution_id = await supervisor.submit(twap)
            await supervisor.wait_all()
            agg = await store.load(execution_id)
            async with engine.connect() as conn:
                slices = (await conn.execute(select(
                    t.execution_slices.c.interval_start, t.execution_slices.c.interval_end,
                    t.execution_slices.c.filled_qty))).all()
        fills = [D(q) for (q,) in server.exchange.store.db.execute("SELECT qty FROM trades")]
    finally:
        await venue.close()
        await server.stop()
    assert agg.state.value == "expired" and D(0) < agg.filled_qty < D(6)
    assert sum(fills, D(0)) == agg.filled_qty == sum((q for *_, q in slices), D(0))
    participation = [q / tape_volume(series, to_epoch_ms(a), to_epoch_ms(b)) for a, b, q in slices]
    assert max(participation) > D("0.09")  # the cap was reached...
    for (a, b, filled), share in zip(slices, participation):  # ...never passed
        assert filled <= D("0.10") * tape_volume(series, to_epoch_ms(a), to_epoch_ms(b)) \
            + INSTRUMENT.step_size, (a, b, filled, share)
