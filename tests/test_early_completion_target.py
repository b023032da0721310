"""Early completion is a target, not a deadline: the execution's window keeps its end, and
what the squeezed slices could not fill is re-planned over the rest of that window."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from genesis.backtest import BacktestSpec, run_backtest
from genesis.domain import events as ev
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore

SAMPLE = Path(__file__).parent / "data" / "BTC_USDT-1m-20250520-20250611.csv.gz"


async def read_history(db: Path) -> list[ev.Event]:
    engine = async_engine(db, durable=False)
    try:
        async with EventStore(engine) as store:
            return [s.event for s in await store.read()]
    finally:
        await engine.dispose()


async def test_a_parent_that_finishes_early_still_fills_when_the_original_window_has_the_volume(tmp_path):
    # 30 BTC from 14:00 for 30 minutes: the price falls below arrival early on (early completion);
    # squeezed towards its target the cap leaves ~1 BTC, which the original window can still absorb
    db = tmp_path / "bt.db"
    spec = BacktestSpec(SAMPLE, "BTC/USDT", "buy", "30", "twap", datetime(2025, 6, 10, 14, tzinfo=timezone.utc), 1800)
    result = await run_backtest(spec, db_path=db)
    history = await read_history(db)
    started = next(e for e in history if isinstance(e, ev.ExecutionStarted))
    early = next(e for e in history if isinstance(e, ev.EarlyCompletionTriggered))
    assert early.accelerated and early.end_at < started.end_at
    replans = [e for e in history if isinstance(e, ev.ScheduleReplanned)]
    assert replans and all(r.end_at == started.end_at for r in replans)  # the deadline never moves
    assert result["state"] == "completed" and result["filled_qty"] == "30.00000"
    done = next(e for e in history if isinstance(e, ev.TwapCompleted))
    assert done.reason == "filled" and done.occurred_at <= started.end_at
