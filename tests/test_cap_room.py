"""Waiting for room under the participation cap (``engine.cap_room``): the slice looks at the
traded volume again when the market should have traded enough, and that guess is not thrown
far out by an early count that lags the tape (a stream's delivery, a burst after a lull)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from genesis.clock import VirtualClock
from genesis.engine.cap_room import LOOK, next_look, room_under_cap
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.market import T0

D = Decimal
BTC = SIM_INSTRUMENTS["BTC/USDT"]
S = timedelta(seconds=1)


def lagging_tape(start, clock):
    """0.04 BTC counted in the first 4 s (the rest still in flight), then 1 BTC a second."""
    async def traded(_a, _b):
        seconds = (clock.now() - start).total_seconds()
        return D("0.04") + max(D(0), D(str(round(seconds - 4, 3))))
    return traded


async def _nothing() -> None:
    return None


async def test_a_lagging_early_count_does_not_push_the_next_look_far_past_the_room():
    clock = VirtualClock(T0)
    start = T0
    looks = []
    tape = lagging_tape(start, clock)

    async def traded(a, b):
        looks.append(clock.now())
        return await tape(a, b)

    async with clock.actor():
        allowed = await room_under_cap(
            traded_volume=traded, clock=clock, pace=_nothing, cap=D("0.10"), filled=D(0),
            wanted=D("0.0113"), instrument=BTC, interval=(start, start + 60 * S),
            by=start + 50 * S, forecast_volume=D("5.35"))
    assert allowed == D("0.0113")
    # the market had traded the 0.113 BTC needed by 4.07 s: the room is seen within a look of it
    # (extrapolating 0.04 BTC in 3.6 s alone waited until 10 s)
    assert clock.now() - start <= 4.07 * S + LOOK


def test_next_look_is_never_further_than_the_time_already_waited():
    now = T0 + 4 * S
    # a tenth of what is needed in 4 s: the market's pace alone says 40 s
    assert next_look(T0, now, D("0.01"), D("0.1")) == now + 4 * S
    # the forecast's pace from here: 0.09 more at 0.09 a second
    assert next_look(T0, now, D("0.01"), D("0.1"), D("0.09")) == now + S
    # nothing counted yet: look again soon
    assert next_look(T0, now, D(0), D("0.1")) == now + LOOK
    # already at the pace: the extrapolation is the soonest
    assert next_look(T0, now, D("0.08"), D("0.1")) == T0 + 5 * S
