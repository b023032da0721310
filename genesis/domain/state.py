"""The execution state machine as data: one transition table, typed errors for illegal moves."""

from __future__ import annotations

import enum


class ExecutionState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    EXPIRED = "expired"  # the window ended with quantity left (participation cap, limit price...)

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


class Trigger(str, enum.Enum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    CANCEL = "cancel"
    FAIL = "fail"
    EXPIRE = "expire"


TERMINAL_STATES = frozenset({ExecutionState.COMPLETED, ExecutionState.CANCELLED, ExecutionState.FAILED,
                             ExecutionState.EXPIRED})

S, T = ExecutionState, Trigger
TRANSITIONS: dict[tuple[ExecutionState, Trigger], ExecutionState] = {
    (S.PENDING, T.START): S.RUNNING,
    (S.PENDING, T.PAUSE): S.PAUSED,
    (S.PENDING, T.CANCEL): S.CANCELLED,
    (S.PENDING, T.FAIL): S.FAILED,
    (S.RUNNING, T.PAUSE): S.PAUSED,
    (S.RUNNING, T.COMPLETE): S.COMPLETED,
    (S.RUNNING, T.CANCEL): S.CANCELLED,
    (S.RUNNING, T.FAIL): S.FAILED,
    (S.RUNNING, T.EXPIRE): S.EXPIRED,
    (S.PAUSED, T.RESUME): S.RUNNING,
    (S.PAUSED, T.CANCEL): S.CANCELLED,
    (S.PAUSED, T.FAIL): S.FAILED,
}
del S, T


class IllegalTransition(Exception):
    """``trigger`` is not allowed from ``state``."""

    def __init__(self, state: ExecutionState, trigger: Trigger):
        super().__init__(f"cannot {trigger.value} an execution that is {state.value}")
        self.state = state
        self.trigger = trigger


def transition(state: ExecutionState, trigger: Trigger) -> ExecutionState:
    """Next state, or ``IllegalTransition``."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransition(state, trigger) from None


def can(state: ExecutionState, trigger: Trigger) -> bool:
    return (state, trigger) in TRANSITIONS
