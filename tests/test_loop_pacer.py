"""The loop pacer: many runners waking at once act over several loop iterations, in order.

Each "runner" takes a turn, then burns a known amount of CPU. A witness callback reschedules
itself every loop iteration and counts them. Without pacing every runner acts in the same
iteration; with it, they are spread over many iterations (so timers, sockets and signals get
their turn in between), every runner gets its turn, and they act in the order they asked.
Counts, not durations, are asserted: the bounds hold with a wide margin on a slow machine.
"""

from __future__ import annotations

import asyncio
import time

from genesis.tuning import LoopPacer

RUNNERS = 300
WORK_SECONDS = 0.0002  # one runner step


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def wake_all(pacer: LoopPacer) -> tuple[list[int], dict[int, int]]:
    """All runners ready at once; returns the order they acted in and how many acted in
    each loop iteration (by the witness's count)."""
    order: list[int] = []
    per_iteration: dict[int, int] = {}
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    iteration = [0]

    def witness() -> None:
        iteration[0] += 1
        if not done.is_set():
            loop.call_soon(witness)

    async def runner(i: int) -> None:
        await pacer.turn()
        order.append(i)
        per_iteration[iteration[0]] = per_iteration.get(iteration[0], 0) + 1
        burn(WORK_SECONDS)

    loop.call_soon(witness)
    await asyncio.gather(*(runner(i) for i in range(RUNNERS)))
    done.set()
    return order, per_iteration


async def test_without_pacing_one_iteration_carries_every_runner() -> None:
    order, per_iteration = await wake_all(LoopPacer(0))
    assert order == list(range(RUNNERS))
    assert list(per_iteration.values()) == [RUNNERS]  # ~60 ms of work with the loop stopped


async def test_pacing_spreads_the_runners_over_iterations_in_order() -> None:
    order, per_iteration = await wake_all(LoopPacer(0.002))  # ~10 steps of 0.2 ms per iteration
    assert order == list(range(RUNNERS))  # everyone served, first come first served
    assert sum(per_iteration.values()) == RUNNERS
    assert len(per_iteration) >= 10
    assert max(per_iteration.values()) <= RUNNERS // 5


async def test_a_quiet_loop_is_not_paced() -> None:
    pacer = LoopPacer(0.002)
    for _ in range(5):
        await pacer.turn()  # one turn per iteration: straight through
        await asyncio.sleep(0.001)
    assert pacer.queued_turns == 0
