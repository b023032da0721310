"""A slice that runs late (the runner's turn or the venue comes seconds after the slice was
sized for a short interval) is still held to the participation cap of the interval it records:
its recorded interval is the stretch whose traded volume the cap counted, so its realised
participation (fills over the market's volume in ``[interval_start, interval_end)``) never
exceeds the cap plus one lot step. On the simulated venue and a virtual clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import structlog

from genesis.clock import VirtualClock
from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.risk import RiskEngine, RiskLimits
from genesis.algorithms.base import SliceSizing
from genesis.engine.positions import PositionBook
from genesis.engine.slice_executor import RoutingSettings, SliceExecutor
from genesis.engine.venue_calls import RetryPolicy, VenueCaller
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.market import HISTORY_DAYS, flat, series, venue
from tests.test_slice_executor_ports import EID, NOW, EventLog, no_benchmark, started

D = Decimal
BTC = SIM_INSTRUMENTS["BTC/USDT"]
CAP = D("0.10")
QTY = D("0.5")  # far more than 10% of one second's volume (10 BTC a minute)


class CappedSize:
    """Sizes every slice at ``QTY`` under the participation cap of traded volume."""

    def __init__(self, maker_first: bool):
        self.maker_first = maker_first

    async def size(self, agg, s, slices_left, ref, interval_seconds, now) -> SliceSizing:  # type: ignore[no-untyped-def]
        return SliceSizing(QTY, QTY, None, maker_first=self.maker_first, participation_cap=CAP)

    def slice_event(self, agg: Execution, fields: dict[str, Any]) -> ev.TwapSliceExecuted:
        return ev.TwapSliceExecuted(**fields)


@pytest.mark.parametrize("maker_first", [True, False])
@pytest.mark.parametrize("late_seconds", [20.0, 75.0])
async def test_a_late_slice_records_the_interval_its_cap_counted_and_stays_under_the_cap(
        maker_first: bool, late_seconds: float) -> None:
    log = EventLog(started())
    clock = VirtualClock(NOW)
    sim = venue(clock, series(HISTORY_DAYS + 1, flat("100000"), flat("10")))
    calls = VenueCaller(sim, clock, RetryPolicy(), lambda: False, structlog.get_logger())

    async def namespace() -> str:
        return "0123456789"

    async def delayed_turn() -> None:  # a CPU-starved runner: every turn comes this late
        await clock.sleep_until(clock.now() + timedelta(seconds=late_seconds))

    executor = SliceExecutor(EID, algorithm=CappedSize(maker_first), venue=calls, append=log.append,
                             namespace=namespace, clock=clock, instrument=BTC, risk=RiskEngine(RiskLimits()),
                             positions=PositionBook(), benchmark=no_benchmark, log=structlog.get_logger(),
                             routing=RoutingSettings(maker_first=True, maker_timeout_seconds=5.0),
                             pace=delayed_turn)
    agg = await log.load()
    async with clock.actor():
        # sized for a 1-second interval (a late slice whose next one is already due)
        await executor.execute(agg, agg.slices[0], 1, 1.0)
        clock.advance_to(clock.now() + timedelta(minutes=5))  # every minute it touched has traded
    [closed] = log.of(ev.TwapSliceExecuted)
    assert closed.filled_qty > 0, "the late slice traded what the cap allowed"
    assert closed.interval_start is not None and closed.interval_end is not None
    traded = await sim.traded_volume("BTC/USDT", closed.interval_start, closed.interval_end)
    assert traded is not None and traded > 0
    assert closed.filled_qty / traded <= CAP + BTC.step_size / traded, (
        closed.filled_qty, traded, closed.interval_start, closed.interval_end)
