"""TWAP schedules: pure functions from (quantity, window, instrument) to planned slices.

Invariants (tested): slices are on the instrument's step, each tradable at the reference
price (min qty and min notional), strictly increasing times inside the window, and their
quantities sum exactly to the parent quantity.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Sequence

from genesis.domain.events import PlannedSlice
from genesis.domain.instrument import Instrument

DEFAULT_SLICE_SECONDS = 60
_US = timedelta(microseconds=1)
_MINUTE_US = 60_000_000


class ScheduleError(ValueError):
    """The parent cannot be scheduled as asked (too small for even one slice, ...)."""


def feasible_slice_count(qty: Decimal, wanted: int, instrument: Instrument, price: Decimal) -> int:
    """Largest count <= ``wanted`` whose equal slices each meet min qty and min notional.

    Deterministic: the count is reduced until ``qty / count`` is tradable. Returns 1 when
    even two slices are too small; raises ``ScheduleError`` when the whole is not tradable.
    """
    smallest = require_tradable(qty, instrument, price)
    by_size = int(qty // smallest)
    return max(1, min(wanted, by_size))


def require_tradable(qty: Decimal, instrument: Instrument, price: Decimal) -> Decimal:
    """The smallest tradable quantity at ``price`` (``Instrument.min_qty_at``); raises
    ``ScheduleError`` naming the instrument's rules when ``qty`` is below it."""
    smallest = instrument.min_qty_at(price)
    if qty < smallest:
        raise ScheduleError(
            f"qty {qty} is below the smallest tradable quantity {smallest} "
            f"({instrument.symbol} at {price}: min qty {instrument.min_qty}, "
            f"min notional {instrument.min_notional} {instrument.quote})"
        )
    return smallest


