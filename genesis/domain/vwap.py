"""VWAP planning and per-slice sizing: pure functions over a ``VolumeCurve``.

* ``plan_vwap`` / ``OrderSlicer``: the initial plan, slice quantities proportional to the
  curve over the window, on the step, each tradable, summing exactly to the parent.
* ``target_qty_for_slice`` / ``ExecutionScheduler``: before each slice, the child quantity
  from what is left, the curve share of this interval within the rest of the window, the
  urgency and the participation cap (never exceeded, by construction).
* ``intraday_volume_scale``: optional forecast adjustment from today's observed volume.

Formulas and the reasoning behind them: docs/vwap.md.
"""

from __future__ import annotations

import enum
import itertools
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext

import numpy as np

from genesis.clock import utc
from genesis.domain.events import PlannedSlice
from genesis.domain.instrument import Instrument
from genesis.domain.schedule import ScheduleError, require_tradable
from genesis.domain.volume_curve import VolumeCurve, day_start, float_to_decimal

DEFAULT_INTERVAL_SECONDS = 60
DEFAULT_PARTICIPATION_CAP = Decimal("0.10")
ZERO = Decimal(0)
_US = timedelta(microseconds=1)


class Urgency(str, enum.Enum):
    """How fast to work the parent. ``pace`` multiplies the curve rate; None = no curve pace."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"  # as fast as the participation cap allows
    EMERGENCY = "emergency"  # everything now; ignores the participation cap

    @property
    def pace(self) -> Decimal | None:
        return _PACE.get(self)


_PACE = {Urgency.LOW: Decimal(1), Urgency.MEDIUM: Decimal("1.5"), Urgency.HIGH: Decimal(2)}


# ----------------------------------------------------------------------------- initial plan
def plan_vwap(
    qty: Decimal,
    start: datetime,
    end: datetime,
    curve: VolumeCurve,
    instrument: Instrument,
    price: Decimal,
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    first_index: int = 0,
) -> tuple[PlannedSlice, ...]:
    """Slices over ``[start, end)`` whose quantities follow ``curve``.

    The window is cut into ``n = ceil(span / interval_seconds)`` equal intervals. Cumulative
    targets ``floor(units * C_k)`` (``units`` = whole steps in ``qty``, ``C_k`` = the curve's
    cumulative share of the window at boundary ``k``) make every slice a step multiple and
    keep the cumulative plan within one step of the curve; they sum exactly to the whole
    steps. Intervals are then grouped left to right, a group closing as soon as it holds at
    least the smallest tradable quantity at ``price``; a short tail group joins the group
    before it. A group is one slice at its first interval's start. Any part of ``qty``
    below one step goes to the last slice. Raises ``ScheduleError`` if ``qty`` is not tradable.
    """
    start, end = utc(start), utc(end)
    if end <= start or interval_seconds <= 0:
        raise ScheduleError("need end > start and interval_seconds > 0")
    smallest = require_tradable(qty, instrument, price)
    span_us = (end - start) // _US
    n = max(1, -(-span_us // (interval_seconds * 1_000_000)))
    step = instrument.step_size
    units = int(qty // step)
    min_units = int((smallest / step).to_integral_value(rounding=ROUND_CEILING))
    cum = curve.cumulative_between(start, end, n)
    # the 1e-6 step tolerance keeps float noise at exact boundaries from losing a step
    targets = np.clip(np.floor(cum / cum[-1] * units + 1e-6), 0, units).astype(np.int64)
    targets[0], targets[-1] = 0, units
    cu_arr = np.maximum.accumulate(targets)
    if n == 1 or int(np.diff(cu_arr).min()) >= min_units:
        bounds: "range | list[int]" = range(n + 1)  # common case: every interval is tradable
        cu = cu_arr.tolist()
    else:
        bounds = group_bounds(cu_arr.tolist(), min_units)
        cu = cu_arr[bounds].tolist()
    as_qty: dict[int, Decimal] = {}  # step multiples repeat along a curve: each is built once
    qtys = [as_qty.get(d) or as_qty.setdefault(d, Decimal(d) * step) for d in map(operator.sub, cu[1:], cu)]
    qtys[-1] += qty - units * step
    if span_us % n == 0 and bounds == range(n + 1):
        times = list(itertools.accumulate(itertools.repeat(timedelta(microseconds=span_us // n), n - 1), initial=start))
    elif span_us % n == 0:
        interval = timedelta(microseconds=span_us // n)
        times = [start + interval * b for b in bounds[:-1]]
    else:
        times = [start + timedelta(microseconds=span_us * b // n) for b in bounds[:-1]]
    return tuple(map(PlannedSlice, range(first_index, first_index + len(times)), times, qtys))


def group_bounds(cu: list[int], min_units: int) -> list[int]:
    """Left-to-right grouping of cumulative step targets into groups of >= ``min_units``.

    Returns indices into ``cu`` (first 0, last ``len(cu) - 1``): a group closes as soon as it
    holds ``min_units``; a short tail joins the group before it."""
    bounds = [0]
    last = 0
    for k in range(1, len(cu)):
        if cu[k] - last >= min_units:
            bounds.append(k)
            last = cu[k]
    if len(bounds) == 1:
        bounds.append(len(cu) - 1)
    else:
        bounds[-1] = len(cu) - 1  # a short tail joins the last full group
    return bounds


@dataclass(frozen=True, slots=True)
class OrderSlicer:
    """``plan_vwap`` with its interval fixed (e.g. 60 s, or the curve's bin)."""

    interval_seconds: int = DEFAULT_INTERVAL_SECONDS

    def plan(self, qty: Decimal, start: datetime, end: datetime, curve: VolumeCurve,
             instrument: Instrument, price: Decimal, first_index: int = 0) -> tuple[PlannedSlice, ...]:
        return plan_vwap(qty, start, end, curve, instrument, price, self.interval_seconds, first_index)


# ----------------------------------------------------------------------------- per slice
@dataclass(frozen=True, slots=True)
class SliceTarget:
    """The child quantity for the next interval and why.

    ``desired_qty``: what the urgency asks for before the cap and rounding. ``cap_qty``:
    participation cap times expected interval volume on the step (None in emergency).
    ``cap_bound``: the cap cut the quantity (record a rate-limit event). ``reason``: one of
    ``done``, ``curve``, ``pace``, ``cap``, ``below_min``, ``emergency``.
    """

    qty: Decimal
    desired_qty: Decimal
    cap_qty: Decimal | None
    cap_bound: bool
    urgency: Urgency
    reason: str


def target_qty_for_slice(
    *,
    remaining_qty: Decimal,
    slice_share: float,
    expected_interval_volume: Decimal,
    instrument: Instrument,
    price: Decimal,
    urgency: Urgency = Urgency.LOW,
    participation_cap: Decimal = DEFAULT_PARTICIPATION_CAP,
) -> SliceTarget:
    """Child quantity for the next interval.

    ``slice_share`` is this interval's share of the expected volume from now to the window
    end (1.0 for the last interval). Desired: low ``R*s``, medium ``1.5*R*s``, high ``2*R*s``
    (each at most ``R``, rounded to 12 significant digits so that float noise in ``s`` does
    not lose a step), critical and emergency ``R``. Then, except in emergency, at most
    ``floor_step(participation_cap * expected_interval_volume)``. Rounded down to the step;
    a result below the smallest tradable quantity is 0 (carried to later slices); a result
    that would leave an untradable remainder takes the remainder too, unless that breaks
    the cap, in which case it leaves exactly one minimum quantity for later. The
    instrument's ``max_qty`` always applies, emergency included.
    """
    if not 0.0 < slice_share <= 1.0:
        raise ValueError(f"slice_share must be in (0, 1], got {slice_share}")
    if remaining_qty <= 0:
        return SliceTarget(ZERO, ZERO, None, False, urgency, "done")
    pace = urgency.pace
    if pace is None or slice_share >= 1.0:
        desired = remaining_qty
    else:
        with localcontext() as ctx:  # 12 significant digits: float noise must not cost a step
            ctx.prec = 12
            desired = min(remaining_qty, +(remaining_qty * float_to_decimal(slice_share) * pace))
    cap_qty = None
    limit = remaining_qty
    if urgency is not Urgency.EMERGENCY:
        cap_qty = instrument.round_qty_down(max(participation_cap * expected_interval_volume, ZERO))
        limit = min(limit, cap_qty)
    if instrument.max_qty is not None:
        limit = min(limit, instrument.max_qty)
    smallest = instrument.min_qty_at(price)
    qty = desired if desired == remaining_qty else instrument.round_qty_down(desired)
    if 0 < remaining_qty - qty < smallest:
        qty = remaining_qty  # never strand an untradable remainder
    cap_bound = cap_qty is not None and qty > cap_qty
    if qty > limit:
        qty = limit
        if 0 < remaining_qty - qty < smallest:
            qty = instrument.round_qty_down(remaining_qty - smallest)  # leave one minimum
    if qty < smallest:
        return SliceTarget(ZERO, desired, cap_qty, cap_bound, urgency, "below_min")
    if urgency is Urgency.EMERGENCY:
        reason = "emergency"
    elif cap_bound:
        reason = "cap"
    else:
        reason = "curve" if urgency is Urgency.LOW else "pace"
    return SliceTarget(qty, desired, cap_qty, cap_bound, urgency, reason)


def interval_share(curve: VolumeCurve, interval_start: datetime, interval_end: datetime,
                   window_end: datetime) -> float:
    """Share of the expected volume in ``[interval_start, window_end)`` that falls in the interval."""
    if interval_end >= window_end:
        return 1.0
    rest = curve.fraction(interval_start, window_end)
    return min(1.0, curve.fraction(interval_start, interval_end) / rest) if rest > 0 else 1.0


def intraday_volume_scale(observed_today: Decimal | float, curve: VolumeCurve,
                          typical_daily_volume: Decimal | float, now: datetime,
                          lo: float = 0.5, hi: float = 2.0, min_share: float = 0.02) -> float:
    """Observed volume since UTC midnight over what the curve expected by ``now``, clipped to
    ``[lo, hi]``; 1.0 until ``min_share`` of a day's volume was expected (too little data)."""
    share = curve.fraction(day_start(now), now)
    expected = float(typical_daily_volume) * share
    if share < min_share or expected <= 0:
        return 1.0
    return min(hi, max(lo, float(observed_today) / expected))


def scheduled_done_qty(parent_qty: Decimal, curve: VolumeCurve, start: datetime, end: datetime,
                       now: datetime, urgency: Urgency = Urgency.LOW) -> Decimal:
    """Quantity the urgency's schedule expects done by ``now``: ``Q * (1 - rem ** pace)`` with
    ``rem`` the curve share of the window still ahead (critical/emergency: all of it)."""
    pace = urgency.pace
    if pace is None or now >= end:
        return parent_qty
    total = curve.fraction(start, end)
    rem = curve.fraction(max(now, start), end) / total if total > 0 else 1.0
    return parent_qty * (1 - float_to_decimal(rem ** float(pace)))


def is_behind_schedule(scheduled_done: Decimal, filled_qty: Decimal, parent_qty: Decimal,
                       tolerance: Decimal = Decimal("0.05")) -> bool:
    """True when fills lag the schedule by more than ``tolerance`` of the parent (go taker)."""
    return scheduled_done - filled_qty > tolerance * parent_qty


def needs_taker(scheduled_done: Decimal, filled_qty: Decimal, parent_qty: Decimal,
                tolerance: Decimal = Decimal("0.05")) -> bool:
    """Should this slice take liquidity for what its maker leg leaves? ``scheduled_done`` is
    the schedule's progress by the *end* of the slice's interval. Yes when, should the maker
    leg fill nothing, the lag ``scheduled_done - filled_qty`` would exceed ``tolerance`` of the
    quantity the schedule still has ahead (``parent_qty - scheduled_done``). The allowed lag is
    a funnel: it shrinks with the window and is 0 on the last slice, so the parent finishes on
    schedule instead of dumping a lag of ``tolerance * parent`` on the last minutes (where the
    participation cap cannot absorb it). ``tolerance = 0``: every slice completes as taker."""
    return scheduled_done - filled_qty > tolerance * max(parent_qty - scheduled_done, ZERO)


@dataclass(frozen=True, slots=True)
class ExecutionScheduler:
    """One execution's per-slice sizing: binds the curve, instrument, volume and cap."""

    curve: VolumeCurve
    instrument: Instrument
    daily_volume: Decimal
    participation_cap: Decimal = DEFAULT_PARTICIPATION_CAP

    @classmethod
    def from_curve(cls, curve: VolumeCurve, instrument: Instrument,
                   participation_cap: Decimal = DEFAULT_PARTICIPATION_CAP) -> ExecutionScheduler:
        """A scheduler whose daily volume is the curve's ``typical_daily_volume``."""
        return cls(curve, instrument, float_to_decimal(curve.typical_daily_volume), participation_cap)

    def expected_interval_volume(self, start: datetime, end: datetime,
                                 volume_scale: float = 1.0) -> Decimal:
        return self.curve.expected_volume(self.daily_volume, start, end) * float_to_decimal(volume_scale)

    def next_slice(self, *, remaining_qty: Decimal, interval_start: datetime, interval_end: datetime,
                   window_end: datetime, price: Decimal, urgency: Urgency = Urgency.LOW,
                   volume_scale: float = 1.0) -> SliceTarget:
        """``target_qty_for_slice`` for ``[interval_start, interval_end)`` of a window ending
        at ``window_end``; ``volume_scale`` from ``intraday_volume_scale`` (1.0 = off)."""
        return target_qty_for_slice(
            remaining_qty=remaining_qty,
            slice_share=interval_share(self.curve, interval_start, interval_end, window_end),
            expected_interval_volume=self.expected_interval_volume(interval_start, interval_end,
                                                                   volume_scale),
            instrument=self.instrument, price=price, urgency=urgency,
            participation_cap=self.participation_cap)
