"""HTTP front of the paper exchange: the Binance spot REST subset ccxt's ``binance`` class
calls, with Binance's JSON, error codes and HMAC-SHA256 request signing. See
``docs/paper-exchange.md`` for the endpoint list.

``start_paper_exchange`` runs it inside an existing event loop (tests, embedding);
``serve`` runs until cancelled (``genesis paper-exchange``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import structlog
from aiohttp import web

from genesis.clock import Clock, ScaledClock, utc
from genesis.paper import routes
from genesis.paper.app import PaperApp
from genesis.paper.exchange import PaperExchange
from genesis.paper.faults import Faults, StreamFaults
from genesis.paper.limits import Limits
from genesis.paper.streams import MarketStreams, install_streams
from genesis.paper.user_stream import UserDataStream
from genesis.paper.store import PaperStore
from genesis.venue.candles import CandleSeries, from_epoch_ms, shipped_candles, shipped_symbols, to_epoch_ms

log = structlog.get_logger("genesis.paper")
DEFAULT_START_OFFSET = timedelta(days=20)  # as the daemon's default --sim-start


@dataclass(slots=True)
class PaperServer:
    """A running paper exchange (``start_paper_exchange``)."""

    app: PaperApp
    runner: web.AppRunner
    url: str

    @property
    def exchange(self) -> PaperExchange:
        return self.app.exchange

    def set_faults(self, faults: Faults) -> None:
        self.app.faults.set(faults)

    def set_stream_faults(self, faults: StreamFaults) -> None:
        self.app.stream_faults.set(faults)

    async def stop(self) -> None:
        for task in list(self.app.delayed):  # orders still on their way are lost with the exchange
            task.cancel()
        await asyncio.gather(*self.app.delayed, return_exceptions=True)
        await self.runner.cleanup()
        self.app.exchange.store.close()


def resume_start(store: PaperStore, start: datetime, speed: float, wall_ms: int) -> datetime:
    """Simulated time to start from (and record it as the clock's anchor).

    The clock is anchored to the wall clock: a restart with the same ``start`` and ``speed``
    continues where the anchor says the market is now (the downtime passed in simulated time
    too, so a daemon that kept running stays in step). A new ``start`` or ``speed`` re-anchors,
    never before the last stored simulated time: the market never runs backwards."""
    anchor = json.loads(store.get_meta("clock_anchor") or "null")
    requested = utc(start)
    same = bool(anchor) and anchor["start_ms"] == to_epoch_ms(requested) and anchor["speed"] == speed
    now = (from_epoch_ms(anchor["sim_ms"] + int((wall_ms - anchor["wall_ms"]) * speed)) if same
           else requested)
    stamp = store.get_meta("sim_now_ms")
    if stamp and from_epoch_ms(int(stamp)) > now:
        now = from_epoch_ms(int(stamp))
    if not same:
        with store.transaction():
            store.set_meta("clock_anchor", json.dumps({
                "start_ms": to_epoch_ms(requested), "speed": speed, "wall_ms": wall_ms,
                "sim_ms": to_epoch_ms(now)}))
    return now


def build_app(exchange: PaperExchange, key: str, secret: str, faults: Faults | None = None, *,
              speed: float | None = None, limits: Limits | None = None,
              stream_faults: StreamFaults | None = None, seed: int = 0) -> PaperApp:
    """The application with its REST endpoints, market streams and user-data stream."""
    app = PaperApp(exchange, key, secret, faults, speed=speed, limits=limits, stream_faults=stream_faults)
    app.streams = MarketStreams(app, seed)
    app.user = UserDataStream(app)
    routes.install(app)
    install_streams(app)
    return app


async def start_paper_exchange(*, port: int = 0, state_path: str | Path, key: str, secret: str,
                               clock: Clock | None = None, start: datetime | None = None,
                               speed: float = 1.0, faults: Faults | None = None,
                               series: dict[str, CandleSeries] | None = None,
                               initial_balances: dict[str, Decimal] | None = None,
                               host: str = "127.0.0.1", seed: int = 0,
                               limits: Limits | None = None,
                               stream_faults: StreamFaults | None = None) -> PaperServer:
    """Start the server in the running loop. Without ``clock``, a ``ScaledClock`` at ``speed``
    from ``start`` (default: 20 days into the shipped candles), see ``resume_start``."""
    store = PaperStore(state_path)
    series = series or {s: shipped_candles(s) for s in shipped_symbols()}
    if clock is None:
        first = max(c.first_open_time for c in series.values())
        wall_ms = int(time.time() * 1000)
        clock = ScaledClock(resume_start(store, start or first + DEFAULT_START_OFFSET, speed,
                                         wall_ms), speed)
    exchange = PaperExchange(store, clock, series, initial_balances=initial_balances, seed=seed)
    app = build_app(exchange, key, secret, faults, speed=speed, limits=limits, stream_faults=stream_faults,
                    seed=seed)
    runner = web.AppRunner(app.web, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    log.info("paper_exchange_listening", url=f"http://{host}:{bound}", state=str(state_path),
             sim_time=clock.now().isoformat(), speed=speed)
    return PaperServer(app, runner, f"http://{host}:{bound}")


async def serve(port: int, state_path: str | Path, speed: float = 1.0,
                start: datetime | None = None, key: str = "", secret: str = "",
                faults: Faults | None = None, host: str = "127.0.0.1",
                stop: asyncio.Event | None = None, limits: Limits | None = None,
                stream_faults: StreamFaults | None = None) -> None:
    """Run the paper exchange until ``stop`` is set (or the task is cancelled)."""
    server = await start_paper_exchange(port=port, state_path=state_path, key=key, secret=secret,
                                        start=start, speed=speed, faults=faults, host=host,
                                        limits=limits, stream_faults=stream_faults)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await server.stop()
        log.info("paper_exchange_stopped")