def split_equal(qty: Decimal, count: int, instrument: Instrument) -> list[Decimal]:
    """``count`` quantities on the step, as equal as possible, summing exactly to ``qty``.

    The rounding remainder is given one step at a time to the earliest slices, so no slice
    differs from another by more than one step (plus whatever of ``qty`` is below the step,
    which lands on the last slice).
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    step = instrument.step_size
    base = instrument.round_qty_down(qty / count)
    parts = [base] * count
    leftover = qty - base * count
    i = 0
    while leftover >= step and count > 1:
        parts[i % count] += step
        leftover -= step
        i += 1
    parts[-1] += leftover
    return parts


def plan_twap(
    qty: Decimal,
    start: datetime,
    duration_seconds: int,
    instrument: Instrument,
    price: Decimal,
    slice_count: int | None = None,
    first_index: int = 0,
) -> tuple[PlannedSlice, ...]:
    """Equal slices at equal intervals over ``[start, start + duration)``; slice 0 at ``start``.

    Without ``slice_count``, one slice per ``DEFAULT_SLICE_SECONDS``. The count is reduced
    (deterministically) when slices would fall below the instrument's minimums.
    """
    if duration_seconds <= 0:
        raise ScheduleError("duration_seconds must be > 0")
    wanted = slice_count or max(1, duration_seconds // DEFAULT_SLICE_SECONDS)
    count = feasible_slice_count(qty, wanted, instrument, price)
    times = _spread(start, timedelta(seconds=duration_seconds), count)
    return tuple(
        PlannedSlice(first_index + i, at, q)
        for i, (at, q) in enumerate(zip(times, split_equal(qty, count, instrument)))
    )


def respread(
    remaining_qty: Decimal,
    remaining_indices: list[int],
    start: datetime,
    end: datetime,
    instrument: Instrument,
) -> tuple[PlannedSlice, ...]:
    """Re-spread what is left over the slices not yet executed, evenly in ``[start, end)``.

    Used on resume and restart. Keeps the original slice indices (and so the client order ids
    of slices already sent stay unique). Quantities are indicative: each slice is sized again
    from the venue-reported remainder when it runs.
    """
    if not remaining_indices:
        return ()
    count = len(remaining_indices)
    times = _spread(start, end - start, count)
    qtys = split_equal(remaining_qty, count, instrument) if remaining_qty > 0 else [Decimal(0)] * count
    return tuple(PlannedSlice(idx, at, q) for idx, at, q in zip(remaining_indices, times, qtys))


def respread_by_volume(
    remaining_qty: Decimal,
    remaining_indices: list[int],
    start: datetime,
    end: datetime,
    minute_volumes: Sequence[float] | None,
    instrument: Instrument,
) -> tuple[PlannedSlice, ...]:
    """Re-plan what is left over the slices not yet executed, placed where the market usually
    trades in ``[start, end)`` (resume, restart, late loop, early completion).

    ``minute_volumes[k]``: the usual (relative) volume of the minute starting ``k`` minutes
    after ``start`` floored to the minute; minutes past its end count as zero, and an empty
    or all-zero profile means flat (None: no profile, ``respread``). The ``n`` slices cut the window's expected volume into
    ``n`` equal parts, slice ``i`` at the start of part ``i`` (so the first is due at
    ``start``; a flat profile gives ``respread``'s even times, to the microsecond): busy
    minutes get more slices. Quantities as in ``respread``: on the step, as equal as
    possible, summing exactly to ``remaining_qty``; indices are kept. ``end <= start``:
    every slice is due at ``start``.
    """
    if minute_volumes is None or not remaining_indices or end <= start:
        return respread(remaining_qty, remaining_indices, start, end, instrument)
    count = len(remaining_indices)
    offset_us = (start - start.replace(second=0, microsecond=0)) // _US
    span_us = (end - start) // _US
    times = [start + timedelta(microseconds=t)
             for t in _quantile_offsets_us(count, offset_us, span_us, tuple(minute_volumes))]
    qtys = split_equal(remaining_qty, count, instrument) if remaining_qty > 0 else [Decimal(0)] * count
    return tuple(PlannedSlice(idx, at, q) for idx, at, q in zip(remaining_indices, times, qtys))


@lru_cache(maxsize=1024)
def _quantile_offsets_us(count: int, offset_us: int, span_us: int, minute_volumes: tuple[float, ...]) -> tuple[int, ...]:
    """``volume_quantile_offsets_us``, memoised (it is pure): the parents re-spread at one
    instant over one window and one profile (a restart) share it."""
    return tuple(volume_quantile_offsets_us(count, offset_us, span_us, minute_volumes))


def volume_quantile_offsets_us(count: int, offset_us: int, span_us: int,
                               minute_volumes: Sequence[float]) -> list[int]:
    """Microseconds after the window start at which the window's expected cumulative volume
    reaches ``i / count`` (``i = 1..count-1``, after a first 0). The window is
    ``[offset_us, offset_us + span_us)`` on the profile's time axis (minute ``k`` of
    ``minute_volumes`` covers ``[k, k + 1)`` minutes); volume is uniform within a minute and
    a minute cut by the window counts in proportion. Non-decreasing, each ``< span_us``."""
    pieces: list[tuple[int, int, float]] = []  # (from_us, to_us, expected volume) per minute overlapped
    t, end = offset_us, offset_us + span_us
    while t < end:
        k = t // _MINUTE_US
        to = min((k + 1) * _MINUTE_US, end)
        weight = max(0.0, float(minute_volumes[k])) if k < len(minute_volumes) else 0.0
        pieces.append((t, to, weight * (to - t) / _MINUTE_US))
        t = to
    total = sum(mass for _, _, mass in pieces)
    if total <= 0:  # no profile: flat
        pieces = [(a, b, float(b - a)) for a, b, _ in pieces]
        total = float(span_us)
    out, acc, j = [0], 0.0, 0
    for i in range(1, count):
        target = total * i / count
        while j < len(pieces) - 1 and acc + pieces[j][2] <= target:
            acc += pieces[j][2]
            j += 1
        a, b, mass = pieces[j]
        within = min(1.0, (target - acc) / mass) if mass > 0 else 0.0
        out.append(min(a + int(within * (b - a)) - offset_us, span_us - 1))
    return out


def _spread(start: datetime, span: timedelta, count: int) -> list[datetime]:
    """``count`` evenly spaced times in ``[start, start + span)``, the first at ``start``.

    Integer microseconds: a float interval rounded to the microsecond, multiplied by a large
    count, can push the last slices past the end of the window.
    """
    span_us = max(span // timedelta(microseconds=1), 0)
    return [start + timedelta(microseconds=span_us * i // count) for i in range(count)]


def next_slice_qty(remaining_qty: Decimal, slices_left: int, instrument: Instrument, price: Decimal) -> Decimal:
    """Quantity for the next slice: an equal share of what remains, on the step.

    The last slice takes everything left. A share too small to trade is 0 (carried forward)
    unless it is the last slice.
    """
    if remaining_qty <= 0:
        return Decimal(0)
    if slices_left <= 1:
        return remaining_qty
    share = instrument.round_qty_down(remaining_qty / slices_left)
    if share < instrument.min_qty_at(price):
        return Decimal(0)
    return share
