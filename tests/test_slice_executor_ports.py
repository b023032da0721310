"""The slice executor and reconciliation work through narrow ports (venue calls, an append
that returns the folded aggregate, the clock, the risk check, the position book, hooks):
here they run with no runner and no store at all, and the outcomes are the events."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import structlog

from genesis.clock import VirtualClock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.orders import OrderRequest, SendPriority
from genesis.domain.risk import RiskEngine, RiskLimits
from genesis.algorithms.base import SliceSizing
from genesis.engine.positions import PositionBook
from genesis.engine.recovery import reconcile
from genesis.engine.slice_executor import RoutingSettings, SliceExecutor
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal
NOW = T0 + timedelta(days=HISTORY_DAYS, hours=1)
QTY = D("0.5")
EID = "00000000e1e1"


class EventLog:
    """The append port over a list: every append is folded (and so checked) before it counts."""

    def __init__(self, events: list[ev.Event]):
        self.events = list(events)

    async def append(self, events: list[ev.Event]) -> Execution:
        agg = Execution.replay(EID, [*self.events, *events])
        self.events += events
        return agg

    async def load(self) -> Execution:
        return Execution.replay(EID, self.events)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class FixedSize:
    """An algorithm that sizes every slice at ``QTY``, maker first then taker."""

    async def size(self, agg, s, slices_left, ref, interval_seconds, now) -> SliceSizing:  # type: ignore[no-untyped-def]
        return SliceSizing(QTY, QTY, None)

    def slice_event(self, agg: Execution, fields: dict[str, Any]) -> ev.TwapSliceExecuted:
        return ev.TwapSliceExecuted(**fields)


class RecordingHooks:
    def __init__(self) -> None:
        self.reached: list[str] = []

    def reach(self, name: str) -> None:
        self.reached.append(name)

    def armed(self, name: str) -> bool:
        return False


async def no_benchmark(agg, extra_fills=()):  # type: ignore[no-untyped-def]
    return None, None


def started() -> list[ev.Event]:
    return [ev.ExecutionSubmitted(EID, NOW, "r1", "BTC/USDT", "buy", QTY, "twap", 600),
            ev.ExecutionStarted(EID, NOW, D("100000"), NOW + timedelta(minutes=10),
                                (ev.PlannedSlice(0, NOW, QTY),))]


def ports(log: EventLog, limits: RiskLimits = RiskLimits(), hooks: Any = None) -> tuple[SliceExecutor, VirtualClock,
                                                                                        PositionBook, VenueCaller]:
    clock = VirtualClock(NOW)
    sim = venue(clock, series(HISTORY_DAYS + 1, flat("100000"), flat("10")))
    calls = VenueCaller(sim, clock, RetryPolicy(), lambda: False, structlog.get_logger())
    positions = PositionBook()

    async def namespace() -> str:
        return "0123456789"

    extra = {} if hooks is None else {"hooks": hooks}
    executor = SliceExecutor(EID, algorithm=FixedSize(), venue=calls, append=log.append, namespace=namespace,
                             clock=clock, instrument=SIM_INSTRUMENTS["BTC/USDT"], risk=RiskEngine(limits),
                             positions=positions, benchmark=no_benchmark, log=structlog.get_logger(),
                             routing=RoutingSettings(maker_first=True, maker_timeout_seconds=5.0), **extra)
    return executor, clock, positions, calls


async def test_a_slice_runs_on_its_ports_alone_intent_before_each_send() -> None:
    log, hooks = EventLog(started()), RecordingHooks()
    executor, clock, positions, _ = ports(log, hooks=hooks)
    agg = await log.load()
    async with clock.actor():
        await executor.execute(agg, agg.slices[0], 1, 60.0)
    intents = log.of(ev.OrderIntended)
    assert [i.time_in_force for i in intents][0] == "post_only"
    for intent in intents:  # each intent is appended before its order's outcome
        first_outcome = next(i for i, e in enumerate(log.events)
                             if isinstance(e, ev.OrderClosed) and e.client_order_id == intent.client_order_id)
        assert log.events.index(intent) < first_outcome
    assert hooks.reached == ["after_intent", "after_send"] * len(intents)
    [closed] = log.of(ev.TwapSliceExecuted)
    fills = log.of(ev.FillRecorded)
    assert closed.status == "filled" and closed.filled_qty == QTY == sum(f.qty for f in fills)
    assert closed.maker_qty + closed.taker_qty == QTY
    assert positions.get("BTC/USDT") == QTY  # counted once durable
    final = await log.load()
    assert final.filled_qty == QTY and final.unresolved_orders() == []


async def test_a_risk_denial_closes_the_slice_denied_and_sends_nothing() -> None:
    log = EventLog(started())
    executor, clock, positions, _ = ports(log, RiskLimits(kill_switch=True))
    agg = await log.load()
    async with clock.actor():
        await executor.execute(agg, agg.slices[0], 1, 60.0)
    assert [type(e) for e in log.events[2:]] == [ev.RiskDenied, ev.TwapSliceExecuted]
    assert log.of(ev.TwapSliceExecuted)[0].status == "denied" and positions.get("BTC/USDT") == 0


async def test_reconcile_on_ports_sends_an_order_the_venue_never_saw_with_the_same_id() -> None:
    coid = f"g0123456789-{EID}-0-0"
    log = EventLog([*started(), ev.OrderIntended(EID, NOW, 0, 0, coid, "market", "gtc", QTY, None, D("100000"))])
    executor, clock, positions, calls = ports(log)
    replans: list[str] = []

    async def replan(agg, now, end_at, reason):  # type: ignore[no-untyped-def]
        replans.append(reason)
        raise AssertionError("nothing was missed: no re-plan")

    async with clock.actor():
        await reconcile(await log.load(), venue=calls, slices=executor, load=log.load, append=log.append,
                        replan=replan, clock=clock, log=structlog.get_logger())
    assert [e.client_order_id for e in log.of(ev.OrderClosed)] == [coid]
    assert log.of(ev.OrderClosed)[0].status == "filled"
    [closed] = log.of(ev.TwapSliceExecuted)
    assert closed.status == "filled" and closed.filled_qty == QTY and positions.get("BTC/USDT") == QTY
    assert (await calls.lookup("BTC/USDT", coid)).filled_qty == QTY and replans == []


def recording_priorities(calls: VenueCaller) -> list[tuple[str, SendPriority]]:
    """The (time in force, send priority) of every order the venue is asked to place."""
    seen: list[tuple[str, SendPriority]] = []
    place = calls.venue.place_order

    async def recording(request: OrderRequest) -> Any:
        seen.append((request.time_in_force.value, request.priority))
        return await place(request)

    calls.venue.place_order = recording  # type: ignore[method-assign]
    return seen


async def test_a_slices_first_order_leads_the_order_budget_its_remainder_follows() -> None:
    log = EventLog(started())
    executor, clock, _, calls = ports(log)
    seen = recording_priorities(calls)
    agg = await log.load()
    async with clock.actor():
        await executor.execute(agg, agg.slices[0], 1, 60.0)
    assert seen[0] == ("post_only", SendPriority.LEADING)
    assert len(seen) == len(log.of(ev.OrderIntended)) == 2, "the flat market leaves a taker remainder"
    assert seen[1] == ("gtc", SendPriority.FOLLOWING)


async def test_an_order_sent_again_after_a_restart_follows_in_the_order_budget() -> None:
    coid = f"g0123456789-{EID}-0-0"
    log = EventLog([*started(), ev.OrderIntended(EID, NOW, 0, 0, coid, "market", "gtc", QTY, None, D("100000"))])
    executor, clock, _, calls = ports(log)
    seen = recording_priorities(calls)

    async def replan(agg, now, end_at, reason):  # type: ignore[no-untyped-def]
        raise AssertionError("nothing was missed: no re-plan")

    async with clock.actor():
        await reconcile(await log.load(), venue=calls, slices=executor, load=log.load, append=log.append,
                        replan=replan, clock=clock, log=structlog.get_logger())
    assert seen == [("gtc", SendPriority.FOLLOWING)]
