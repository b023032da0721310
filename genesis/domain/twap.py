"""TWAP: adaptive slice timing, randomisation, participation cap, early completion.

Pure functions. ``calculate_time_slices`` places slices at the quantiles of the expected
cumulative volume over the window, so busy minutes get more (and thin minutes fewer) slices,
then jitters their times and varies their sizes with a seeded RNG, keeping every slice on
the step and the total exactly equal to the parent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Sequence

from genesis.domain.events import PlannedSlice
from genesis.domain.instrument import Instrument
from genesis.domain.orders import Side
from genesis.domain.schedule import feasible_slice_count, split_equal
from genesis.domain.units import BPS
from genesis.domain.volume_anomaly import DEFAULT_ANOMALY_RATIO, is_volume_anomaly  # noqa: F401  re-exported; the rule lives there


@dataclass(frozen=True, slots=True)
class TwapParams:
    """Knobs of the adaptive TWAP (``twap`` section of the config)."""

    jitter_fraction: float = 0.3  # a slice time moves by up to +-30% of its spacing
    size_variation: Decimal = Decimal("0.2")  # a slice size varies by up to +-20%
    participation_cap: Decimal = Decimal("0.10")  # of the market volume in the slice's interval
    early_completion_bps: Decimal = Decimal("20")  # 0.2% better than arrival: finish faster
    early_interval_seconds: int = 10  # spacing of the remaining slices once finishing early
    anomaly_ratio: float = DEFAULT_ANOMALY_RATIO  # a minute's volume this many times above/below usual is anomalous
    anomaly_participation_factor: Decimal = Decimal("0.5")  # cap multiplier in an anomalous minute


def calculate_time_slices(
    qty: Decimal,
    start: datetime,
    duration_seconds: int,
    volume_profile: Sequence[float],
    instrument: Instrument,
    price: Decimal,
    slice_count: int | None = None,
    params: TwapParams = TwapParams(),
    seed: int = 0,
) -> tuple[PlannedSlice, ...]:
    """Slices for ``qty`` over ``[start, start + duration)``.

    ``volume_profile`` holds the expected relative volume of each minute of the window (any
    positive scale; empty or all-zero means flat). Slice ``i`` of ``n`` is placed where the
    expected cumulative volume reaches ``(i + 0.5) / n``, jittered within its own gap.
    """
    wanted = slice_count or max(1, duration_seconds // 60)
    n = feasible_slice_count(qty, wanted, instrument, price)
    rng = random.Random(seed)
    times = _volume_quantile_times(n, duration_seconds, volume_profile)
    times = _jitter(times, duration_seconds, params.jitter_fraction, rng)
    qtys = vary_sizes(qty, n, instrument, price, params.size_variation, rng)
    return tuple(PlannedSlice(i, start + timedelta(seconds=t), q) for i, (t, q) in enumerate(zip(times, qtys)))


def _volume_quantile_times(n: int, duration_seconds: int, profile: Sequence[float]) -> list[float]:
    minutes = max(1, -(-duration_seconds // 60))
    weights = [max(0.0, float(w)) for w in list(profile)[:minutes]]
    weights += [0.0] * (minutes - len(weights))
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * minutes, float(minutes)
    cumulative, acc = [], 0.0
    for w in weights:
        acc += w / total
        cumulative.append(acc)
    times = []
    for i in range(n):
        target = (i + 0.5) / n if n > 1 else 0.0
        m = next((k for k, c in enumerate(cumulative) if c >= target), minutes - 1)
        before = cumulative[m - 1] if m > 0 else 0.0
        share = weights[m] / total
        within = (target - before) / share if share > 0 else 0.0
        times.append(min(duration_seconds - 1.0, (m + within) * 60.0))
    if n == 1:
        times = [0.0]
    return times


def _jitter(times: list[float], duration_seconds: int, fraction: float, rng: random.Random) -> list[float]:
    """Move each time by up to ``fraction`` of the gap to its neighbours; order is preserved."""
    if fraction <= 0 or len(times) < 2:
        return [round(t, 3) for t in times]
    out = []
    for i, t in enumerate(times):
        lo = times[i - 1] if i > 0 else 0.0
        hi = times[i + 1] if i + 1 < len(times) else float(duration_seconds - 1)
        left, right = (t - lo) * fraction / 2, (hi - t) * fraction / 2
        out.append(round(t + rng.uniform(-left, right), 3))
    return out


def vary_sizes(qty: Decimal, n: int, instrument: Instrument, price: Decimal, variation: Decimal,
               rng: random.Random) -> list[Decimal]:
    """``n`` sizes around ``qty / n`` varied by up to +-``variation``, each tradable, on the step,
    summing exactly to ``qty``. Falls back to equal sizes when variation cannot keep them tradable."""
    equal = split_equal(qty, n, instrument)
    if n < 2 or variation <= 0:
        return equal
    floor = instrument.min_qty_at(price)
    base = qty / n
    # zero-mean deviations scaled into [-1, 1]: sizes stay within +-variation and sum to qty
    raw = [rng.uniform(-1, 1) for _ in range(n)]
    mean = sum(raw) / n
    centred = [r - mean for r in raw]
    peak = max(abs(c) for c in centred) or 1.0
    devs = [Decimal(str(round(c / peak, 6))) for c in centred]
    sizes = [instrument.round_qty_down(base * (1 + variation * d)) for d in devs]
    leftover, i = qty - sum(sizes), 0
    while leftover >= instrument.step_size:  # hand the rounding remainder out a step at a time
        sizes[i % n] += instrument.step_size
        leftover -= instrument.step_size
        i += 1
    sizes[-1] += leftover
    if min(sizes) < floor:
        return equal
    return sizes


def cap_slice_qty(qty: Decimal, interval_volume: Decimal | None, cap: Decimal, instrument: Instrument) -> Decimal:
    """Largest quantity on the step not above ``qty`` nor ``cap * interval_volume``.
    Unknown volume (None) means no cap can be computed: nothing is traded (fail closed)."""
    if interval_volume is None:
        return Decimal(0)
    limit = (cap * interval_volume).quantize(instrument.step_size, rounding=ROUND_DOWN)
    return min(qty, instrument.round_qty_down(limit)) if limit > 0 else Decimal(0)


def taker_allowance(cap: Decimal, traded_volume: Decimal | None, filled_in_interval: Decimal,
                    wanted: Decimal, instrument: Instrument) -> Decimal:
    """How much a slice may take now under the participation cap of the volume the market has
    **actually traded** in its interval so far: ``cap * traded_volume - filled_in_interval``,
    rounded down to the step, at most ``wanted``, never negative. Unknown volume (None): 0
    (fail closed). What is held back carries forward."""
    if traded_volume is None or traded_volume <= 0:
        return Decimal(0)
    room = instrument.round_qty_down(cap * traded_volume - filled_in_interval)
    return min(wanted, room) if room > 0 else Decimal(0)


def check_early_completion(side: Side, current_price: Decimal, arrival_price: Decimal,
                           threshold_bps: Decimal) -> bool:
    """True when the market is better than arrival by at least ``threshold_bps`` for our side
    (lower for a buy, higher for a sell)."""
    if arrival_price <= 0 or threshold_bps <= 0:
        return False
    improvement_bps = -side.sign * (current_price - arrival_price) / arrival_price * BPS
    return improvement_bps >= threshold_bps


EARLY_CAP_MARGIN = Decimal("0.25")  # of the cap's span: room for the traded rate to dip


@dataclass(frozen=True, slots=True)
class EarlyCompletionEnd:
    """Where early completion puts the window end, with the figures behind it.

    ``accelerated`` False: ``end_at`` is the old end and ``reason`` says why nothing sped up.
    ``cap_span_seconds``: the shortest span in which the participation cap absorbs the
    remainder at the recent traded rate (None: rate unknown). ``nominal_span_seconds``:
    ``early_interval_seconds`` times the slices left."""

    end_at: datetime
    accelerated: bool
    nominal_span_seconds: Decimal
    cap_span_seconds: Decimal | None
    reason: str


def early_completion_end(now: datetime, end_at: datetime, remaining_qty: Decimal, slices_left: int,
                         volume_rate_per_second: Decimal | None, params: TwapParams) -> EarlyCompletionEnd:
    """The window end once the price is better than arrival by the threshold.

    The remainder is squeezed into the longer of the nominal span (``early_interval_seconds``
    per slice left) and the cap's span plus a margin (``EARLY_CAP_MARGIN`` of it, at most half
    the headroom before the old end, so any headroom finishes strictly sooner). Never later
    than the old end; kept when the cap leaves no headroom (the remainder needs all the time
    left, or more), when the recent volume is unknown (no cap can be computed: nothing
    trades until it is known, so squeezing would only lose time), or when the slices left
    are already at most ``early_interval_seconds`` apart."""
    left = Decimal(str(max((end_at - now).total_seconds(), 0.0)))
    nominal = Decimal(params.early_interval_seconds * slices_left)
    if volume_rate_per_second is None or volume_rate_per_second <= 0:
        why = ("recent market volume unknown: the participation cap cannot be computed" if volume_rate_per_second
               is None else "no recent market volume: the participation cap allows nothing")
        return EarlyCompletionEnd(end_at, False, nominal, None, f"{why}; window end kept")
    cap_span = remaining_qty / (params.participation_cap * volume_rate_per_second)
    figures = (f"participation cap {params.participation_cap} of the recent {volume_rate_per_second:.8f}/s "
               f"absorbs the remaining {remaining_qty} in {cap_span:.0f} s, {left:.0f} s left, "
               f"nominal span {nominal} s")
    if cap_span >= left:
        return EarlyCompletionEnd(end_at, False, nominal, _seconds(cap_span),
                                  f"no acceleration: {figures}; window end kept")
    span = max(nominal, cap_span + min(cap_span * EARLY_CAP_MARGIN, (left - cap_span) / 2))
    if span >= left:
        return EarlyCompletionEnd(end_at, False, nominal, _seconds(cap_span),
                                  f"no acceleration: slices left already at most "
                                  f"{params.early_interval_seconds} s apart ({figures}); window end kept")
    new_end = now + timedelta(seconds=float(span))
    return EarlyCompletionEnd(new_end, True, nominal, _seconds(cap_span),
                              f"window end {new_end.isoformat()} ({figures}; "
                              f"{'the nominal span' if span == nominal else 'the cap span plus margin'})")


def _seconds(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.001"))

