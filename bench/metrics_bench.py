"""``GET /metrics`` cost: refresh (executions by state from the store) plus render, with 1,000
executions in the store and every bus-fed metric populated."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bench.store_bench import T0, _eid, started
from genesis.bus import EventBus
from genesis.domain import events as ev
from genesis.observability.metrics import MetricsCollector
from genesis.store import migrate
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore


def _closed(eid: str, i: int) -> list[ev.Event]:
    """A slice, its order, its fill and the completion (some executions expire short)."""
    at = T0 + timedelta(minutes=15)
    short = i % 4 == 0
    return [ev.TwapSliceExecuted(eid, at, 0, 1, "partial" if short else "filled", Decimal(1), Decimal(1),
                                 Decimal(100000), Decimal(100000), Decimal(1), Decimal(0)),
            ev.OrderClosed(eid, at, f"c{eid}", "filled", Decimal(1)),
            ev.FillRecorded(eid, at, f"c{eid}", 0, f"t{eid}", Decimal(1), Decimal(100000), Decimal(0), "USDT",
                            "maker", at),
            ev.RiskDenied(eid, at, 0, Decimal(1), Decimal(100000), "outside risk.price_collar_bps 200"),
            ev.TwapCompleted(eid, at, Decimal(1), Decimal("0.5") if short else Decimal(0), Decimal(100000),
                             Decimal(100000), Decimal(i % 40 - 20), Decimal(0),
                             "window_ended" if short else "filled", Decimal(100000), Decimal(i % 10 - 5))]


async def _measure(path: Path, executions: int, runs: int) -> dict[str, float]:
    migrate.upgrade(path)
    engine = async_engine(path)
    bus = EventBus()
    store = EventStore(engine, bus)
    await store.start()
    collector = MetricsCollector()
    collector.watch(engine, store.queue_depths, bus.stats)
    await asyncio.gather(*(store.append(started(_eid(i))) for i in range(executions)))
    for i in range(executions):
        for event in _closed(_eid(i), i):
            collector.on_event(event)
    scrape, render = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        await collector.refresh()
        t1 = time.perf_counter()
        body, _ = collector.render()
        t2 = time.perf_counter()
        scrape.append(t2 - t0)
        render.append(t2 - t1)
    await store.stop()
    await engine.dispose()
    return {"executions": executions, "scrape_ms": statistics.median(scrape) * 1e3,
            "render_ms": statistics.median(render) * 1e3, "body_bytes": len(body)}


def run(executions: int = 1000, runs: int = 50) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_measure(Path(tmp) / "metrics.db", executions, runs))


if __name__ == "__main__":
    print(run())
