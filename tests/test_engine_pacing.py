"""Pacing changes how many runners act per loop iteration, never what they do: on the
discrete-event clock a dozen parents competing for the same candles give the same events
whether every turn goes straight through or nearly every turn waits for a later iteration.
And a runner cancelled while it waits for its turn leaves nobody behind it stuck."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from genesis.tuning import LoopPacer
from genesis.store import tables as t
from tests.harness import harness
from tests.migrated import migrated_sqlite


async def run_parents(db_path: Path, pacer: LoopPacer) -> list[tuple[str, int, str, str]]:
    migrated_sqlite(db_path)
    async with harness(db_path) as h:
        h.supervisor.pacer = pacer
        async with h.clock.actor():  # time holds until every parent is in
            for i in range(12):
                symbol = "BTC/USDT" if i % 2 else "ETH/USDT"
                qty = ("0.8" if i % 3 else "0.05") if symbol == "BTC/USDT" else ("20" if i % 3 else "1")
                await h.supervisor.submit(h.request(
                    symbol=symbol, qty=qty, algo="vwap" if i % 4 < 2 else "twap", duration="10m",
                    side="sell" if i % 5 == 0 else "buy", request_id=f"p-{i}"))
        await h.supervisor.wait_all()
        async with h.engine.connect() as conn:
            e = t.events.c
            rows = (await conn.execute(select(e.aggregate_id, e.aggregate_version, e.event_type, e.event_data)
                                       .order_by(e.aggregate_id, e.aggregate_version))).all()
        namespace = await h.store.namespace()  # each database's own, in its client order ids
    return [(a, v, kind, data.replace(namespace, "<namespace>")) for a, v, kind, data in rows]


async def test_pacing_leaves_the_events_unchanged(tmp_path: Path) -> None:
    unpaced = await run_parents(tmp_path / "unpaced.db", LoopPacer(0))
    assert len(unpaced) > 500 and any(r[2] == "FillRecorded" and '"maker"' in r[3] for r in unpaced)
    # nearly every turn waits for a later iteration; a few turns per iteration
    for budget in (1e-9, 0.0003):
        pacer = LoopPacer(budget)
        assert await run_parents(tmp_path / f"paced-{budget}.db", pacer) == unpaced
        assert pacer.queued_turns > 20  # it did pace


async def test_a_runner_cancelled_while_waiting_does_not_hold_up_the_others() -> None:
    pacer = LoopPacer(1e-9)
    acted: list[int] = []

    async def runner(i: int) -> None:
        await pacer.turn()
        acted.append(i)

    await pacer.turn()  # opens this iteration's window: the runners below all queue
    tasks = [asyncio.create_task(runner(i)) for i in range(6)]
    await asyncio.sleep(0)  # they queue, in order
    tasks[2].cancel()
    tasks[3].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert acted == [0, 1, 4, 5]
    assert pacer.waiting == 0
    await pacer.turn()  # and the pacer is free again
