"""The runner's decisions that consult the execution's algorithm, each appended before it is
acted on: the plan at the start, a re-plan (on resume, when late), more slices once the plan
is used up, an early finish, an urgency change and the completion event.

``AlgorithmDecisions`` works on the runner's ports (its venue calls, durable append, control
and the store's command marking), never the runner; the runner's loop (``engine.runner``)
decides which of these is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Awaitable, Callable, Sequence

import structlog

from genesis.algorithms.base import Algorithm
from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.instrument import Instrument
from genesis.domain.schedule import respread_by_volume
from genesis.engine.control import Control
from genesis.engine.durable_append import DurableAppend
from genesis.engine.ports import VenuePort
from genesis.engine.window_benchmark import WindowBenchmark

MarkCommands = Callable[[Sequence[tuple[int, str, "str | None"]]], Awaitable[None]]


class AlgorithmDecisions:
    """The algorithm's decisions for execution ``execution_id``. ``venue``: the runner's
    retried venue calls (a plan or volume profile reads market data); ``control``: what was
    asked (reasons, commands to acknowledge, urgency); ``mark_commands``: commands marked
    without an event (a rejected urgency); ``pause_policy``: ``"extend"`` moves the window's
    end by the paused time on resume, ``"compress"`` does not."""

    def __init__(self, execution_id: str, *, policy: Algorithm, venue: VenuePort, append: DurableAppend,
                 control: Control, mark_commands: MarkCommands, clock: Clock, instrument: Instrument,
                 pause_policy: str, benchmark: WindowBenchmark, log: structlog.typing.FilteringBoundLogger):
        self.execution_id, self.policy, self.venue, self.append = execution_id, policy, venue, append
        self.control, self.mark_commands, self.clock, self.instrument = control, mark_commands, clock, instrument
        self.pause_policy, self.benchmark, self.log = pause_policy, benchmark, log

    async def start(self, agg: Execution) -> None:
        """The execution starts: its arrival price and the algorithm's plan, from when the plan
        succeeds."""
        top = await self.venue.book_top(agg.symbol)
        arrival = top.mid
        policy = self.policy

        async def planned() -> tuple[datetime, tuple, datetime]:
            at = self.clock.now()  # a retried plan starts from when it succeeds
            return (at, *await policy.plan(agg, at, arrival))

        # market data (candles for the volume profile) is a venue read: retried like any other
        now, plan, end_at = await self.venue.call("plan", planned)
        self.log.info("execution_started", arrival_price=str(arrival), slices=len(plan), end_at=end_at.isoformat())
        await self.append([ev.ExecutionStarted(self.execution_id, now, arrival, end_at, plan)],
                          self.control.take_commands())

    async def resume(self, agg: Execution, now: datetime) -> None:
        """The execution resumes; what is left re-planned up to its end (moved by the paused time
        under the ``extend`` policy), unless the window is over."""
        paused_for = (now - agg.paused_at) if agg.paused_at else timedelta(0)
        events: list[ev.Event] = [ev.ExecutionResumed(self.execution_id, now, self.control.reason)]
        end_at = agg.end_at
        if end_at is not None and self.pause_policy == "extend":
            end_at += paused_for
        if end_at is not None and not (agg.windowed and end_at <= now):  # else: over, it expires next
            events.append(await self.replan(agg, now, end_at, f"resumed after {paused_for.total_seconds():.0f}s "
                                                              f"paused ({self.pause_policy})"))
        await self.append(events, self.control.take_commands())

    async def replan(self, agg: Execution, now: datetime, end_at: datetime, reason: str) -> ev.ScheduleReplanned:
        """The open slices re-planned over ``[now, end_at)``: placed by the usual volume of
        those minutes when the algorithm has a profile (adaptive TWAP, VWAP), else evenly."""
        indices = [s.index for s in agg.open_slices()]
        end_at = max(end_at, now)
        policy = self.policy
        profile = None
        if indices and end_at > now:  # a volume profile is a venue read: retried like any other
            profile = await self.venue.call("profile", lambda: policy.replan_profile(agg, now, end_at))
        plan = respread_by_volume(agg.remaining_qty, indices, now, end_at, profile, self.instrument)
        return ev.ScheduleReplanned(self.execution_id, now, end_at, plan, reason)

    async def after_plan(self, agg: Execution, now: datetime) -> None:
        """Every planned slice is done: the algorithm's further slices, or (none, nothing left,
        or the window over) the completion."""
        policy = self.policy
        more = [] if agg.remaining_qty <= 0 or agg.window_over(now) else await self.venue.call(
            "continue", lambda: policy.continue_after_plan(agg, now))
        if more:
            await self.append(more)
        else:
            await self.complete(agg, now)

    async def finish_early(self, agg: Execution, now: datetime) -> bool:
        """The algorithm's early finish (TWAP: a price better than arrival), appended as it
        returns it. True when something was decided."""
        policy = self.policy
        events = await self.venue.call("early_completion", lambda: policy.finish_early(agg, now))
        if not events:
            return False
        self.log.info("early_completion", events=[type(e).__name__ for e in events])
        await self.append(events)
        return True

    async def apply_urgency(self, agg: Execution, now: datetime) -> None:
        """The urgency change ``control`` holds, as the algorithm decides it (its command
        rejected when the algorithm refuses)."""
        level, reason, command_id = self.control.urgency  # type: ignore[misc]
        self.control.urgency = None
        commands = [command_id] if command_id is not None else []
        decision = self.policy.change_urgency(agg, level, reason, now)
        if decision.rejected is not None:
            if commands:
                await self.mark_commands([(command_id, "rejected", decision.rejected)])
            return
        if any(isinstance(e, ev.EmergencyLiquidationStarted) for e in decision.events):
            self.log.critical("EMERGENCY_LIQUIDATION", reason=reason, remaining=str(agg.remaining_qty),
                              note="participation cap and schedule overridden; hard risk limits still apply")
        else:
            self.log.info("urgency_changed", urgency=level, reason=reason)
        await self.append(list(decision.events), commands)

    async def complete(self, agg: Execution, now: datetime) -> None:
        """The execution completes (filled, or its window ended), with its figures and the
        window's market VWAP."""
        reason = "filled" if agg.remaining_qty == 0 else "window_ended"
        if reason != "filled":
            self.log.warning("window_ended_with_quantity_left", remaining=str(agg.remaining_qty))
        vwap, vs_vwap = await self.benchmark(agg)
        await self.append([self.policy.completion_event(
            agg, self.execution_id, now, agg.filled_qty, agg.remaining_qty, agg.avg_price, agg.arrival_price,
            agg.implementation_shortfall_bps, agg.fees, reason, vwap, vs_vwap)])
        self.log.info("execution_completed", reason=reason, filled=str(agg.filled_qty),
                      avg_price=str(agg.avg_price), is_bps=str(agg.implementation_shortfall_bps))
