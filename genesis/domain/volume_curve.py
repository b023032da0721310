"""Intraday volume curves: what share of a UTC day's volume trades in any time window.

``VolumeCurveEstimator`` turns the last ``history_days`` full UTC days of 1-minute volumes
(float arrays, statistics only) into a ``VolumeCurve``: ``bin_seconds`` bins (default 300 s,
288 per day) whose weights are positive and sum to 1. Robustness to anomalous days comes
from normalising each day by its own total and then taking, per bin, a trimmed mean across
days (default: the 4 highest and 4 lowest of 20 shares dropped) or the median; a circular
centred moving average (default 5 bins) then smooths bin-to-bin noise. Within a bin volume
is uniform, so a window covering part of a bin gets that part of its weight. See docs/vwap.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Callable, Literal

import numpy as np

from genesis.clock import utc

DAY_SECONDS = 86_400
MINUTE_MS = 60_000
DAY_MS, MINUTES_PER_DAY = DAY_SECONDS * 1000, 1440
DEFAULT_BIN_SECONDS = 300
DEFAULT_HISTORY_DAYS = 20
DEFAULT_SMOOTHING_BINS = 5  # 25 minutes: a centred average over +-2 bins
DEFAULT_TRIM_FRACTION = 0.2  # per bin, drop the 4 lowest and 4 highest of 20 day shares
FLOOR_OF_UNIFORM = 0.01  # no bin's weight falls below 1% of the uniform weight 1/bins
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_WEIGHT_SUM_TOLERANCE = 1e-9


class VolumeCurveError(ValueError):
    """Not enough usable history to estimate a curve, or malformed input."""


def day_start(t: datetime) -> datetime:
    """UTC midnight at or before ``t``."""
    return datetime.combine(utc(t).date(), time(0), tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class VolumeCurve:
    """Expected intraday distribution of volume, valid for the UTC day of ``as_of``.

    ``weights[k]`` is the expected share of a day's volume in ``[k, k+1) * bin_seconds``
    after midnight UTC. ``typical_daily_volume`` is the median daily total (base asset) of
    the days used, 0.0 when unknown (curves built by hand).
    """

    bin_seconds: int
    weights: tuple[float, ...]
    days_used: int
    as_of: datetime
    typical_daily_volume: float = 0.0
    _cum: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.bin_seconds <= 0 or DAY_SECONDS % self.bin_seconds:
            raise VolumeCurveError(f"bin_seconds {self.bin_seconds} must divide a day (86400 s)")
        if len(self.weights) != DAY_SECONDS // self.bin_seconds:
            raise VolumeCurveError(f"{len(self.weights)} weights for {self.bin_seconds} s bins; "
                                   f"expected {DAY_SECONDS // self.bin_seconds}")
        w = np.asarray(self.weights, dtype=np.float64)
        if not (w > 0).all() or abs(w.sum() - 1.0) > _WEIGHT_SUM_TOLERANCE:
            raise VolumeCurveError("weights must all be > 0 and sum to 1")
        cum = np.concatenate(([0.0], np.cumsum(w)))
        cum[-1] = 1.0
        cum.setflags(write=False)
        object.__setattr__(self, "as_of", utc(self.as_of))
        object.__setattr__(self, "_cum", cum)

    @classmethod
    def from_weights(cls, raw: "np.ndarray | list[float]", as_of: datetime,
                     days_used: int = 0, typical_daily_volume: float = 0.0) -> VolumeCurve:
        """A curve from any positive per-bin values (normalised here); bin size from their count."""
        arr = np.asarray(raw, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0 or DAY_SECONDS % arr.size:
            raise VolumeCurveError(f"{arr.size} bins do not divide a day")
        return cls(DAY_SECONDS // arr.size, tuple((arr / arr.sum()).tolist()), days_used,
                   as_of, typical_daily_volume)

    @property
    def day(self) -> date:
        """The UTC day this curve is for (it only uses days before it)."""
        return self.as_of.date()

    @property
    def bins(self) -> int:
        return len(self.weights)

    # ------------------------------------------------------------------ shares of volume
    def fraction(self, start: datetime, end: datetime) -> float:
        """Expected share of one day's volume in ``[start, end)``.

        Crosses midnight naturally; a window of several days counts each whole day as 1.0.
        Returns 0.0 for an empty or reversed window.
        """
        start, end = utc(start), utc(end)
        if end <= start:
            return 0.0
        d0 = day_start(start)
        days = (day_start(end) - d0).days
        return days + self._cum_at((end - day_start(end)).total_seconds()) - \
            self._cum_at((start - d0).total_seconds())

    def weights_between(self, start: datetime, end: datetime, n_slices: int) -> np.ndarray:
        """Per-slice shares of the window's expected volume for ``n_slices`` equal slices.

        Float64 array of length ``n_slices`` summing to 1 (slice ``i`` covers
        ``[start + i*d, start + (i+1)*d)`` with ``d = (end - start) / n_slices``).
        """
        cum = self.cumulative_between(start, end, n_slices)
        return np.diff(cum) / cum[-1]

    def cumulative_between(self, start: datetime, end: datetime, n_slices: int) -> np.ndarray:
        """Cumulative expected day-shares at the ``n_slices + 1`` slice boundaries, from 0.0."""
        start, end = utc(start), utc(end)
        if n_slices < 1 or end <= start:
            raise ValueError("need n_slices >= 1 and end > start")
        d0 = day_start(start)
        offset = (start - d0).total_seconds()
        span = (end - start).total_seconds()
        t = offset + span * (np.arange(n_slices + 1, dtype=np.float64) / n_slices)
        days = np.floor(t / DAY_SECONDS)
        sod = t - days * DAY_SECONDS
        knots = np.arange(self.bins + 1, dtype=np.float64) * self.bin_seconds
        cum = days + np.interp(sod, knots, self._cum)
        return cum - cum[0]

    def expected_volume(self, daily_volume: Decimal, start: datetime, end: datetime) -> Decimal:
        """Expected market volume in ``[start, end)`` for a day of ``daily_volume`` (base asset).

        The float share goes through ``float_to_decimal`` (15 significant digits).
        """
        return daily_volume * float_to_decimal(self.fraction(start, end))

    def _cum_at(self, seconds_of_day: float) -> float:
        k = min(int(seconds_of_day // self.bin_seconds), self.bins - 1)
        part = (seconds_of_day - k * self.bin_seconds) / self.bin_seconds
        return float(self._cum[k] + (self._cum[k + 1] - self._cum[k]) * part)


def float_to_decimal(value: float) -> Decimal:
    """A float statistic (share, ratio, volume forecast) as a Decimal rounded to 15
    significant digits, the precision a float64 guarantees: the explicit float -> Decimal step."""
    return Decimal(f"{float(value):.15g}")


@dataclass(frozen=True, slots=True)
class VolumeCurveEstimator:
    """Estimates a ``VolumeCurve`` from 1-minute volumes (see the module docstring).

    ``aggregate``: ``trimmed_mean`` (default; drop ``int(days * trim_fraction)`` days at
    each end per bin) or ``median``. ``smoothing_bins``: odd width of the circular moving average
    (1 = none). A day is used only when at most ``max_missing_minutes`` of its minutes are
    absent (absent minutes count as zero volume) and its total volume is positive.
    """

    history_days: int = DEFAULT_HISTORY_DAYS
    bin_seconds: int = DEFAULT_BIN_SECONDS
    smoothing_bins: int = DEFAULT_SMOOTHING_BINS
    aggregate: Literal["median", "trimmed_mean"] = "trimmed_mean"
    trim_fraction: float = DEFAULT_TRIM_FRACTION
    min_days: int = 10
    max_missing_minutes: int = 0

    def __post_init__(self) -> None:
        if self.bin_seconds % 60 or DAY_SECONDS % self.bin_seconds:
            raise VolumeCurveError("bin_seconds must be whole minutes dividing a day")
        if self.smoothing_bins < 1 or self.smoothing_bins % 2 == 0:
            raise VolumeCurveError("smoothing_bins must be odd and >= 1")
        if self.aggregate not in ("median", "trimmed_mean") or not 0 <= self.trim_fraction < 0.5:
            raise VolumeCurveError("aggregate: median or trimmed_mean with 0 <= trim_fraction < 0.5")
        if not 1 <= self.min_days <= self.history_days:
            raise VolumeCurveError("need 1 <= min_days <= history_days")

    def estimate(self, open_times_ms: np.ndarray, volumes: np.ndarray, as_of: datetime) -> VolumeCurve:
        """Curve for the UTC day of ``as_of`` from the ``history_days`` full days before it.

        ``open_times_ms`` (ascending epoch ms, minute-aligned) and ``volumes`` are parallel
        arrays; rows outside the look-back are ignored. Raises ``VolumeCurveError`` when
        fewer than ``min_days`` days are usable.
        """
        day_totals, shares = self.daily_shares(open_times_ms, volumes, as_of)
        weights = aggregate_shares(shares, self.aggregate, self.trim_fraction)
        weights = finish_weights(weights, self.smoothing_bins)
        return VolumeCurve(self.bin_seconds, tuple(weights.tolist()), len(day_totals), as_of,
                           float(np.median(day_totals)))

    def daily_shares(self, open_times_ms: np.ndarray, volumes: np.ndarray,
                     as_of: datetime) -> tuple[np.ndarray, np.ndarray]:
        """(totals per usable day, days x bins matrix of each day's volume share per bin)."""
        t = np.asarray(open_times_ms, dtype=np.int64)
        v = np.asarray(volumes, dtype=np.float64)
        if t.shape != v.shape or t.ndim != 1:
            raise VolumeCurveError("open_times_ms and volumes must be 1-D and of equal length")
        hi_ms = (day_start(as_of) - _EPOCH) // timedelta(milliseconds=1)
        lo_ms = hi_ms - self.history_days * DAY_MS
        lo, hi = np.searchsorted(t, lo_ms), np.searchsorted(t, hi_ms)
        t, v = t[lo:hi], v[lo:hi]
        if t.size > 1 and not (np.diff(t) > 0).all():
            raise VolumeCurveError("open_times_ms must be strictly increasing")
        idx = (t - lo_ms) // MINUTE_MS
        minutes = np.zeros(self.history_days * MINUTES_PER_DAY)
        present = np.zeros(self.history_days * MINUTES_PER_DAY, dtype=bool)
        minutes[idx], present[idx] = v, True
        minutes = minutes.reshape(self.history_days, MINUTES_PER_DAY)
        missing = MINUTES_PER_DAY - present.reshape(self.history_days, MINUTES_PER_DAY).sum(axis=1)
        totals = minutes.sum(axis=1)
        usable = (missing <= self.max_missing_minutes) & (totals > 0)
        if int(usable.sum()) < self.min_days:
            raise VolumeCurveError(
                f"only {int(usable.sum())} usable full UTC days of 1-minute candles in the "
                f"{self.history_days} days before {day_start(as_of).date()}; need {self.min_days}")
        per_bin = self.bin_seconds // 60
        binned = minutes[usable].reshape(-1, MINUTES_PER_DAY // per_bin, per_bin).sum(axis=2)
        return totals[usable], binned / totals[usable][:, None]


def aggregate_shares(shares: np.ndarray, how: str = "trimmed_mean",
                     trim_fraction: float = DEFAULT_TRIM_FRACTION) -> np.ndarray:
    """Per-bin robust centre across days (rows) of per-day share vectors."""
    if how == "median":
        return np.median(shares, axis=0)
    if how == "trimmed_mean":
        k = int(shares.shape[0] * trim_fraction)
        ordered = np.sort(shares, axis=0)
        return ordered[k: shares.shape[0] - k].mean(axis=0)
    raise VolumeCurveError(f"unknown aggregate {how!r}")


def finish_weights(raw: np.ndarray, smoothing_bins: int = DEFAULT_SMOOTHING_BINS) -> np.ndarray:
    """Circular centred moving average, floor at 1% of uniform, renormalise to sum 1."""
    w = np.asarray(raw, dtype=np.float64)
    if smoothing_bins > 1:
        h = smoothing_bins // 2
        padded = np.concatenate((w[-h:], w, w[:h]))
        w = np.convolve(padded, np.full(smoothing_bins, 1.0 / smoothing_bins), mode="valid")
    w = w / w.sum()
    w = np.maximum(w, FLOOR_OF_UNIFORM / w.size)
    return w / w.sum()


class CurveCache:
    """Curves keyed by (symbol, UTC day): a curve is stale once the clock's day moves on.

    One cache per estimator configuration. Bounded: the oldest entries go first.
    """

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._entries: dict[tuple[str, date], VolumeCurve] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, symbol: str, as_of: datetime) -> VolumeCurve | None:
        """The cached curve for ``as_of``'s UTC day, or None (missing or stale)."""
        return self._entries.get((symbol, utc(as_of).date()))

    def put(self, symbol: str, curve: VolumeCurve) -> None:
        key = (symbol, curve.day)
        self._entries.pop(key, None)
        self._entries[key] = curve
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]

    def get_or_compute(self, symbol: str, as_of: datetime,
                       compute: Callable[[], VolumeCurve]) -> VolumeCurve:
        """The cached curve for the day, else ``compute()`` (which must be for that day)."""
        curve = self.get(symbol, as_of)
        if curve is None:
            curve = compute()
            if curve.day != utc(as_of).date():
                raise VolumeCurveError(f"computed curve is for {curve.day}, not {utc(as_of).date()}")
            self.put(symbol, curve)
        return curve


def expected_volume(curve: VolumeCurve, typical_daily_volume: Decimal | float, at: datetime,
                    interval_seconds: int = 60) -> float:
    """The volume the curve expects in ``[at, at + interval)``: the usual level that
    ``volume_anomaly.is_volume_anomaly`` judges an observed volume against."""
    expected = float(typical_daily_volume) * curve.fraction(at, at + timedelta(seconds=interval_seconds))
    if expected <= 0:
        raise VolumeCurveError("typical_daily_volume must be > 0")
    return expected


def volume_ratio(observed_volume: Decimal | float, curve: VolumeCurve,
                 typical_daily_volume: Decimal | float, at: datetime,
                 interval_seconds: int = 60) -> float:
    """Observed volume in ``[at, at + interval)`` over what the curve expects there."""
    return float(observed_volume) / expected_volume(curve, typical_daily_volume, at, interval_seconds)
