"""The algorithm interface: what every execution algorithm decides, and nothing else.

An algorithm is intent only (the nautilus_trader way): it validates its typed, frozen config,
plans the window, sizes the next slice, chooses its legs (maker first or straight taker, and
whether the taker takes the rest), decides an early finish, answers an urgency change and
names the events its slices and its end are recorded as. It reads the execution (``agg``)
and the market data it is given; it returns decisions and events, and never calls the venue
to trade or the store. The runner and the slice worker act on what it returns.

Adding an algorithm: a module under ``genesis/algorithms/`` with its config and a class
satisfying ``Algorithm``, and one line in ``genesis/algorithms/registry.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Mapping, Protocol

from genesis.domain import events as ev
from genesis.domain.events import PlannedSlice
from genesis.domain.execution import Execution, SliceState
from genesis.domain.instrument import Instrument
from genesis.domain.twap import TwapParams
from genesis.engine.market_data import MarketData
from genesis.request_error import RequestError

OptionError = RequestError  # a bad submit option of an algorithm: names the field and the fix

ZERO = Decimal(0)
DEFAULT_BEHIND_TOLERANCE = Decimal("0.2")  # of the schedule still ahead: docs/execution-quality.md


@dataclass(frozen=True, slots=True)
class SubmitOption:
    """An algorithm-specific option of ``genesis submit``: ``name`` in snake case is its key in
    the submission payload; the CLI spells it ``--name-with-dashes``."""

    name: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class VwapSettings:
    interval_seconds: int = 60
    behind_tolerance: Decimal = DEFAULT_BEHIND_TOLERANCE
    intraday_adjustment: bool = False


@dataclass(frozen=True, slots=True)
class AlgorithmSettings:
    """What the daemon's config says about the algorithms (the ``twap`` and ``vwap`` sections)."""

    twap: TwapParams = field(default_factory=TwapParams)
    vwap: VwapSettings = field(default_factory=VwapSettings)


@dataclass(frozen=True, slots=True)
class SliceSizing:
    qty: Decimal  # what this slice may send (0: skip, carry forward)
    wanted_qty: Decimal  # before the participation cap
    market_volume: Decimal | None  # expected market volume in the slice's interval
    cap_bound: bool = False
    volume_anomaly: bool = False
    taker_fallback: bool = True  # after the maker leg, take the rest (False: carry it forward)
    maker_first: bool = True  # False: straight to taker (emergency)
    # the cap the taker leg is held to against the volume actually traded in the slice's
    # interval (``domain.twap.taker_allowance``); None: uncapped (emergency, the router's TWAP)
    participation_cap: Decimal | None = None


@dataclass(frozen=True, slots=True)
class UrgencyDecision:
    """The answer to an urgency change: events to append, or a refusal (``rejected``)."""

    events: tuple[ev.Event, ...] = ()
    rejected: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What an algorithm is given to decide with: the market data and the instrument."""

    market: MarketData
    instrument: Instrument
    settings: AlgorithmSettings


class Algorithm(Protocol):
    """One execution algorithm. Class attributes describe it to the submit path; instances
    are built per execution by ``for_execution`` and decide for it."""

    name: ClassVar[str]  # the registered name (``--algo``)
    windowed: ClassVar[bool]  # trades inside a window ending at end_at (else a nominal end only)
    tiered: ClassVar[bool]  # needs the Strategist tier
    accepts_urgency: ClassVar[bool]  # --urgency at submit
    changes_urgency: ClassVar[bool]  # `genesis urgency` while it runs
    honours_slice_count: ClassVar[bool]  # --slices sets its plan (checked against the maker timeout)
    duration_section: ClassVar[str | None]  # the config section bounding --duration (None: no window asked)
    options: ClassVar[tuple[SubmitOption, ...]]

    @classmethod
    def for_execution(cls, agg: Execution, ctx: Context) -> "Algorithm":
        """The algorithm configured for ``agg`` from its stored params (raises ``OptionError``)."""
        ...

    @classmethod
    def params_from(cls, options: Mapping[str, str | None], urgency: str | None) -> dict[str, str]:
        """Validate the submit options; the params to store (raises ``OptionError``)."""
        ...


    async def plan(self, agg: Execution, now: datetime, arrival: Decimal) -> tuple[tuple[PlannedSlice, ...], datetime]:
        """The initial schedule and the window end."""
        ...

    async def size(self, agg: Execution, s: SliceState, slices_left: int, ref: Decimal,
                   interval_seconds: float, now: datetime) -> SliceSizing:
        """How much the next slice may trade, and its legs."""
        ...

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        """The usual relative volume of each minute from ``start`` (floored) to ``end`` to
        re-plan the open slices on; None: re-plan evenly."""
        ...

    async def finish_early(self, agg: Execution, now: datetime) -> list[ev.Event]:
        """Events of an early finish decided now, before the next slice (empty: none)."""
        ...

    async def continue_after_plan(self, agg: Execution, now: datetime) -> list[ev.Event]:
        """Every planned slice has run, quantity is left and the window has not ended: events
        that plan more slices (empty: the execution ends now with what it has)."""
        ...

    def change_urgency(self, agg: Execution, level: str, reason: str, now: datetime) -> UrgencyDecision:
        """An operator's urgency change."""
        ...

    def slice_event(self, agg: Execution, *args: Any, **fields: Any) -> ev.TwapSliceExecuted:
        """The event a closed slice is recorded as (``TwapSliceExecuted``'s fields)."""
        ...

    def completion_event(self, agg: Execution, *args: Any) -> ev.TwapCompleted:
        """The event the execution's end is recorded as."""
        ...


class AlgorithmDefaults:
    """The common answers; an algorithm overrides what it decides differently."""

    windowed: ClassVar[bool] = True
    tiered: ClassVar[bool] = True
    accepts_urgency: ClassVar[bool] = False
    changes_urgency: ClassVar[bool] = False
    honours_slice_count: ClassVar[bool] = False
    duration_section: ClassVar[str | None] = "twap"
    options: ClassVar[tuple[SubmitOption, ...]] = ()

    @classmethod
    def params_from(cls, options: Mapping[str, str | None], urgency: str | None) -> dict[str, str]:
        return {}

    async def replan_profile(self, agg: Execution, start: datetime, end: datetime) -> list[float] | None:
        return None

    async def finish_early(self, agg: Execution, now: datetime) -> list[ev.Event]:
        return []

    async def continue_after_plan(self, agg: Execution, now: datetime) -> list[ev.Event]:
        return []

    def change_urgency(self, agg: Execution, level: str, reason: str, now: datetime) -> UrgencyDecision:
        return UrgencyDecision(rejected=f"the urgency of a {agg.algo} execution cannot change while it runs")

    def slice_event(self, agg: Execution, *args: Any, **fields: Any) -> ev.TwapSliceExecuted:
        return ev.TwapSliceExecuted(*args, **fields)

    def completion_event(self, agg: Execution, *args: Any) -> ev.TwapCompleted:
        return ev.TwapCompleted(*args)


def execution_seed(execution_id: str) -> int:
    """Seeded randomness per execution: reproducible in replays and backtests."""
    return int(hashlib.sha256(execution_id.encode()).hexdigest()[:8], 16)
