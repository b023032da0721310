"""Owns the execution runners: strong references to named tasks, failures recorded as events.

The supervisor accepts submissions (appending ``ExecutionSubmitted``), starts a runner per
live execution, forwards pause/resume/cancel to runners, and drains them on shutdown.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from genesis.algorithms.registry import ROUTED, algorithm_class, routed_submission, router_decides, stored_name
from genesis.clock import Clock
from genesis.config import TWAPConfig
from genesis.domain import events as ev
from genesis.domain.ids import new_execution_id
from genesis.domain.instrument import Instrument
from genesis.domain.risk import RiskEngine
from genesis.domain.router import RouteDecision, decide_route
from genesis.domain.schedule import ScheduleError, feasible_slice_count
from genesis.engine.control import Control, Desire
from genesis.engine.hooks import EngineHooks
from genesis.engine.market_data import MarketData
from genesis.engine.positions import PositionBook
from genesis.engine.recovery_gate import RecoveryGate
from genesis.engine.account_cap import AccountCaps
from genesis.engine.runner import ExecutionRunner, RunnerSettings
from genesis.requests import SubmitRequest
from genesis.store.eventstore import EventStore, LeaseLostError
from genesis.tuning import DEFAULT_TUNING, LoopPacer
from genesis.venue.base import Venue

if TYPE_CHECKING:
    from genesis.domain.execution import Execution

log = structlog.get_logger("genesis.supervisor")

RECOVERY_BATCH = 200  # live executions read per query at restart, their runners started before the next


class SubmissionRejected(Exception):
    """The daemon refused a submission (reason in the message); nothing runs."""


@dataclass(slots=True)
class _Entry:
    runner: ExecutionRunner
    control: Control
    task: asyncio.Task[None]


@dataclass(slots=True)
class Supervisor:
    store: EventStore
    venue: Venue
    clock: Clock
    instruments: dict[str, Instrument]
    risk: RiskEngine
    settings: RunnerSettings = RunnerSettings()
    router_twap: TWAPConfig = TWAPConfig()
    strategist_min_equity_usdt: Decimal = Decimal("10000")
    positions: PositionBook = field(default_factory=PositionBook)
    market: MarketData | None = None
    pacer: LoopPacer = field(default_factory=DEFAULT_TUNING.pacer)  # bounded runner work per loop iteration
    hooks: EngineHooks = field(default_factory=EngineHooks)  # chaos and bench hooks: none by default
    account_caps: AccountCaps | None = None  # the account-wide participation caps per symbol (None: off)
    # the venue accounts whose executions this supervisor works (the daemon's leases); the first
    # is a submission's account when it names none. (): every execution, submissions record none
    accounts: tuple[str, ...] = ()
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _gates: list[RecoveryGate] = field(default_factory=list)  # of recovery passes not yet opened
    failures: list[tuple[str, str]] = field(default_factory=list)

    # -- submissions -----------------------------------------------------------------------

    async def submit(self, req: SubmitRequest, execution_id: str | None = None,
                     command_id: int | None = None) -> str:
        """Accept a validated request: durable ``ExecutionSubmitted``, then a runner."""
        await self.pacer.turn()  # a burst of submissions must not hold the loop
        execution_id = execution_id or new_execution_id(req.request_id)
        existing = await self.store.load(execution_id)
        if existing.version > 0:
            if self._adopt_orphan(existing):  # its first submission committed, unanswered
                outcome = ("accepted", "stored by an earlier delivery whose answer was lost")
            else:
                outcome = ("duplicate", "execution exists")
            if command_id is not None:
                await self.store.mark_commands([(command_id, *outcome)])
            return execution_id
        account = req.account if req.account is not None else (self.accounts[0] if self.accounts else "")
        if self.accounts and account not in self.accounts:
            raise SubmissionRejected(f"account: {account!r} is not held by this daemon "
                                     f"(it holds {', '.join(self.accounts)})")
        top = await self.venue.book_top(req.symbol)
        self._check_acceptable(req, top.mid)
        name, style, duration, slices, params = req.algo, req.algo, req.duration_seconds, req.slice_count, req.params
        if router_decides(req.algo):
            cfg = self.router_twap
            routed = routed_submission(self._route(req, top.mid), cfg.min_notional_usd, cfg.slices)
            name, style, duration, slices, params = (routed.name, routed.execution_style, routed.duration_seconds,
                                                     routed.slice_count, routed.params)
        algorithm, algo = algorithm_class(name), stored_name(name)
        if algorithm.tiered:
            await self._check_tier(algo)
        now = self.clock.now()
        event = ev.ExecutionSubmitted(
            execution_id, now, req.request_id or execution_id, req.symbol, req.side.value, req.qty,
            algo, duration, slices, req.limit_price, execution_style=style, params=dict(params),
            windowed=algorithm.windowed, account=account)
        done = [(command_id, "accepted", None)] if command_id is not None else []
        await self.store.append([event], expected_version=0, done_commands=done)
        log.info("execution_submitted", execution_id=execution_id, symbol=req.symbol, side=req.side.value,
                 qty=str(req.qty), algo=algo, execution_style=style, duration_seconds=duration)
        # while a recovery pass settles its child orders, a new execution waits with it: its
        # risk checks read the positions the pass is still bringing up to date
        if execution_id not in self._entries:  # a second submission of it may have started it meanwhile
            self._spawn(execution_id, req.symbol, Control(), self._open_gate())
        return execution_id

    def _route(self, req: SubmitRequest, price: Decimal) -> RouteDecision:
        cfg = self.router_twap
        if not req.algo == ROUTED:  # a forced single order
            return RouteDecision(RouteDecision.SINGLE, 1, 0.0, req.qty * price)
        route = decide_route(req.qty, price, self.instruments[req.symbol], enabled=cfg.enabled,
                             min_notional_usd=cfg.min_notional_usd, slices=cfg.slices,
                             interval_seconds=cfg.interval_seconds)
        if route.warning:
            log.warning("router_min_notional_sanity", symbol=req.symbol, qty=str(req.qty), detail=route.warning)
        return route

    async def _check_tier(self, algo: str) -> None:
        """Algorithmic execution needs the Strategist tier: venue equity >= the threshold."""
        equity = await self.venue.equity_usdt()
        if equity < self.strategist_min_equity_usdt:
            raise SubmissionRejected(
                f"tier: {algo} execution requires the Strategist tier (account equity >= "
                f"{self.strategist_min_equity_usdt} USDT, tiers.strategist_min_equity_usdt); "
                f"this account has {equity:.2f} USDT")

    def __post_init__(self) -> None:
        if self.market is None:
            self.market = MarketData(self.venue)

    def _check_acceptable(self, req: SubmitRequest, price: Decimal) -> None:
        instrument = self.instruments.get(req.symbol)
        if instrument is None:
            raise SubmissionRejected(f"symbol: {req.symbol} is not listed on {self.venue.name}")
        try:
            feasible_slice_count(req.qty, req.slice_count or 1, instrument, price)
        except ScheduleError as exc:
            raise SubmissionRejected(f"qty: {exc}") from None
        decision = self.risk.check_parent(req.symbol, req.qty, price)
        if not decision.approved:
            raise SubmissionRejected(f"risk: {decision.reason}")

    # -- runners ---------------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Start a runner for every live execution in the store of the accounts it works (and
        those stored with no account). Paused ones stay paused. The executions are read
        ``RECOVERY_BATCH`` at a time, each batch's runners started before the next is read:
        they reconcile (their re-spreads commit) meanwhile, and wait at the pass's
        ``RecoveryGate`` for the others before deciding anything new."""
        for symbol, net in (await self.store.net_positions()).items():
            self.positions.set(symbol, net)
        ids = await self.store.live_execution_ids(self.accounts or None)
        gate = RecoveryGate()
        self._gates = [g for g in self._gates if not g.open] + [gate]
        try:
            for start in range(0, len(ids), RECOVERY_BATCH):
                batch = ids[start:start + RECOVERY_BATCH]
                await self.store.preload(batch)
                for execution_id in batch:
                    if execution_id in self._entries:
                        continue
                    agg = await self.store.load(execution_id)
                    gate.expect(execution_id)
                    self._spawn(execution_id, agg.symbol, _control_for(agg), gate)
        finally:
            gate.seal()
        return ids

    def _adopt_orphan(self, agg: "Execution") -> bool:
        """A live execution of an account this supervisor works, stored but with no runner (its
        submission's commit landed while the submitter was told the outcome was unknown, and the
        submission came again): start its runner, as recovery would, rather than leave it idle."""
        mine = not self.accounts or agg.account in self.accounts or not agg.account
        if agg.state.is_terminal or agg.execution_id in self._entries or not mine:
            return False
        self._spawn(agg.execution_id, agg.symbol, _control_for(agg), self._open_gate())
        return True

    def _open_gate(self) -> RecoveryGate | None:
        """The latest recovery pass still settling its child orders: a runner started now waits
        with it (its risk checks read the positions the pass is still bringing up to date)."""
        return next((g for g in reversed(self._gates) if not g.all_settled.is_set()), None)

    def _spawn(self, execution_id: str, symbol: str, control: Control, gate: RecoveryGate | None = None) -> None:
        runner = ExecutionRunner(
            execution_id, store=self.store, venue=self.venue, clock=self.clock,
            instrument=self.instruments[symbol], risk=self.risk,
            positions=self.positions, control=control, settings=self.settings, market=self.market,
            pacer=self.pacer, hooks=self.hooks, account_caps=self.account_caps, gate=gate)
        task = asyncio.create_task(self._guarded(runner), name=f"execution-{execution_id}")
        self._entries[execution_id] = _Entry(runner, control, task)
        task.add_done_callback(lambda t, eid=execution_id: self._on_done(eid, t))
        if gate is not None:  # a runner that ends before reconciling must not hold the others
            task.add_done_callback(lambda _, eid=execution_id: gate.recovered(eid))

    async def _guarded(self, runner: ExecutionRunner) -> None:
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except LeaseLostError:  # another daemon took the account over: it carries the execution on
            runner.log.warning("runner_stopped_lease_lost")
        except Exception as exc:  # task boundary: one execution's crash becomes its recorded failure
            reason = f"{type(exc).__name__}: {exc}"
            runner.log.exception("execution_crashed")
            self.failures.append((runner.execution_id, reason))
            agg = await self.store.load(runner.execution_id)
            if not agg.state.is_terminal:
                await self.store.append([ev.ExecutionFailed(runner.execution_id, self.clock.now(), reason)])

    def _on_done(self, execution_id: str, task: asyncio.Task[None]) -> None:
        entry = self._entries.get(execution_id)
        if entry is not None and entry.task is task:
            del self._entries[execution_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("runner_task_failed", execution_id=execution_id, error=repr(task.exception()))

    # -- control ---------------------------------------------------------------------------

    def control(self, execution_id: str, desire: Desire, reason: str, command_id: int | None = None) -> bool:
        """Forward a desire to a live runner. False when there is none (terminal or unknown)."""
        entry = self._entries.get(execution_id)
        if entry is None:
            return False
        entry.control.request(desire, reason, command_id)
        return True

    def set_urgency(self, execution_id: str, level: str, reason: str, command_id: int | None = None) -> bool:
        entry = self._entries.get(execution_id)
        if entry is None:
            return False
        entry.control.request_urgency(level, reason, command_id)
        return True

    def pause_all(self, reason: str) -> int:
        return sum(self.control(eid, Desire.PAUSE, reason) for eid in list(self._entries))

    def resume_all(self, reason: str) -> int:
        return sum(self.control(eid, Desire.RUN, reason) for eid in list(self._entries))

    async def wait_recovered(self) -> None:
        """Until every live runner has loaded and reconciled its execution (one after the
        other: a task per runner would cost more than the waits)."""
        for entry in list(self._entries.values()):
            await entry.runner.recovered.wait()

    @property
    def active_ids(self) -> list[str]:
        return list(self._entries)

    async def wait_all(self) -> None:
        """Run to completion: wait until every runner has exited (tests, backtests)."""
        while self._entries:
            await asyncio.gather(*(e.task for e in list(self._entries.values())), return_exceptions=True)

    async def shutdown(self, timeout_seconds: float) -> None:
        """Graceful stop: no new slices; in-flight venue calls get ``timeout_seconds`` to finish."""
        for entry in self._entries.values():
            entry.control.request(Desire.STOP, "shutdown")
        for gate in self._gates:  # runners waiting there see their stop
            gate.release()
        tasks = [e.task for e in self._entries.values()]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout_seconds)
        for task in pending:
            log.warning("runner_cancelled_at_shutdown", task=task.get_name())
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _control_for(agg: "Execution") -> Control:
    """A recovered runner's control: a paused execution stays paused."""
    control = Control()
    if agg.state.value == "paused":
        control.desire = Desire.PAUSE
    return control
