"""The one volume-anomaly rule: exactly ``ratio`` times the usual volume, or exactly its
``1/ratio``, is an anomaly; no usual level is never one. The market data service and the
slice sizing (participation cap halved) judge a minute by the same rule."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from genesis.clock import VirtualClock
from genesis.domain import twap
from genesis.domain.volume_anomaly import is_volume_anomaly
from genesis.engine.algos import participation_cap_now
from genesis.engine.market_data import MarketData
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal


@pytest.mark.parametrize("observed, anomalous", [
    (D("50"), True), (D("49.99999999"), False), (D("2"), True), (D("2.00000001"), False),
    (D("10"), False), (D("0"), True), (50.0, True), (2.0, True)])
def test_the_boundary_is_anomalous_on_both_sides(observed, anomalous):
    assert is_volume_anomaly(observed, D("10"), 5.0) is anomalous


@pytest.mark.parametrize("usual", [None, D("0"), D("-1")])
def test_no_usual_level_is_never_an_anomaly(usual):
    assert not is_volume_anomaly(D("1000"), usual, 5.0)


def test_the_twap_module_exposes_the_same_rule():
    assert twap.is_volume_anomaly is is_volume_anomaly


async def _market_at_spike(spike_volume: Decimal):
    """Market data 30 s after a minute that traded ``spike_volume`` against a usual 10."""
    now = T0 + timedelta(days=HISTORY_DAYS, hours=2, seconds=30)
    spike = HISTORY_DAYS * 1440 + 119  # the minute 01:59 of the last day
    btc = series(HISTORY_DAYS + 1, flat("100000"), lambda i: spike_volume if i == spike else D("10"))
    return MarketData(venue(VirtualClock(now), btc), lookback_days=HISTORY_DAYS), now


@pytest.mark.parametrize("spike_volume, anomalous", [(D("50"), True), (D("49"), False), (D("2"), True),
                                                     (D("3"), False)])
async def test_market_data_and_sizing_agree_at_the_boundary(spike_volume, anomalous):
    market, now = await _market_at_spike(spike_volume)
    assert await market.volume_anomaly("BTC/USDT", now, 5.0) is anomalous
    params = twap.TwapParams(anomaly_ratio=5.0)
    await market.window_profile("BTC/USDT", now - timedelta(minutes=1), 1, lead_minutes=0)
    cap, flagged = await participation_cap_now(market, "BTC/USDT", now, params,
                                               lambda at: market.usual_minute_volume("BTC/USDT", at))
    assert flagged is anomalous
    assert cap == (params.participation_cap * params.anomaly_participation_factor if anomalous
                   else params.participation_cap)
