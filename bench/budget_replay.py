"""The order budget alone, on the orders of a kept 300-parent run: every child order asks the
account's ``OrderBudget`` at its recorded intent (``child_orders.intended_at``; attempt 0 leading,
later ones following) on a virtual clock, then goes through one send pipe that takes 0.5-1.5 x
``--tau`` exchange seconds an order, one after the other (the engine's and the exchange's work
per order: ~0.02 on a quiet machine at ``--speed 5``, 0.05-0.06 under load), reached and
answered ``--latency`` / 2 exchange seconds either side of it (the round trip). Waits: intent to arrival, in exchange seconds, free of the machine's load
(the engine's reaction is not in them; the intents do not move with the waits).

``python -m bench.budget_replay DIR [--share S] [--tau SECONDS] [--latency SECONDS]``: ``DIR`` holds the
``300-genesis.db`` a run of ``PARENTS_BENCH_KEEP=DIR python -m bench.parents_bench 300`` kept;
``--share``: ``following_share`` (default: the budget's).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.slice_figures import pct
from genesis.clock import VirtualClock
from genesis.domain.orders import SendPriority
from genesis.venue.order_budget import DEFAULT_FOLLOWING_SHARE, OrderBudget

TAU_SECONDS = 0.03
LATENCY_SECONDS = 0.1


def intents(db: Path) -> list[tuple[float, int]]:
    """(intent time in seconds since the epoch, attempt) of every child order of the run."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT intended_at, attempt FROM child_orders").fetchall()
    return [(datetime.fromisoformat(at).replace(tzinfo=timezone.utc).timestamp(), attempt) for at, attempt in rows]


async def replay(orders: list[tuple[float, int]], share: float, tau: float, latency: float = LATENCY_SECONDS,
                 seed: int = 1) -> dict[str, Any]:
    """Intent to arrival (exchange seconds) of ``orders``, leading and following, and the most
    that arrived in one window."""
    start = datetime.fromtimestamp(min(at for at, _ in orders) // 10 * 10, timezone.utc)
    clock, rng = VirtualClock(start), random.Random(seed)
    budget = OrderBudget(following_share=share, clock=clock)
    waits: dict[bool, list[float]] = {False: [], True: []}
    arrived: list[float] = []
    pipe_free = [0.0]  # when the send pipe is next free

    async def ask(at: float, attempt: int) -> None:
        async with clock.actor():
            await clock.sleep_until(datetime.fromtimestamp(at, timezone.utc))
            following = attempt > 0
            slot = await budget.take(SendPriority.FOLLOWING if following else SendPriority.LEADING)
            assert slot is not None  # no deadline
            sent = clock.now().timestamp() + latency / 2
            arrival = pipe_free[0] = max(sent, pipe_free[0]) + tau * rng.uniform(0.5, 1.5)
            await clock.sleep_until(datetime.fromtimestamp(arrival + latency / 2, timezone.utc))
            slot.observe(None, arrival)
            slot.done()
            waits[following].append(arrival - at)
            arrived.append(arrival)

    await asyncio.gather(*(ask(at, attempt) for at, attempt in orders))
    return {"following_share": share, "tau_seconds": tau, "latency_seconds": latency, "orders": len(arrived),
            "leading_wait_p50_s": pct(waits[False], 0.5), "leading_wait_p98_s": pct(waits[False], 0.98),
            "leading_wait_p99_s": pct(waits[False], 0.99), "leading_wait_max_s": pct(waits[False], 1.0),
            "following_wait_p50_s": pct(waits[True], 0.5), "following_wait_p99_s": pct(waits[True], 0.99),
            "following_wait_max_s": pct(waits[True], 1.0),
            "max_arrived_per_window": max(Counter(int(at // 10) for at in arrived).values())}


if __name__ == "__main__":
    args = sys.argv[1:]
    share = float(args.pop(args.index("--share") + 1)) if "--share" in args else DEFAULT_FOLLOWING_SHARE
    tau = float(args.pop(args.index("--tau") + 1)) if "--tau" in args else TAU_SECONDS
    latency = float(args.pop(args.index("--latency") + 1)) if "--latency" in args else LATENCY_SECONDS
    print(json.dumps(asyncio.run(replay(intents(Path(args[0]) / "300-genesis.db"), share, tau, latency)),
                     indent=2))
