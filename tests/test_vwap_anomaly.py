"""VWAP applies the volume-anomaly rule TWAP uses: after an anomalous minute its participation
cap is multiplied by ``twap.anomaly_participation_factor``, and the slice records it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from genesis.config import parse_config
from genesis.domain import events as ev
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal
START = T0 + timedelta(days=HISTORY_DAYS, hours=1)
FIRST = HISTORY_DAYS * 1440 + 60  # the window's first minute, as a candle index


@pytest.mark.parametrize("window_btc_per_minute, anomaly, cap", [("10", False, D("0.10")),
                                                                   ("100", True, D("0.05"))])
async def test_vwap_halves_its_cap_after_an_anomalous_minute_and_records_it(db_path, window_btc_per_minute,
                                                                          anomaly, cap):
    # history: 10 BTC every minute (the curve expects 10 per minute); today, from the minute
    # before the window, 10 (usual) or 100 (10x: anomalous)
    btc = series(HISTORY_DAYS + 1, flat("100000"),
                 lambda i: D(window_btc_per_minute) if i >= FIRST - 1 else D("10"))
    config = parse_config({"router": {"maker_first": False}, "twap": {"volume_lookback_days": HISTORY_DAYS}})
    async with harness(db_path, config, start=START, venue=lambda c: venue(c, btc)) as h:
        execution_id = await h.supervisor.submit(h.request(algo="vwap", qty="20", duration="5m"))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
    slices = [e for e in history if isinstance(e, ev.VwapSliceExecuted)]
    assert len(slices) == 5 and all(s.forecast_volume is not None for s in slices)
    assert [s.volume_anomaly for s in slices] == [anomaly] * 5
    # the 20 BTC wanted is far above the cap: every slice is capped at exactly cap x expected volume
    assert all(s.cap_bound for s in slices)
    # (the last one's taker goes just before the window ends: the cap of what traded by then)
    capped = [(cap * s.forecast_volume).quantize(D("0.00001"), rounding="ROUND_DOWN") for s in slices]
    assert [s.filled_qty for s in slices[:-1]] == capped[:-1]
    assert capped[-1] * D("0.95") < slices[-1].filled_qty <= capped[-1]
