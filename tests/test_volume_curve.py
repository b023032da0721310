"""Volume curve estimation: known synthetic inputs, an anomalous day, the shipped BTC data,
window shares across bins and midnight, the day cache and the anomaly flag."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from genesis.domain.volume_curve import (FLOOR_OF_UNIFORM, CurveCache, VolumeCurve,
                                         VolumeCurveError, VolumeCurveEstimator, expected_volume,
                                         volume_ratio)
from genesis.domain.volume_anomaly import is_volume_anomaly
from genesis.venue.candles import shipped_candles

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
EPOCH_MS_T0 = int((T0 - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 1000


def _minutes(days: int) -> np.ndarray:
    return EPOCH_MS_T0 + np.arange(days * 1440, dtype=np.int64) * 60_000


def _proportional_days(days: int, bin_minutes: int, offset: float) -> np.ndarray:
    """Every day: each minute of bin k trades (k + offset); day d is scaled by (d + 1)."""
    per_minute = np.repeat(np.arange(1440 // bin_minutes) + offset, bin_minutes)
    return np.concatenate([per_minute * (d + 1) for d in range(days)])


def _noisy_days(days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = 1.0 + 0.6 * np.sin(2 * np.pi * (np.arange(1440) - 600) / 1440)
    return np.concatenate([shape * rng.uniform(0.5, 1.5) * rng.lognormal(0.0, 0.5, 1440)
                           for _ in range(days)])


def _uniform_curve(bins: int = 24) -> VolumeCurve:
    return VolumeCurve.from_weights([1.0] * bins, T0)


# ------------------------------------------------------------------ estimation, known inputs
def test_unsmoothed_curve_is_exactly_the_common_shape_whatever_each_day_total() -> None:
    est = VolumeCurveEstimator(smoothing_bins=1)
    curve = est.estimate(_minutes(20), _proportional_days(20, 5, offset=10), T0 + timedelta(days=20))
    k = np.arange(288)
    expected = (k + 10) / (k + 10).sum()
    assert curve.bin_seconds == 300 and curve.bins == 288 and curve.days_used == 20
    np.testing.assert_allclose(curve.weights, expected, rtol=1e-12)
    assert curve.as_of == T0 + timedelta(days=20)
    # typical daily volume: median of day totals (d + 1) * 1440/288*sum(k+10) over d = 0..19
    assert curve.typical_daily_volume == pytest.approx(10.5 * 5 * float((k + 10).sum()))


def test_hourly_bins_with_volume_proportional_to_k_plus_1() -> None:
    est = VolumeCurveEstimator(bin_seconds=3600, smoothing_bins=1)
    curve = est.estimate(_minutes(20), _proportional_days(20, 60, offset=1), T0 + timedelta(days=20))
    assert curve.bins == 24
    np.testing.assert_allclose(curve.weights, np.arange(1, 25) / 300, rtol=1e-12)


def test_three_bin_circular_smoothing() -> None:
    est = VolumeCurveEstimator(smoothing_bins=3)
    curve = est.estimate(_minutes(20), _proportional_days(20, 5, offset=10), T0 + timedelta(days=20))
    raw = np.arange(288) + 10.0
    w = np.asarray(curve.weights)
    # a centred average of a straight line is the line: interior bins keep their weight
    np.testing.assert_allclose(w[1:-1], raw[1:-1] / raw.sum(), rtol=1e-12)
    # the ends wrap around midnight: bin 0 averages bins 287, 0 and 1
    assert w[0] == pytest.approx((297 + 10 + 11) / 3 / raw.sum(), rel=1e-12)
    assert w[-1] == pytest.approx((296 + 297 + 10) / 3 / raw.sum(), rel=1e-12)
    assert sum(curve.weights) == pytest.approx(1.0, abs=1e-12)


def test_weights_are_floored_at_one_percent_of_uniform() -> None:
    vol = np.tile(np.r_[np.zeros(60), np.ones(1380)], 20)  # nothing trades 00:00-01:00
    curve = VolumeCurveEstimator(smoothing_bins=1).estimate(_minutes(20), vol, T0 + timedelta(days=20))
    w = np.asarray(curve.weights)
    assert (w > 0).all()
    assert w[:12] == pytest.approx(np.full(12, w[0]))
    assert w[0] == pytest.approx(FLOOR_OF_UNIFORM / 288, rel=0.01)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_an_anomalous_day_barely_moves_the_robust_curves() -> None:
    vol = _noisy_days(20, seed=7)
    t = _minutes(20)
    crash = vol.copy()
    day = 12 * 1440
    crash[day + 14 * 60: day + 15 * 60] += 9 * vol[day: day + 1440].sum() / 60  # 10x day, one hour
    as_of = T0 + timedelta(days=20)

    def moved(est: VolumeCurveEstimator) -> tuple[float, float]:
        """(largest relative change of any bin, change of the 14:00-15:00 share)."""
        clean, hit = est.estimate(t, vol, as_of), est.estimate(t, crash, as_of)
        rel = np.abs(np.asarray(hit.weights) - clean.weights) / clean.weights
        hour = (T0 + timedelta(hours=14), T0 + timedelta(hours=15))
        return float(rel.max()), hit.fraction(*hour) - clean.fraction(*hour)

    for robust in (VolumeCurveEstimator(), VolumeCurveEstimator(aggregate="median")):
        max_rel, hour_shift = moved(robust)
        assert max_rel < 0.10 and abs(hour_shift) < 0.005  # the hour's share is ~0.064
    # the same day through a plain mean drags the hour's share up by more than half
    max_rel, hour_shift = moved(VolumeCurveEstimator(aggregate="trimmed_mean", trim_fraction=0.0))
    assert max_rel > 0.5 and hour_shift > 0.03


def test_only_the_full_days_before_as_of_are_used() -> None:
    t, vol = _minutes(23), _noisy_days(23, seed=3)
    as_of = T0 + timedelta(days=21, hours=15)  # look-back: days 1..20
    est = VolumeCurveEstimator()
    base = est.estimate(t, vol, as_of)
    assert base.days_used == 20
    outside = vol.copy()
    outside[:1440] *= 50  # day 0: before the look-back
    outside[21 * 1440:] *= 50  # the as_of day so far, and later
    assert est.estimate(t, outside, as_of) == base
    inside = vol.copy()
    inside[20 * 1440: 20 * 1440 + 60] *= 50
    assert est.estimate(t, inside, as_of) != base
    assert est.estimate(t, vol, T0 + timedelta(days=21)) == VolumeCurve(
        base.bin_seconds, base.weights, 20, T0 + timedelta(days=21), base.typical_daily_volume)


def test_days_with_missing_minutes_are_skipped_and_too_few_days_is_an_error() -> None:
    t, vol = _minutes(20), _noisy_days(20, seed=5)
    keep = np.ones(t.size, dtype=bool)
    keep[3 * 1440 + 100] = False  # one minute missing on day 3
    curve = VolumeCurveEstimator().estimate(t[keep], vol[keep], T0 + timedelta(days=20))
    assert curve.days_used == 19
    tolerant = VolumeCurveEstimator(max_missing_minutes=1)
    assert tolerant.estimate(t[keep], vol[keep], T0 + timedelta(days=20)).days_used == 20
    with pytest.raises(VolumeCurveError, match="only 9 usable full UTC days"):
        VolumeCurveEstimator().estimate(t[: 9 * 1440], vol[: 9 * 1440], T0 + timedelta(days=20))
    with pytest.raises(VolumeCurveError, match="strictly increasing"):
        VolumeCurveEstimator().estimate(t[::-1], vol, T0 + timedelta(days=20))


def test_estimator_rejects_bad_settings() -> None:
    for kwargs in ({"bin_seconds": 90}, {"bin_seconds": 7 * 60}, {"smoothing_bins": 2},
                   {"min_days": 21}, {"aggregate": "mean"}, {"trim_fraction": 0.5}):
        with pytest.raises(VolumeCurveError):
            VolumeCurveEstimator(**kwargs)
    with pytest.raises(VolumeCurveError):
        VolumeCurve(300, (1.0,) * 288, 1, T0)  # does not sum to 1


# ------------------------------------------------------------------ real data
@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_shipped_curve_peaks_at_the_us_open_and_is_lowest_before_europe(symbol: str) -> None:
    series = shipped_candles(symbol)
    curve = VolumeCurveEstimator().estimate(series.open_times_ms(), series.volumes_float(),
                                            datetime(2025, 7, 1, tzinfo=timezone.utc))
    assert curve.days_used == 20
    hourly = np.asarray(curve.weights).reshape(24, 12).sum(axis=1)
    assert int(hourly.argmax()) in (13, 14)
    assert int(hourly.argmin()) in (4, 5)


def test_shipped_btc_us_open_outweighs_early_morning_on_every_out_of_sample_day() -> None:
    series = shipped_candles("BTC/USDT")
    t, v = series.open_times_ms(), series.volumes_float()
    est = VolumeCurveEstimator()
    first = datetime(2025, 6, 9, tzinfo=timezone.utc)
    for d in range(41):
        day = first + timedelta(days=d)
        curve = est.estimate(t, v, day)
        us_open = curve.fraction(day + timedelta(hours=13), day + timedelta(hours=15))
        early = curve.fraction(day + timedelta(hours=4), day + timedelta(hours=6))
        assert us_open > 2 * early, day


# ------------------------------------------------------------------ shares of volume
def test_fraction_handles_partial_bins_midnight_and_whole_days() -> None:
    w = np.arange(1, 25, dtype=float)  # hour h has weight (h + 1) / 300
    curve = VolumeCurve.from_weights(w, T0)
    assert curve.bin_seconds == 3600
    at = T0 + timedelta(days=3)
    assert curve.fraction(at, at + timedelta(days=1)) == pytest.approx(1.0)
    assert curve.fraction(at + timedelta(hours=5), at + timedelta(days=2, hours=5)) == pytest.approx(2.0)
    # 00:30-01:15: half of hour 0 plus a quarter of hour 1
    assert curve.fraction(at + timedelta(minutes=30), at + timedelta(minutes=75)) == \
        pytest.approx((0.5 * 1 + 0.25 * 2) / 300)
    # 23:30-00:30 the next day: half of hour 23 and half of hour 0
    assert curve.fraction(at - timedelta(minutes=30), at + timedelta(minutes=30)) == \
        pytest.approx((0.5 * 24 + 0.5 * 1) / 300)
    assert curve.fraction(at, at) == 0.0
    assert curve.fraction(at + timedelta(hours=1), at) == 0.0


def test_weights_between_matches_fraction_and_sums_to_one() -> None:
    curve = VolumeCurve.from_weights(np.arange(1, 25, dtype=float), T0)
    start, end = T0 + timedelta(hours=22), T0 + timedelta(days=1, hours=2)
    w = curve.weights_between(start, end, 8)  # 30-minute slices across midnight
    assert w.sum() == pytest.approx(1.0)
    total = curve.fraction(start, end)
    for i in range(8):
        a = start + timedelta(minutes=30 * i)
        assert w[i] == pytest.approx(curve.fraction(a, a + timedelta(minutes=30)) / total)
    assert w[0] == pytest.approx(w[1]) and w[4] == pytest.approx(w[5])  # same hour, same share
    assert w[2] == pytest.approx(24 / 23 * w[0])


def test_expected_volume_is_decimal() -> None:
    curve = _uniform_curve()
    got = curve.expected_volume(Decimal("14400"), T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    assert isinstance(got, Decimal)
    # the float share 1/24 is rounded to 15 significant digits before the Decimal product
    assert got == Decimal("14400") * Decimal("0.0416666666666667") == Decimal("600.00000000000048")
    eighth = VolumeCurve.from_weights([1.0] * 32, T0)  # 45-minute bins, 1/32 is exact in binary
    assert eighth.expected_volume(Decimal("3200"), T0, T0 + timedelta(minutes=45)) == Decimal(100)


# ------------------------------------------------------------------ cache
def test_cache_serves_the_same_day_and_recomputes_when_the_day_changes() -> None:
    cache = CurveCache(max_entries=2)
    computed: list[datetime] = []

    def compute_for(at: datetime):
        def compute() -> VolumeCurve:
            computed.append(at)
            return VolumeCurve.from_weights([1.0] * 24, at)
        return compute

    morning, evening = T0 + timedelta(hours=8), T0 + timedelta(hours=23, minutes=59)
    first = cache.get_or_compute("BTC/USDT", morning, compute_for(morning))
    assert cache.get_or_compute("BTC/USDT", evening, compute_for(evening)) is first
    assert cache.get("ETH/USDT", evening) is None
    next_day = T0 + timedelta(days=1)
    assert cache.get("BTC/USDT", next_day) is None  # stale
    second = cache.get_or_compute("BTC/USDT", next_day, compute_for(next_day))
    assert second.day == next_day.date() and computed == [morning, next_day]
    cache.put("ETH/USDT", VolumeCurve.from_weights([1.0] * 24, next_day))
    assert len(cache) == 2 and cache.get("BTC/USDT", morning) is None  # oldest evicted
    with pytest.raises(VolumeCurveError):
        cache.get_or_compute("XRP/USDT", next_day, compute_for(T0))


# ------------------------------------------------------------------ anomaly flag
def test_volume_anomaly_both_directions() -> None:
    curve = _uniform_curve()  # 1440 per day -> 1.0 expected per minute at any time
    at = T0 + timedelta(hours=14, minutes=7)
    usual = expected_volume(curve, 1440, at)
    assert volume_ratio(Decimal("2.5"), curve, Decimal(1440), at) == pytest.approx(2.5)
    assert is_volume_anomaly(Decimal("5.1"), usual, 5.0)
    assert not is_volume_anomaly(Decimal("4.9"), usual, 5.0)
    assert not is_volume_anomaly(Decimal("0.21"), usual, 5.0)
    assert is_volume_anomaly(Decimal("0.19"), usual, 5.0)
    assert is_volume_anomaly(0.0, usual, 5.0)
    # over 15 minutes the usual volume is 15
    assert not is_volume_anomaly(70, expected_volume(curve, 1440, at, interval_seconds=900), 5.0)
    assert is_volume_anomaly(80, expected_volume(curve, 1440, at, interval_seconds=900), 5.0)
    assert not is_volume_anomaly(Decimal("2.9"), usual, 3.0) and is_volume_anomaly(Decimal("3.1"), usual, 3.0)
