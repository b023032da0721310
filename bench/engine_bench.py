"""1,000 concurrent parents on the simulated venue (virtual clock) and restart recovery."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from genesis.bus import EventBus
from genesis.clock import ScaledClock, VirtualClock
from genesis.config import parse_config
from genesis.engine.venues import build_sim_venue
from genesis.engine.runner import RunnerSettings
from genesis.engine.supervisor import build_supervisor
from genesis.log import configure_logging
from genesis.requests import validate_submit
from genesis.store import migrate
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from genesis.venue.instruments import SIM_INSTRUMENTS
from datetime import datetime, timedelta, timezone

START = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)
CONFIG = parse_config({"risk": {"max_position_base": {}}, "sim": {"balances": {
    "USDT": "100000000000", "BTC": "1000000", "ETH": "10000000"}}})


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _loop_lag(samples: list[float], stop: asyncio.Event, period: float = 0.005) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(period)
        samples.append(time.perf_counter() - t0 - period)


async def _wire(path: Path, clock: VirtualClock, decisions: list[float] | None = None):  # type: ignore[no-untyped-def]
    # fsync off: this measures the engine's CPU side (decisions, loop lag, memory); the cost
    # of durable commits is the store benchmark's subject
    engine = async_engine(path, durable=False)
    store = EventStore(engine, EventBus())
    await store.start()
    venue = build_sim_venue(clock, CONFIG)
    sup = build_supervisor(store, venue, clock, SIM_INSTRUMENTS, CONFIG)
    if decisions is not None:
        s = sup.settings
        sup.settings = RunnerSettings(s.pause_policy, s.retry, s.storage_retry_seconds, s.routing, s.twap, s.vwap,
                                      decision_timer=decisions.append)
    return engine, store, sup


async def parents(path: Path, n: int, stop_after_minutes: int | None = None, speed: float | None = 60.0
                  ) -> dict[str, float]:
    """Run ``n`` parents (half TWAP 15m, half VWAP 15m, BTC and ETH) to completion (or stop
    them ``stop_after_minutes`` in, leaving them live in the store).

    ``speed``: a scaled wall clock (60: the 15-minute window in 15 s), so that loop lag is
    measured under a load like live trading's, only 60 times denser; ``None``: the
    discrete-event clock (as fast as possible; every loop iteration saturated)."""
    migrate.upgrade(path)
    clock = VirtualClock(START) if speed is None else ScaledClock(START, speed)
    decisions: list[float] = []
    engine, store, sup = await _wire(path, clock, decisions)
    rss0 = rss_bytes()
    lag: list[float] = []
    stop = asyncio.Event()
    lag_task = asyncio.create_task(_loop_lag(lag, stop))
    t0 = time.perf_counter()
    requests = []
    for i in range(n):
        algo = "twap" if i % 2 == 0 else "vwap"
        symbol = "BTC/USDT" if i % 4 < 2 else "ETH/USDT"
        qty = "0.05" if symbol == "BTC/USDT" else "1"
        requests.append(validate_submit(
            symbol=symbol, side="buy" if i % 3 else "sell", qty=qty, algo=algo, duration="15m", slices=None,
            limit_price=None, request_id=f"bench-{i}", instruments=SIM_INSTRUMENTS, config=CONFIG))
    await asyncio.gather(*(sup.submit(r) for r in requests))
    submitted = time.perf_counter() - t0
    peak = 0

    async def sample_memory() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.05)

    mem_task = asyncio.create_task(sample_memory())
    if stop_after_minutes is None:
        await sup.wait_all()
    else:
        async with clock.actor():
            await clock.sleep_until(START + timedelta(minutes=stop_after_minutes))
        await sup.shutdown(5.0)
    wall = time.perf_counter() - t0
    stop.set()
    await asyncio.gather(lag_task, mem_task)
    events = (await store.read())[-1].sequence_number
    await store.stop()
    await engine.dispose()
    return {"parents": n, "wall_seconds": wall, "submit_seconds": submitted, "events": events,
            "events_per_second": events / wall, "commits": store.commits,
            "decision_p50_ms": pct(decisions, 0.5) * 1e3, "decision_p99_ms": pct(decisions, 0.99) * 1e3,
            "decisions": len(decisions), "loop_lag_p99_ms": pct(lag, 0.99) * 1e3,
            "loop_lag_max_ms": max(lag, default=0.0) * 1e3,
            "rss_per_parent_kib": (peak - rss0) / n / 1024}


async def recovery(path: Path, n: int) -> dict[str, float]:
    """A fresh engine rebuilds and resumes ``n`` live executions from the store."""
    clock = VirtualClock(START + timedelta(minutes=6))
    engine, store, sup = await _wire(path, clock)
    t0 = time.perf_counter()
    ids = await sup.recover()
    await sup.wait_recovered()
    seconds = time.perf_counter() - t0
    await sup.shutdown(5.0)
    await store.stop()
    await engine.dispose()
    return {"executions": len(ids), "seconds": seconds}


def run(n: int = 1000) -> dict[str, object]:
    configure_logging("error")
    sys.setswitchinterval(0.001)  # as the daemon sets it (genesis.engine.daemon.run_daemon)
    with tempfile.TemporaryDirectory(prefix="genesis-bench-") as tmp:
        full = asyncio.run(parents(Path(tmp) / "full.db", n))
        asyncio.run(parents(Path(tmp) / "live.db", n, stop_after_minutes=5, speed=None))
        rec = asyncio.run(recovery(Path(tmp) / "live.db", n))
    return {"parents": full, "recovery": rec}


if __name__ == "__main__":
    import json
    print(json.dumps(run(int(os.environ.get("BENCH_PARENTS", "1000"))), indent=2))
