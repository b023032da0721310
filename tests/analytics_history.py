"""A hand-built trading history for the analysis tests: events with chosen fills appended
through the real event store (so the projections hold them), plus candles in the cache
table. Every figure the tests expect is worked out by hand in their comments.

Day 2025-06-10 (T = 13:00 UTC):
* ``exec-a``: TWAP buy 1 BTC/USDT, arrival 100000, 4 planned slices of 0.25 at T, T+1m,
  T+2m, T+3m. Slice 0 fills 0.25 @ 100010 maker (fee 5) at T+2s; slice 1 fills 0.25 @
  100040 taker (fee 10) at T+64s; paused T+70s..T+100s; slice 2 denied by risk at T+120s;
  slice 3 fills 0.2 @ 100080 maker (fee 4) at T+183s and 0.3 @ 100110 taker (fee 12) at
  T+186s; completed at T+186s. The engine's own VWAP (100050) is deliberately off: the
  candles table covers the window and must win.
* ``exec-b``: VWAP sell 10 ETH/USDT at T+1h, arrival 2500: 4 @ 2498 (fee 2), 6 @ 2497
  (fee 3); engine VWAP 2499 (no ETH candles in the table).
* ``exec-c``: TWAP buy 0.1 BTC/USDT at T+2h, arrival 100000: 0.1 @ 99990 (fee 1); engine
  VWAP 100000 (no candles for that hour).
Day 2025-06-11: ``exec-d``: TWAP buy 1 BTC/USDT, arrival 101000, still running: 2 of 5
slices filled, 0.2 @ 101010 each (fee 2 each).

Candles (BTC/USDT), high/low/close/volume, typical = (H+L+C)/3:
  12:59  95000/85000/90000/1000   (outside the window)
  13:00  100020/99980/100000/10   typical 100000
  13:01  100060/100000/100030/20  typical 100030
  13:02  100090/100030/100060/30  typical 100060
  13:03  100120/100060/100090/40  typical 100090
  13:04  115000/105000/110000/1000 (outside: the window ends at 13:03:06)
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from typing import Callable

import pytest

from genesis.domain import events as ev
from genesis.store.candle_cache import CandleCache
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from genesis.venue.base import Candle
from tests.migrated import migrated_sqlite

T = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)
BTC, ETH = "BTC/USDT", "ETH/USDT"
CANDLES = [  # minute offset from T, high, low, close, volume
    (-1, "95000", "85000", "90000", "1000"),
    (0, "100020", "99980", "100000", "10"),
    (1, "100060", "100000", "100030", "20"),
    (2, "100090", "100030", "100060", "30"),
    (3, "100120", "100060", "100090", "40"),
    (4, "115000", "105000", "110000", "1000"),
]


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def _order(eid: str, at: datetime, index: int, attempt: int, qty: str, ref: str, kind: str = "market",
           limit: str | None = None) -> tuple[str, ev.OrderIntended]:
    coid = f"{eid}-{index}-{attempt}"
    tif = "post_only" if kind == "limit" else "gtc"
    return coid, ev.OrderIntended(eid, at, index, attempt, coid, kind, tif, D(qty), D(limit) if limit else None, D(ref))


def _fill(eid: str, coid: str, at: datetime, index: int, trade: str, qty: str, price: str, fee: str,
          liquidity: str, closed: str = "filled", closed_qty: str | None = None) -> list[ev.Event]:
    return [ev.FillRecorded(eid, at, coid, index, trade, D(qty), D(price), D(fee), "USDT", liquidity, at),
            ev.OrderAcknowledged(eid, at, coid, f"v-{coid}", closed),
            ev.OrderClosed(eid, at, coid, closed, D(closed_qty or qty))]


def _started(eid: str, at: datetime, arrival: str, planned: list[tuple[float, str]],
             end: datetime) -> ev.ExecutionStarted:
    return ev.ExecutionStarted(eid, at, D(arrival), end, tuple(
        ev.PlannedSlice(i, at + timedelta(seconds=off), D(q)) for i, (off, q) in enumerate(planned)))


def _slice(eid: str, at: datetime, index: int, count: int, status: str, planned: str, filled: str,
           avg: str | None, ref: str, fee: str, volume: str, part: str, maker: str = "0", taker: str = "0",
           scheduled: datetime | None = None, reason: str | None = None, vwap: str | None = None,
           cls: type = ev.TwapSliceExecuted, **extra: object) -> ev.TwapSliceExecuted:
    avg_d = D(avg) if avg else None
    slip = None if avg_d is None else ((avg_d - D(ref)) / D(ref) * 10000).quantize(D("0.0001"))
    return cls(eid, at, index, count, status, D(planned), D(filled), avg_d, D(ref), slip, D(fee),
               forecast_volume=D(volume), forecast_participation=D(part), reason=reason, maker_qty=D(maker),
               taker_qty=D(taker), scheduled_at=scheduled, market_vwap=D(vwap) if vwap else None,
               interval_start=at, interval_end=at + timedelta(minutes=1), **extra)


def measured(batch: list[ev.Event]) -> list[ev.Event]:
    """The realised participation of the slices closed in ``batch``: here, as forecast."""
    return [ev.SliceParticipationMeasured(e.execution_id, e.occurred_at, e.slice_index, e.forecast_volume,
                                          e.forecast_participation)
            for e in batch if isinstance(e, ev.TwapSliceExecuted)]


def exec_a() -> list[list[ev.Event]]:
    a = "exec-a"
    c0, o0 = _order(a, s(1), 0, 0, "0.25", "100000", "limit", "100010")
    c1, o1 = _order(a, s(61), 1, 0, "0.25", "100000")
    c30, o30 = _order(a, s(181), 3, 0, "0.5", "100090", "limit", "100080")
    c31, o31 = _order(a, s(184), 3, 1, "0.3", "100090")
    return [
        [ev.ExecutionSubmitted(a, T, "req-a", BTC, "buy", D("1"), "twap", 240, 4),
         _started(a, T, "100000", [(0, "0.25"), (60, "0.25"), (120, "0.25"), (180, "0.25")], s(240))],
        [o0], _fill(a, c0, s(2), 0, "a1", "0.25", "100010", "5", "maker")
        + [_slice(a, s(2), 0, 4, "filled", "0.25", "0.25", "100010", "100000", "5", "10", "0.025",
                  maker="0.25", scheduled=T)],
        [o1], _fill(a, c1, s(64), 1, "a2", "0.25", "100040", "10", "taker")
        + [_slice(a, s(64), 1, 4, "filled", "0.25", "0.25", "100040", "100000", "10", "20", "0.0125",
                  taker="0.25", scheduled=s(60), vwap="100000")],
        [ev.ExecutionPaused(a, s(70), "desk")], [ev.ExecutionResumed(a, s(100), "desk")],
        [ev.RiskDenied(a, s(120), 2, D("0.25"), D("100050"), "price collar: 250 bps from mid"),
         _slice(a, s(120), 2, 4, "denied", "0.25", "0", None, "100050", "0", "30", "0", scheduled=s(120),
                reason="price collar: 250 bps from mid")],
        [o30], _fill(a, c30, s(183), 3, "a3", "0.2", "100080", "4", "maker", "cancelled", "0.2"),
        [o31], _fill(a, c31, s(186), 3, "a4", "0.3", "100110", "12", "taker")
        + [_slice(a, s(186), 3, 4, "filled", "0.25", "0.5", "100098", "100090", "16", "40", "0.0125",
                  maker="0.2", taker="0.3", scheduled=s(180), vwap="100050")],
        [ev.TwapCompleted(a, s(186), D("1.0"), D("0"), D("100061.5"), D("100000"), D("6.1500"), D("31"),
                          "filled", D("100050"), D("1.1494"))],
    ]


def exec_b() -> list[list[ev.Event]]:
    b, t0 = "exec-b", 3600
    c0, o0 = _order(b, s(t0), 0, 0, "5", "2500")
    c1, o1 = _order(b, s(t0 + 61), 1, 0, "6", "2500")
    return [
        [ev.ExecutionSubmitted(b, s(t0), "req-b", ETH, "sell", D("10"), "vwap", 120, None,
                               params={"urgency": "medium"}),
         _started(b, s(t0), "2500", [(0, "5"), (60, "5")], s(t0 + 120))],
        [o0], _fill(b, c0, s(t0 + 1), 0, "b1", "4", "2498", "2", "taker", "cancelled", "4")
        + [_slice(b, s(t0 + 1), 0, 2, "partial", "5", "4", "2498", "2500", "2", "100", "0.04",
                  taker="4", scheduled=s(t0), cls=ev.VwapSliceExecuted, urgency="medium")],
        [o1], _fill(b, c1, s(t0 + 62), 1, "b2", "6", "2497", "3", "taker")
        + [_slice(b, s(t0 + 62), 1, 2, "filled", "5", "6", "2497", "2500", "3", "200", "0.03",
                  taker="6", scheduled=s(t0 + 60), vwap="2499", cls=ev.VwapSliceExecuted, urgency="medium")],
        [ev.VwapCompleted(b, s(t0 + 62), D("10"), D("0"), D("2497.4"), D("2500"), D("10.4000"), D("5"),
                          "filled", D("2499"), D("6.4026"))],
    ]


def exec_c() -> list[list[ev.Event]]:
    c, t0 = "exec-c", 7200
    c0, o0 = _order(c, s(t0), 0, 0, "0.1", "100000")
    return [
        [ev.ExecutionSubmitted(c, s(t0), "req-c", BTC, "buy", D("0.1"), "twap", 60, 1),
         _started(c, s(t0), "100000", [(0, "0.1")], s(t0 + 60))],
        [o0], _fill(c, c0, s(t0 + 1), 0, "c1", "0.1", "99990", "1", "taker")
        + [_slice(c, s(t0 + 1), 0, 1, "filled", "0.1", "0.1", "99990", "100000", "1", "5", "0.02",
                  taker="0.1", scheduled=s(t0))],
        [ev.TwapCompleted(c, s(t0 + 1), D("0.1"), D("0"), D("99990"), D("100000"), D("-1.0000"), D("1"),
                          "filled", D("100000"), D("-1.0000"))],
    ]


def exec_d() -> list[list[ev.Event]]:
    d, t0 = "exec-d", 86400
    out: list[list[ev.Event]] = [
        [ev.ExecutionSubmitted(d, s(t0), "req-d", BTC, "buy", D("1"), "twap", 300, 5),
         _started(d, s(t0), "101000", [(60 * i, "0.2") for i in range(5)], s(t0 + 300))]]
    for i in range(2):
        coid, o = _order(d, s(t0 + 60 * i), i, 0, "0.2", "101000")
        out += [[o], _fill(d, coid, s(t0 + 60 * i + 1), i, f"d{i}", "0.2", "101010", "2", "taker")
                + [_slice(d, s(t0 + 60 * i + 1), i, 5, "filled", "0.2", "0.2", "101010", "101000", "2", "10",
                          "0.02", taker="0.2", scheduled=s(t0 + 60 * i), vwap="101005")]]
    return out


async def build(db_path: Path, candles: list[tuple[int, str, str, str, str]] = CANDLES,
                executions: tuple[Callable[[], list[list[ev.Event]]], ...] = (exec_a, exec_b, exec_c, exec_d)) -> None:
    """Append the executions (default: the four above) and save ``candles`` (BTC) into the
    migrated ``db_path``."""
    engine = async_engine(db_path, durable=False)
    try:
        async with EventStore(engine) as store:
            for batches in (make() for make in executions):
                for batch in batches:
                    await store.append(batch)
                    if measured(batch):
                        await store.append(measured(batch))
        await CandleCache(engine).save(BTC, [
            Candle(T + timedelta(minutes=m), D(c), D(h), D(lo), D(c), D(v)) for m, h, lo, c, v in candles])
    finally:
        await engine.dispose()


def make_history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated file holding the history above (for a module-scoped fixture: tests only read it)."""
    path = migrated_sqlite(tmp_path_factory.mktemp("history") / "genesis.db")
    asyncio.run(build(path))
    return path
