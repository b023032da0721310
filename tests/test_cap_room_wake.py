"""The wait for room under the participation cap is woken by the trade stream's count
(``engine.cap_room``, ``venue.volume_waiters``): the moment the interval's counted volume
reaches what the leg needs, not at the next timed look; the timed look stays for what the
stream does not count (REST reads, a stall), and without a waiter nothing changes.

All on a virtual clock: the assertions are on the virtual instant the wait ended."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

from genesis.clock import VirtualClock
from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.engine.cap_room import room_under_cap
from genesis.venue.candles import to_epoch_ms
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS
from genesis.venue.order_budget import OrderBudget
from genesis.venue.sim import SimulatedVenue
from genesis.venue.trade_volume import TradeVolume
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series
from tests.test_ccxt_stream import until
from tests.test_ccxt_stream_volume import collapsing_series
from tests.test_paper_exchange import start
from tests.test_participation_cap import START as CAP_START, collapsing
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, minute

D = Decimal
S = timedelta(seconds=1)
INSTRUMENT = SIM_INSTRUMENTS["BTC/USDT"]
CAP, WANTED = D("0.10"), D("0.0113")  # needs 0.113 traded
START = T0
START_MS = to_epoch_ms(START)


def trade(tid: int, at: datetime, qty: str) -> dict[str, Any]:
    stamp = to_epoch_ms(at)
    return {"id": str(tid), "timestamp": stamp, "amount": float(qty), "info": {"E": stamp}}


async def _nothing() -> None:
    return None


class Tape:
    """A trade stream's count on the virtual clock, and what the cap's looks read."""

    def __init__(self, clock: VirtualClock, up_since: datetime = START):
        self.clock = clock
        self.volume = TradeVolume()
        self.volume.stream_up(to_epoch_ms(up_since))
        self.cache: list[dict[str, Any]] = []
        self.rest = D(0)  # volume only a REST read sees (no stream delivery)

    def now_ms(self) -> int:
        return to_epoch_ms(self.clock.now())

    async def traded(self, a: datetime, _b: datetime) -> Decimal:
        return self.volume.volume(to_epoch_ms(a), self.now_ms(), self.now_ms()) + self.rest

    def waiter(self, start: datetime, volume: Decimal):
        return self.volume.waiters.waiter(
            to_epoch_ms(start), volume, lambda s: self.volume.volume(s, self.now_ms(), self.now_ms()))

    async def deliver(self, at: datetime, *trades: dict[str, Any]) -> None:
        """At ``at``, the stream delivers ``trades`` (an actor: time waits for it)."""
        async with self.clock.actor():
            await self.clock.sleep_until(at)
            self.cache.extend(trades)
            self.volume.ingest(self.cache, self.now_ms())


async def wait_for_room(clock: VirtualClock, tape: Tape, *, wake: bool, by: datetime,
                        forecast: Decimal | None = D("5.35")) -> tuple[Decimal, datetime]:
    async with clock.actor():
        allowed = await room_under_cap(
            traded_volume=tape.traded, clock=clock, pace=_nothing, cap=CAP, filled=D(0),
            wanted=WANTED, instrument=INSTRUMENT, interval=(START, START + 60 * S), by=by,
            forecast_volume=forecast, **({"waiter": tape.waiter} if wake else {}))
    return allowed, clock.now()


async def test_the_stream_counting_enough_wakes_the_wait_at_that_instant():
    clock = VirtualClock(START + 2 * S)
    tape = Tape(clock)
    at = START + 5 * S + timedelta(milliseconds=300)  # between two timed looks
    delivered = asyncio.ensure_future(tape.deliver(at, trade(1, START + 3 * S, "0.05"),
                                                   trade(2, START + 5 * S, "0.07")))
    allowed, woke = await wait_for_room(clock, tape, wake=True, by=START + 50 * S)
    await delivered
    assert allowed == WANTED
    assert woke == at  # the timed look alone sees it at the next look (5.35 s of forecast: ~8 s)


async def test_the_wake_also_ends_the_first_wait_on_the_forecast():
    clock = VirtualClock(START)
    tape = Tape(clock)
    at = START + S  # the forecast (0.2 BTC a minute) puts the room at 34 s
    delivered = asyncio.ensure_future(tape.deliver(at, trade(1, START, "0.2")))
    allowed, woke = await wait_for_room(clock, tape, wake=True, by=START + 50 * S, forecast=D("0.2"))
    await delivered
    assert (allowed, woke) == (WANTED, at)


async def test_trades_short_of_the_need_or_before_the_interval_do_not_end_the_wait():
    clock = VirtualClock(START + 2 * S)
    tape = Tape(clock, up_since=START - 10 * S)  # trades before the interval are not its
    early = asyncio.ensure_future(tape.deliver(START + 3 * S, trade(1, START - 5 * S, "1"),
                                               trade(2, START + 2 * S, "0.05")))
    enough = asyncio.ensure_future(tape.deliver(START + 9 * S + timedelta(milliseconds=500),
                                                trade(3, START + 9 * S, "0.07")))
    allowed, woke = await wait_for_room(clock, tape, wake=True, by=START + 50 * S)
    await asyncio.gather(early, enough)
    assert allowed == WANTED
    assert woke == START + 9 * S + timedelta(milliseconds=500)


async def test_volume_the_stream_did_not_count_is_seen_at_the_timed_look_as_before():
    """A REST-covered stretch (or a stalled stream): no wake, the timed look finds it, at the
    same instant as without a waiter."""
    ends = []
    for wake in (True, False):
        clock = VirtualClock(START + 2 * S)
        tape = Tape(clock)

        async def rest_read_sees(clock: VirtualClock = clock, tape: Tape = tape) -> None:
            async with clock.actor():
                await clock.sleep_until(START + 4.5 * S)
                tape.rest = D("0.2")

        side = asyncio.ensure_future(rest_read_sees())
        ends.append(await wait_for_room(clock, tape, wake=wake, by=START + 50 * S))
        await side
    assert ends[0] == ends[1]
    assert ends[0][0] == WANTED and ends[0][1] > START + 4.5 * S  # at a look, not at the read


async def test_a_stream_that_never_counts_enough_leaves_the_wait_to_its_deadline():
    clock = VirtualClock(START + 2 * S)
    tape = Tape(clock)
    allowed, woke = await wait_for_room(clock, tape, wake=True, by=START + 20 * S)
    assert (allowed, woke) == (D(0), START + 20 * S)
    assert len(tape.volume.waiters) == 0  # nothing left registered


async def test_a_wake_the_read_does_not_confirm_leaves_the_next_wait_to_the_timer():
    """The count woke the wait but the read is short (they disagree): no spinning on a waiter
    that fires at once, at most one extra read per timed look."""
    clock = VirtualClock(START + 2 * S)
    reads = []

    async def short(_a: datetime, _b: datetime) -> Decimal:
        reads.append(clock.now())
        return D("0.01")

    @contextmanager
    def always_set(_start: datetime, _volume: Decimal) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        event.set()
        yield event

    async with clock.actor():
        allowed = await room_under_cap(
            traded_volume=short, clock=clock, pace=_nothing, cap=CAP, filled=D(0), wanted=WANTED,
            instrument=INSTRUMENT, interval=(START, START + 60 * S), by=START + 20 * S,
            forecast_volume=None, waiter=always_set)
    assert allowed == D("0.001") and clock.now() == START + 20 * S
    assert len(reads) <= 2 * 18 + 2  # 18 s of waiting: a look a second, one wake beside each


async def test_the_streaming_venue_wakes_a_waiter_from_the_exchanges_trade_stream(tmp_path: Path) -> None:
    series = collapsing_series()
    clock = VirtualClock(minute(2.5))
    server = await start(tmp_path, clock, series=series)
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET),
                               exchange_url=server.url, clock=clock, budget=OrderBudget(), config=FAST)
    try:
        await venue.instruments()
        venue.hub.feed(BTC)
        await until(lambda: venue.hub.feed(BTC).trade_state.up, "the trade stream")
        with venue.traded_volume_waiter(BTC, minute(3), D(1)) as small, \
                venue.traded_volume_waiter(BTC, minute(3), D(1000)) as huge:
            assert not small.is_set()
            clock.advance_to(minute(3.5))  # 30 BTC a minute trade: half a minute is 15
            await until(small.is_set, "the waiter woken by the trade stream")
            assert not huge.is_set()
            assert await venue.traded_volume(BTC, minute(3), clock.now()) >= D(1)
        assert len(venue.hub.feed(BTC).volume.waiters) == 0
    finally:
        await venue.close()
        await server.stop()


def test_an_interval_starting_inside_a_second_counts_the_streams_trades_after_its_start():
    """The bucket an interval starts inside is no longer left out whole: the trade stream's
    trades in it after the start count (a large print in the first instants is most of the
    room), those before it do not; once they are older than ``recent`` keeps, it is left out
    as before (a lower bound)."""
    volume = TradeVolume()
    volume.stream_up(10_000)
    volume.ingest([trade_at(1, 10_100, "5"), trade_at(2, 10_600, "2"), trade_at(3, 11_500, "1")], 12_000)
    assert volume.volume(10_500, 12_000, 12_000) == D(3)  # 2 (10.6 s, inside) + 1; not the 5
    assert volume.volume(10_500, 10_700, 12_000) == D(2)  # the interval ends inside the bucket
    assert volume.volume(10_000, 12_000, 12_000) == D(8)
    later = 10_000 + volume.recent.keep_ms + 2_000
    volume.ingest([trade_at(4, later, "1")], later)  # the old trades are let go one by one
    assert len(volume.recent) == 1
    assert volume.volume(10_500, 12_000, later) == D(1)  # the bucket's sum no longer split


def trade_at(tid: int, stamp: int, qty: str) -> dict[str, Any]:
    return {"id": str(tid), "timestamp": stamp, "amount": float(qty), "info": {"E": stamp}}


class WakingSim(SimulatedVenue):
    """The simulated venue with a trade-stream-like wake: a waiter is set at the instant (to
    the millisecond) the simulated market has traded its volume, as a stream counting every
    trade would. Records every wake (symbol, interval start, volume, instant)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.wakes: list[tuple[str, datetime, Decimal, datetime]] = []

    def room_at(self, symbol: str, start: datetime, volume: Decimal) -> datetime | None:
        """When ``volume`` will have traded since ``start`` (each minute's even flow)."""
        minute = start.replace(second=0, microsecond=0)
        bars = {b.open_time: b.volume for b in self._series[symbol].range(minute, minute + timedelta(hours=1))}
        left, at = volume, start
        while minute in bars:
            end = minute + timedelta(minutes=1)
            flow = bars[minute] * Decimal((end - at) / timedelta(milliseconds=1)) / 60_000
            if flow >= left:
                ms = -(-left * 60_000 // bars[minute])  # rounded up: traded by then
                return at + timedelta(milliseconds=int(ms))
            left, at, minute = left - flow, end, end
        return None

    @contextmanager
    def traded_volume_waiter(self, symbol: str, start: datetime, volume: Decimal) -> Iterator[asyncio.Event]:
        event, clock, when = asyncio.Event(), self._clock, self.room_at(symbol, start, volume)

        async def tape() -> None:
            if when is None:
                return
            async with clock.actor():
                await clock.sleep_until(when)
                self.wakes.append((symbol, start, volume, clock.now()))
                event.set()

        task = asyncio.ensure_future(tape())
        try:
            yield event
        finally:
            task.cancel()


async def test_a_capped_slice_goes_when_the_venue_wakes_it_and_never_above_the_cap(db_path):
    """On a market whose volume collapses (the forecast far above what trades), the capped legs
    go at the instant the venue's count reaches their need, not at a later timed look; no slice
    passes the cap of what traded."""
    btc = series(HISTORY_DAYS + 1, flat("100000"), collapsing)
    sims: list[WakingSim] = []

    def make(clock: Any) -> WakingSim:
        sims.append(WakingSim(clock, {"BTC/USDT": btc}, {"BTC/USDT": INSTRUMENT},
                              balances={"USDT": D("100000000"), "BTC": D("1000")}))
        return sims[0]

    config = parse_config({"twap": {"volume_lookback_days": HISTORY_DAYS}})
    async with harness(db_path, config, start=CAP_START, venue=make) as h:
        execution_id = await h.supervisor.submit(h.request(algo="twap", qty="20", duration="20m"))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
    woken_at = {at for _symbol, _start, _volume, at in sims[0].wakes}
    intents = [e for e in history if isinstance(e, ev.OrderIntended)]
    assert woken_at and any(e.occurred_at in woken_at for e in intents)
    measured = [e for e in history if isinstance(e, ev.SliceParticipationMeasured) and e.participation]
    assert measured
    for m in measured:
        assert m.market_volume and m.participation <= CAP + INSTRUMENT.step_size / m.market_volume, m
