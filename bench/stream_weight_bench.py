"""Binance request weight per slice, REST venue against streaming venue, side by side.

Each mode runs the same ``parents`` TWAP parents (``slices`` slices each, maker-first as
configured by default) on the paper exchange through the real ccxt client (``CcxtVenue``, or
``StreamingCcxtVenue`` with ccxt.pro), engine and exchange on one ``ScaledClock`` at
``SPEED``, request weight limits enforced. The weight is the paper exchange's own audit: every
REST request in its ``requests`` table, priced with Binance's published weights
(``genesis.paper.limits.request_weight``), per endpoint; "per slice" divides by the slices run.
Setup requests (exchangeInfo, and the account/ticker reads of the tier check at submit) are
counted apart.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.slice_figures import PARAMS as _PARAMS, Tape, lateness, participation, past_cap_room
from genesis.clock import ScaledClock
from genesis.config import parse_config
from genesis.paper.limits import request_weight
from genesis.paper.server import start_paper_exchange
from genesis.requests import validate_submit
from genesis.runtime.wiring import EngineOptions, build_engine
from genesis.store import migrate
from genesis.store import tables as t
from genesis.venue.candles import shipped_candles
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS

KEY, SECRET = "bench-key-000001", "bench-secret-000001"
SPEED = 20.0
SYMBOL = "BTC/USDT"
SETUP_PATHS = {"/api/v3/exchangeInfo", "/api/v3/account", "/api/v3/ticker/24hr", "/api/v3/time"}


async def one_mode(streams: bool, parents: int, slices: int, minutes: int,
                   speed: float = SPEED) -> dict[str, Any]:
    """One run: ``parents`` TWAPs of ``slices`` slices over ``minutes`` at ``speed``."""
    start = shipped_candles(SYMBOL).first_open_time + timedelta(days=20, hours=13)
    clock = ScaledClock(start, speed)
    config = parse_config({})
    with tempfile.TemporaryDirectory() as tmp:
        server = await start_paper_exchange(state_path=Path(tmp) / "paper.db", key=KEY, secret=SECRET,
                                            clock=clock, speed=speed)
        kind = StreamingCcxtVenue if streams else CcxtVenue
        venue = kind("binance", credentials=Credentials(KEY, SECRET), exchange_url=server.url,
                     clock=clock, time_scale=speed)
        db = Path(tmp) / "genesis.db"
        migrate.upgrade(db)
        engine = await build_engine(db, config, clock, lambda _clock: venue, lambda v: v.instruments(),
                                    EngineOptions(candle_cache=False))
        supervisor = engine.supervisor
        t0 = time.perf_counter()
        try:
            for i in range(parents):
                await supervisor.submit(validate_submit(
                    symbol=SYMBOL, side="buy" if i % 2 else "sell", qty="0.05", algo="twap",
                    duration=f"{minutes}m", slices=slices, limit_price=None, request_id=None,
                    instruments=SIM_INSTRUMENTS, config=config))
            await supervisor.wait_all()
            wall = time.perf_counter() - t0
            rows = list(server.exchange.store.db.execute("SELECT method, path, http_status FROM requests"))
            slice_rows = list(server.exchange.store.db.execute(
                "SELECT COUNT(*) FROM requests WHERE method = 'POST' AND path = '/api/v3/order'"))
            received = dict(server.exchange.store.db.execute("SELECT client_order_id, created_ms FROM orders"))
            async with engine.database.connect() as conn:
                s, c = t.execution_slices.c, t.child_orders.c
                timing = (await conn.execute(select(s.execution_id, s.slice_index, s.scheduled_at))).all()
                intervals = (await conn.execute(select(s.execution_id, s.slice_index, s.interval_start,
                                                       s.interval_end, s.cap_overridden))).all()
                children = (await conn.execute(select(c.client_order_id, c.execution_id, c.slice_index,
                                                      c.intended_at))).all()
                sizes = (await conn.execute(select(c.client_order_id, c.execution_id, c.slice_index,
                                                   c.qty))).all()
            realised = participation(Tape(SYMBOL), intervals, children, server.exchange.store.db)
        finally:
            await engine.close(close_venue=False)
            await venue.close()
            await server.stop()
    weights: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for method, path, _status in rows:
        key = f"{method} {path}"
        weights[key] += request_weight(method, path, _PARAMS.get(path, {"symbol": "X"}))
        counts[key] += 1
    slices_run = parents * slices
    late = lateness(timing, children, received)
    due = {(e, i): at for e, i, at in timing}
    past_cap = past_cap_room(Tape(SYMBOL), config.twap.participation_cap,
                             [(e, i, due[(e, i)], start) for e, i, start, *_ in intervals], sizes, received)
    trading = {k: w for k, w in weights.items() if k.split(" ", 1)[1] not in SETUP_PATHS}
    return {"streams": streams, "parents": parents, "slices": slices_run,
            "child_orders_posted": slice_rows[0][0], "wall_seconds": round(wall, 2),
            "weight_total": sum(weights.values()), "weight_setup": sum(weights.values()) - sum(trading.values()),
            "weight_per_slice": round(sum(trading.values()) / slices_run, 2),
            "per_slice_by_endpoint": {k: round(w / slices_run, 2) for k, w in sorted(trading.items())},
            "requests_per_slice_by_endpoint": {k: round(counts[k] / slices_run, 2) for k in sorted(trading)},
            "http_429_or_418": sum(1 for *_, s in rows if s in (429, 418)),
            # exchange seconds from a slice's scheduled time to its first order received (the
            # maker leg's wait excluded: bench/slice_figures.py)
            "slice_lateness_p50_s": late["slice_lateness_p50_s"],
            "slice_lateness_p99_s": late["slice_lateness_p99_s"],
            # the same, from when the tape had traded room for the first order under the cap
            **past_cap,
            # fills / the exchange's own tape in the slice's interval (emergency slices apart)
            "max_realised_participation": realised["max_slice_participation"],
            "weight_share_of_limit_per_minute": round(
                sum(weights.values()) / (minutes + 1) / 6000, 4)}


def run(parents: int = 4, slices: int = 10, minutes: int = 10,
        speed: float = SPEED) -> dict[str, Any]:
    """Both modes, one after the other, same load."""
    return {"rest": asyncio.run(one_mode(False, parents, slices, minutes, speed)),
            "streams": asyncio.run(one_mode(True, parents, slices, minutes, speed))}


if __name__ == "__main__":
    import json

    from genesis.log import configure_logging

    configure_logging("error")
    # python -m bench.stream_weight_bench [parents slices minutes speed]
    args = [float(a) for a in sys.argv[1:5]]
    shape = dict(zip(("parents", "slices", "minutes", "speed"), args))
    print(json.dumps(run(**{k: (v if k == "speed" else int(v)) for k, v in shape.items()}),
                     indent=2, default=str))
