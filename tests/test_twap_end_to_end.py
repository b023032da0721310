"""TWAP end to end on the simulated venue with the virtual clock."""

from __future__ import annotations

from decimal import Decimal

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.store.projector import execution_row
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.harness import harness


async def test_twap_fills_parent_exactly_and_projections_match_events(db_path):
    async with harness(db_path) as h:
        req = h.request(qty="2.5", duration="15m")
        execution_id = await h.supervisor.submit(req)
        start = h.clock.now()
        await h.supervisor.wait_all()

        history = [s.event for s in await h.store.read(execution_id)]
        agg = Execution.replay(execution_id, history)
        assert agg.state.value == "completed"
        assert agg.filled_qty == Decimal("2.5")

        slices = [e for e in history if isinstance(e, ev.TwapSliceExecuted)]
        assert len(slices) == 15  # one per minute by default
        assert sum(s.filled_qty for s in slices) == Decimal("2.5")
        # a slice fills, or its maker leg fills all but less than the venue's minimum order (the
        # slice sizes vary with a seed drawn from the execution id): that dust is carried forward
        instrument = SIM_INSTRUMENTS[req.symbol]
        for s in slices:
            assert s.status == "filled" or (
                s.status == "partial" and s.taker_qty == 0
                and s.planned_qty - s.filled_qty < instrument.min_qty_at(s.reference_price)), s
        fills = [e for e in history if isinstance(e, ev.FillRecorded)]
        assert sum(f.qty for f in fills) == Decimal("2.5")
        # the window is respected on the virtual clock: every slice scheduled inside it, each
        # slice over within the maker timeout (5 s) of its time, in order
        window_end = start.timestamp() + 15 * 60
        times = [s.scheduled_at for s in slices]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert all(start <= t and t.timestamp() < window_end for t in times)
        # a slice's taker waits, inside its interval, for the market to trade enough for the cap
        assert all(s.scheduled_at <= s.occurred_at <= s.interval_end for s in slices)
        assert all(s.maker_qty + s.taker_qty == s.filled_qty for s in slices)
        # every order's intent precedes its fills
        order_of = {e.client_order_id: i for i, e in enumerate(history) if isinstance(e, ev.OrderIntended)}
        for i, e in enumerate(history):
            if isinstance(e, ev.FillRecorded):
                assert order_of[e.client_order_id] < i

        row = await h.execution_row(execution_id)
        expected = execution_row(agg)
        assert {k: row[k] for k in expected} == expected
        (completed,) = [e for e in history if isinstance(e, ev.TwapCompleted)]
        assert isinstance(completed, ev.TwapCompleted) and completed.reason == "filled"
        assert completed.avg_price == agg.avg_price
        assert row["implementation_shortfall_bps"] == agg.implementation_shortfall_bps
