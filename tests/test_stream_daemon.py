"""The daemon with ``--streams`` against the paper exchange, N parents on one symbol: one
market subscription per stream per symbol (the exchange's own record of its subscriptions),
no REST book or candle reads while the streams are healthy beyond the one-off history read,
and the account's request weight and order counts written for ``genesis status``. And the
engine's wiring on the streaming venue through a real market-stream outage: slicing held
(recorded), resumed by itself once the stream is back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.clock import VirtualClock
from genesis.config import parse_config
from genesis.domain import events as ev
from genesis.engine.daemon import Daemon, DaemonOptions
from genesis.requests import validate_submit
from genesis.store.db import sync_engine
from genesis.store.venue_usage import read_usage
from genesis.paper.local import free_port
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.market_hub import Backoff
from genesis.venue.order_budget import OrderBudget
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.test_fault_matrix import engine_on
from tests.test_paper_exchange import start
from tests.test_venue_contract import BTC, FAST, KEY, SECRET, minute

PARENTS = 5
SLICES = 3
LOOKBACK_DAYS = 3  # the volume profile's history: the same minutes on each of these days
MARKET_STREAMS = {"btcusdt@bookTicker": 1, "btcusdt@kline_1m": 1, "btcusdt@trade": 1}


def requests_after(server: Any, after_id: int) -> list[str]:
    return [p for (p,) in server.exchange.store.db.execute(
        "SELECT path FROM requests WHERE id > ? ORDER BY id", (after_id,))]


async def until(predicate: Any, what: str, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def daemon_on_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GENESIS_API_KEY", KEY)
    monkeypatch.setenv("GENESIS_API_SECRET", SECRET)
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)

    async def exchange_clock() -> VirtualClock:
        return clock

    db = tmp_path / "genesis.db"
    daemon = Daemon(DaemonOptions(db, None, venue="ccxt:binance", exchange_url=server.url, pidfile=False,
                                  exchange_clock=exchange_clock, streams=True),
                    parse_config({"engine": {"command_poll_seconds": 0.05},
                                  "twap": {"volume_lookback_days": LOOKBACK_DAYS}}))
    run = asyncio.create_task(daemon.run(), name="daemon-under-test")
    try:
        await until(lambda: daemon.ready, "the daemon")
        yield daemon, server, db
    finally:
        daemon.stop_event.set()
        await asyncio.wait_for(run, 30)
        await server.stop()


async def test_n_parents_on_one_symbol_share_one_subscription_per_stream_and_no_rest_market_reads(
        daemon_on_streams: Any) -> None:
    daemon, server, db = daemon_on_streams
    venue = daemon.venue.wrapped  # the StreamingCcxtVenue under the watch
    await venue.book_top(BTC)  # subscribes the symbol (REST until the stream is up)
    feed = venue.hub.feed(BTC)
    await until(lambda: feed.book_state.up and feed.kline_state.up and feed.trade_state.up, "the streams")
    await venue.book_top(BTC)  # the one REST snapshot of a quiet book, kept once subscribed
    (healthy_from,) = server.exchange.store.db.execute("SELECT max(id) FROM requests").fetchone()
    config = parse_config({})
    async with daemon.clock.actor():  # time stands still until every parent is submitted
        ids = [await daemon.supervisor.submit(validate_submit(
            symbol=BTC, side="buy", qty="0.5", algo="twap", duration="5m", slices=SLICES, limit_price=None,
            request_id=None, instruments=SIM_INSTRUMENTS, config=config)) for _ in range(PARENTS)]
    await daemon.supervisor.wait_all()
    closed = 0  # slices closed by a slice event (not by the execution's end)
    for execution_id in ids:
        agg = await daemon.store.load(execution_id)
        assert agg.state.value in ("completed", "expired") and agg.filled_qty > 0
        closed += sum(isinstance(s.event, ev.TwapSliceExecuted) for s in await daemon.store.read(execution_id))
    assert all(feed.book_state.reconnects == 0 for feed in venue.hub.feeds.values())  # healthy throughout
    # the exchange's own records: one subscription per market stream of the symbol, ...
    assert dict(server.app.streams.subscribed) == MARKET_STREAMS
    # ... and, while they were healthy, no REST book read; candles only as the one-off history
    # reads, shared by the N parents: one per lookback day (the volume profile) and one for the
    # minutes just before the subscription (the sizing's recent volume), whatever N
    paths = requests_after(server, healthy_from)
    assert paths.count("/api/v3/depth") == 0
    assert paths.count("/api/v3/klines") <= LOOKBACK_DAYS + 1
    # the account's use of its limits, written by the daemon for the CLI (another process)
    usage = daemon.observability.usage
    assert usage is not None and usage.slices == closed > 0
    await usage.write()
    with sync_engine(db).connect() as conn:
        (row,) = read_usage(conn)
    assert (row.account, row.venue, row.weight_source) == ("ccxt:binance:" + row.account[-12:], "ccxt:binance",
                                                           "exchange")
    assert row.weight_limit_1m == 6000 and 0 < row.weight_used_1m <= 6000
    assert (row.order_limit_10s, row.order_limit_1d) == (100, 200_000) and row.order_count_1d > 0
    assert row.slices_since_start == closed and row.weight_per_slice == row.weight_since_start / closed
    await daemon.observability.metrics.refresh()
    metrics = daemon.observability.metrics.render()[0].decode()
    assert {"genesis_order_count_10s", "genesis_order_limit_1d", "genesis_request_weight_published_total"} <= {
        line.split(" ")[0] for line in metrics.splitlines() if not line.startswith("#")}
    shown = CliRunner().invoke(main, ["status", "--db", str(db)]).output
    assert f"request weight {row.weight_used_1m:,.0f}/6,000 in the last minute (the exchange's count)" in shown
    assert f"{row.weight_per_slice:,.1f} per slice" in shown
    assert f"orders {row.order_count_10s:,}/100 per 10 s, {row.order_count_1d:,}/200,000 per day" in shown


async def test_a_market_stream_outage_on_the_paper_exchange_holds_slicing_until_it_is_back(tmp_path: Path) -> None:
    """The market streams' address stops answering mid-execution: once the stream has been down
    past ``unavailable_after_seconds`` the runner records ``SlicingHeld`` and sends nothing; the
    address answers again, the hub reconnects and the runner records ``SlicingResumed`` and
    goes on. Time is stepped by the test (an actor on the virtual clock) so that the outage
    lasts long enough in wall time for the venue to call it."""
    clock = VirtualClock(minute(0.5))
    server = await start(tmp_path, clock)
    venue = StreamingCcxtVenue("binance", credentials=Credentials(KEY, SECRET), exchange_url=server.url,
                               clock=clock, budget=OrderBudget(), config=FAST, fill_wait_seconds=1.0,
                               unavailable_after_seconds=0.3)
    venue.hub.backoff = Backoff(base_seconds=0.01, max_seconds=0.05)
    live_ws = venue.ex.urls["api"]["ws"]["spot"]
    await venue.instruments()
    config = parse_config({})
    twap = validate_submit(symbol=BTC, side="buy", qty="1", algo="twap", duration="6m", slices=6, limit_price=None,
                           request_id=None, instruments=SIM_INSTRUMENTS, config=config)
    try:
        async with engine_on(tmp_path, clock, venue, config) as (store, supervisor, _):
            async def kinds() -> list[str]:
                return [type(s.event).__name__ for s in await store.read(execution_id)]

            async def step_until(kind: str) -> None:
                for _ in range(400):
                    if kind in await kinds():
                        return
                    await clock.sleep_until(clock.now() + timedelta(seconds=1))  # one second passes
                    await asyncio.sleep(0.01)  # ... while wall time goes on
                raise AssertionError(f"no {kind}")

            async with clock.actor():
                execution_id = await supervisor.submit(twap)
                await step_until("TwapSliceExecuted")
                venue.ex.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{free_port()}/ws"  # nothing listens
                for conn in list(server.app.streams.connections):
                    await conn.close()  # the market streams drop; they cannot reconnect
                await step_until("SlicingHeld")
                held_at = clock.now()
                sent_before = len(server.exchange.store.all_orders())
                await asyncio.sleep(0.2)
                venue.ex.urls["api"]["ws"]["spot"] = live_ws  # the exchange answers again
                await step_until("SlicingResumed")
            await supervisor.wait_all()
            history = [s.event for s in await store.read(execution_id)]
    finally:
        await venue.close()
        await server.stop()
    (held,) = [e for e in history if isinstance(e, ev.SlicingHeld)]
    (resumed,) = [e for e in history if isinstance(e, ev.SlicingResumed)]
    assert (held.reason, held.venue, held.symbol) == (ev.HOLD_MARKET_DATA_UNAVAILABLE, "ccxt:binance", BTC)
    assert held.stream_down_seconds is not None and held.stream_down_seconds > 0.3
    assert held.occurred_at <= held_at < resumed.occurred_at
    intents = [e for e in history if isinstance(e, ev.OrderIntended)]
    assert not [e for e in intents if held.occurred_at <= e.occurred_at < resumed.occurred_at]
    assert len(intents) > sent_before  # slicing went on after the hold
    assert [e.reason for e in history if isinstance(e, ev.TwapCompleted)] in (["filled"], ["window_ended"])
