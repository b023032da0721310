"""The execution state machine (one transition table) and the aggregate's fold over events."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from genesis.domain import events as ev
from genesis.domain.execution import Execution
from genesis.domain.state import (TERMINAL_STATES, TRANSITIONS, ExecutionState, IllegalTransition, Trigger, can,
                                  transition)

S, T = ExecutionState, Trigger

# The specification, written out independently of the implementation's table.
ALLOWED: dict[tuple[ExecutionState, Trigger], ExecutionState] = {
    (S.PENDING, T.START): S.RUNNING,
    (S.PENDING, T.PAUSE): S.PAUSED,
    (S.PENDING, T.CANCEL): S.CANCELLED,
    (S.PENDING, T.FAIL): S.FAILED,
    (S.RUNNING, T.PAUSE): S.PAUSED,
    (S.RUNNING, T.COMPLETE): S.COMPLETED,
    (S.RUNNING, T.EXPIRE): S.EXPIRED,
    (S.RUNNING, T.CANCEL): S.CANCELLED,
    (S.RUNNING, T.FAIL): S.FAILED,
    (S.PAUSED, T.RESUME): S.RUNNING,
    (S.PAUSED, T.CANCEL): S.CANCELLED,
    (S.PAUSED, T.FAIL): S.FAILED,
}
ALL_PAIRS = list(itertools.product(ExecutionState, Trigger))
DISALLOWED = [p for p in ALL_PAIRS if p not in ALLOWED]


def test_the_table_is_exactly_the_specification() -> None:
    assert TRANSITIONS == ALLOWED


@pytest.mark.parametrize("state, trigger", list(ALLOWED))
def test_every_allowed_move(state: ExecutionState, trigger: Trigger) -> None:
    assert transition(state, trigger) is ALLOWED[(state, trigger)]
    assert can(state, trigger)


@pytest.mark.parametrize("state, trigger", DISALLOWED)
def test_every_disallowed_move_is_an_illegal_transition(state: ExecutionState, trigger: Trigger) -> None:
    assert not can(state, trigger)
    with pytest.raises(IllegalTransition) as info:
        transition(state, trigger)
    assert (info.value.state, info.value.trigger) == (state, trigger)
    assert str(info.value) == f"cannot {trigger.value} an execution that is {state.value}"


def test_terminal_states_have_no_exits() -> None:
    assert TERMINAL_STATES == {S.COMPLETED, S.CANCELLED, S.FAILED, S.EXPIRED}
    for state in ExecutionState:
        exits = [trig for trig in Trigger if can(state, trig)]
        assert state.is_terminal == (not exits), state
    # every non-terminal state can still be cancelled or failed
    for state in set(ExecutionState) - TERMINAL_STATES:
        assert can(state, T.CANCEL) and can(state, T.FAIL)


def test_every_state_is_reachable_from_pending() -> None:
    seen, frontier = {S.PENDING}, [S.PENDING]
    while frontier:
        state = frontier.pop()
        for trig in Trigger:
            if can(state, trig) and (nxt := transition(state, trig)) not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(ExecutionState)


# -- the aggregate ---------------------------------------------------------------------------

T0 = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def history() -> list[ev.Event]:
    plan = (ev.PlannedSlice(0, at(0), Decimal("0.6")), ev.PlannedSlice(1, at(60), Decimal("0.4")))
    return [
        ev.ExecutionSubmitted("e1", at(0), "r1", "BTC/USDT", "buy", Decimal("1.0"), "twap", 120),
        ev.ExecutionStarted("e1", at(0), Decimal("100"), at(120), plan),
        ev.OrderIntended("e1", at(1), 0, 0, "ge1-0-0", "market", "gtc", Decimal("0.6"), None, Decimal("100")),
        ev.FillRecorded("e1", at(2), "ge1-0-0", 0, "t1", Decimal("0.25"), Decimal("101"), Decimal("0.01"),
                        "USDT", "taker", at(2)),
        ev.FillRecorded("e1", at(2), "ge1-0-0", 0, "t2", Decimal("0.35"), Decimal("102"), Decimal("0.02"),
                        "USDT", "taker", at(2)),
        ev.OrderClosed("e1", at(3), "ge1-0-0", "filled", Decimal("0.6")),
        ev.TwapSliceExecuted("e1", at(3), 0, 2, "filled", Decimal("0.6"), Decimal("0.6"), Decimal("101.5833"),
                             Decimal("100"), None, Decimal("0.03")),
        ev.ExecutionPaused("e1", at(10), "operator"),
        ev.ExecutionResumed("e1", at(40), "operator"),
    ]


def test_fold_tracks_state_quantities_and_pause_time() -> None:
    agg = Execution.replay("e1", history())
    assert agg.state is S.RUNNING
    assert agg.version == len(history())
    assert agg.filled_qty == Decimal("0.60")
    assert agg.remaining_qty == Decimal("0.40")
    assert agg.avg_price == (Decimal("0.25") * 101 + Decimal("0.35") * 102) / Decimal("0.6")
    assert agg.fees == Decimal("0.03")
    assert agg.paused_seconds == 30.0 and agg.paused_at is None
    assert [s.index for s in agg.open_slices()] == [1]
    assert agg.unresolved_orders() == []
    assert agg.implementation_shortfall_bps is not None and agg.implementation_shortfall_bps > 0  # paid up


def test_fold_refuses_illegal_moves_and_duplicates() -> None:
    agg = Execution.replay("e1", history())
    with pytest.raises(IllegalTransition):
        agg.apply(ev.ExecutionResumed("e1", at(50), "again"))
    agg = Execution.replay("e1", history())
    with pytest.raises(ValueError, match="recorded twice"):
        agg.apply(history()[3])  # fill t1 again
    agg = Execution.replay("e1", history())
    with pytest.raises(ValueError, match="intended twice"):
        agg.apply(history()[2])


def test_cancel_while_paused_counts_the_pause_and_is_terminal() -> None:
    events = history()[:-1] + [ev.ExecutionCancelled("e1", at(70), "operator")]
    agg = Execution.replay("e1", events)
    assert agg.state is S.CANCELLED and agg.state.is_terminal
    assert agg.paused_seconds == 60.0
    assert agg.ended_at == at(70)
    with pytest.raises(IllegalTransition):
        agg.apply(ev.ExecutionResumed("e1", at(80), "too late"))
