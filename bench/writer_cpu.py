"""The event store writer's CPU per append, without a database: ``python -m bench.writer_cpu``.

The PostgreSQL bench's appends cost CPU in three processes (the writer on the daemon's event
loop, the commit process, its PostgreSQL backend) on a shared machine, so wall-clock and even
per-process CPU figures move by tens of percent from run to run. This measures the first
alone: 100 appenders each append single events (the bench's pause/resume toggles) through the
real ``Writer`` (folding, planning, SQL for the PostgreSQL writer's dialect, handing over,
confirming, delivering), whose committer answers every transaction at once after encoding it
as the commit process' pipe does (``marshal``). Printed: CPU microseconds per event.

For a figure that other processes cannot disturb, count instructions: run it under
``valgrind --tool=callgrind`` with two ``--rounds`` and divide the difference of the totals
by the difference of the events (``docs/performance.md``, writer-cut).
"""

from __future__ import annotations

import argparse
import dataclasses
import asyncio
import gc
import marshal
import time
from typing import Any

from sqlalchemy import create_engine

from bench.store_bench import _eid, started, toggle
from genesis.domain.execution import Execution
from genesis.store.batch import Pending
from genesis.store.types import TEXT_BINDS
from genesis.store.writer import Writer
from genesis.tuning import DEFAULT_TUNING, Tuning


class InstantCommitter:
    """Commits nothing: each transaction is marshalled (as for the commit process' pipe) and
    answered ``seconds`` later (as a commit of ~25-50 events on PostgreSQL: the writer then
    prepares chunks of the same size as in the PostgreSQL bench)."""

    commits = 0

    def __init__(self, seconds: float, hops: int = 0) -> None:
        self.seconds = seconds
        self.hops = hops  # instead of ``seconds``: answer after this many loop iterations (no clock)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def submit(self, transaction: Any, generation: int) -> asyncio.Future[int | None]:
        marshal.dumps(transaction)
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        if self.hops:
            loop.call_soon(self._hop, done, self.hops)
        else:
            loop.call_later(self.seconds, done.set_result, None)
        self.commits += 1
        return done

    def _hop(self, done: asyncio.Future[int | None], left: int) -> None:
        if left > 1:
            asyncio.get_running_loop().call_soon(self._hop, done, left - 1)
        else:
            done.set_result(None)


def writer_dialect() -> Any:
    """The dialect of the PostgreSQL event writer (``genesis.store.db.writer_engine``), unconnected."""
    engine = create_engine("postgresql+psycopg://bench@127.0.0.1/bench", paramstyle="format")
    setattr(engine.dialect, TEXT_BINDS, True)
    return engine.dialect


async def writer_cpu(appenders: int, rounds: int, commit_seconds: float = 0.001, hops: int = 0,
                     tuning: Tuning = DEFAULT_TUNING) -> tuple[float, int, float]:
    """CPU seconds of ``rounds`` single-event appends by each of ``appenders``, the commits,
    and the appends per chunk."""
    aggregates: dict[str, Execution] = {}
    for i in range(appenders):
        agg = aggregates[_eid(i)] = Execution(_eid(i))
        for e in started(_eid(i)):
            agg.apply(e)

    async def load(agg_id: str) -> Execution:
        raise KeyError(agg_id)

    committer = InstantCommitter(commit_seconds, hops)
    writer = Writer(None, committer, writer_dialect(), aggregates, load, None, 32, tuning)  # type: ignore[arg-type]

    async def first_sequence() -> None:
        writer._planner._next_seq = 1
    writer._planner.read_next_sequence = first_sequence  # type: ignore[method-assign]
    await writer.start()
    chunks = 0
    prepare = writer._prepare

    async def counted(items: list[Pending]) -> Any:
        nonlocal chunks
        chunks += 1
        return await prepare(items)
    writer._prepare = counted  # type: ignore[method-assign]

    async def appender(i: int) -> None:
        eid = _eid(i)
        for n in range(rounds):
            await writer.submit(Pending(eid, [toggle(eid, n)], None, ()))

    gc.collect()
    t0 = time.process_time()
    await asyncio.gather(*(appender(i) for i in range(appenders)))
    cpu = time.process_time() - t0
    await writer.stop()
    return cpu, committer.commits, appenders * rounds / chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appenders", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--commit-ms", type=float, default=1.0, help="how long a commit takes")
    parser.add_argument("--hops", type=int, default=0,
                        help="a commit takes this many loop iterations instead (and the writer's slot is off): "
                             "the same work on every run, for instruction counts")
    args = parser.parse_args()
    for _ in range(args.runs):
        cpu, commits, per_chunk = asyncio.run(writer_cpu(
            args.appenders, args.rounds, args.commit_ms / 1000, args.hops,
            dataclasses.replace(DEFAULT_TUNING, writer_slot_seconds=None) if args.hops else DEFAULT_TUNING))
        events = args.appenders * args.rounds
        print(f"writer CPU {cpu / events * 1e6:.2f} us/event, {events / commits:.1f} events/commit, "
              f"{per_chunk:.1f} appends/chunk", flush=True)


if __name__ == "__main__":
    main()
