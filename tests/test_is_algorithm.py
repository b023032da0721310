"""``--algo is`` end to end on the simulated venue with a virtual clock: the Almgren-Chriss
trajectory is front-loaded at high urgency and close to TWAP's straight line at low urgency,
and it runs through the same events, projections and risk check as every algorithm."""

from __future__ import annotations

from decimal import Decimal

import pytest

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.requests import RequestError
from genesis.store.projector import rebuild
from tests.harness import harness
from tests.test_projections import snapshot

D = Decimal


async def planned_and_run(db_path, urgency: str) -> tuple[list[Decimal], Execution, list[ev.Event]]:  # type: ignore[no-untyped-def]
    async with harness(db_path) as h:
        execution_id = await h.supervisor.submit(h.request(qty="20", algo="is", duration="30m", urgency=urgency))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        live = await snapshot(h.engine)
        async with h.engine.begin() as conn:
            await rebuild(conn)
        assert await snapshot(h.engine) == live  # the projections equal a replay of the events
        started = next(e for e in history if isinstance(e, ev.ExecutionStarted))
        return [p.qty for p in started.slices], Execution.replay(execution_id, history), history


def share_done(plan: list[Decimal], fraction: float) -> Decimal:
    k = int(len(plan) * fraction)
    return sum(plan[:k], D(0)) / sum(plan, D(0))


async def test_is_front_loads_at_high_urgency_and_is_twap_like_at_low(tmp_path):
    low, low_agg, _ = await planned_and_run(tmp_path / "low.db", "low")
    high, high_agg, history = await planned_and_run(tmp_path / "critical.db", "critical")
    assert sum(low) == sum(high) == D("20")
    # low urgency: within 20% of equal slices; critical: the first slice well above equal, and
    # more than half done at half time
    equal = D("20") / len(low)
    assert all(abs(q - equal) <= equal * D("0.2") for q in low)
    assert high[0] > low[0] * D("1.5")
    assert share_done(high, 0.5) > D("0.6") > share_done(low, 0.5)
    for agg in (low_agg, high_agg):
        assert agg.algo == "is" and agg.state.value in ("completed", "expired") and agg.filled_qty > 0
    assert high_agg.urgency == "critical"
    slices = [e for e in history if isinstance(e, ev.TwapSliceExecuted)]
    assert slices and all(s.filled_qty <= D("0.1") * s.forecast_volume + D("0.00001")
                          for s in slices if s.forecast_volume)  # TWAP's participation cap holds


async def test_is_refuses_emergency_urgency(db_path):
    async with harness(db_path) as h:
        with pytest.raises(RequestError, match="emergency has no IS trajectory"):
            h.request(algo="is", duration="30m", urgency="emergency")
