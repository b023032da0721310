"""The market VWAP of an execution's window so far, kept incrementally, and our average
against it: the benchmark every slice close and the completion carry."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Awaitable, Callable, Sequence

from genesis.clock import Clock
from genesis.domain import events as ev
from genesis.domain.benchmarks import RunningVwap, slippage_vs_vwap_bps
from genesis.domain.execution import Execution
from genesis.venue.base import Candle

PRICE_QUANTUM = Decimal("0.00000001")
CandleRead = Callable[[str, datetime, datetime], Awaitable[list[Candle]]]


class WindowBenchmark:
    """Reads only the candles closed since its last call (``candles``: a retried venue read)."""

    def __init__(self, candles: CandleRead, clock: Clock):
        self._candles, self._clock = candles, clock
        self._vwap: tuple[datetime, RunningVwap] | None = None  # read up to, and the running VWAP

    async def __call__(self, agg: Execution, extra_fills: Sequence[ev.FillRecorded] = ()
                       ) -> tuple[Decimal | None, Decimal | None]:
        """Market VWAP over the window so far and our average against it (bps, + = worse);
        ``extra_fills``: fills about to be appended, counted in our average."""
        if agg.started_at is None:
            return None, None
        now = self._clock.now()
        since, acc = self._vwap or (agg.started_at, RunningVwap())
        if now > since:
            bars = await self._candles(agg.symbol, since, now)
            if bars:
                acc = acc.add(bars)
                since = bars[-1].open_time + timedelta(minutes=1)
            self._vwap = (since, acc)
        vwap = acc.value
        if vwap is None:
            return None, None
        ours = agg.fills.plus_all(extra_fills)
        return vwap.quantize(PRICE_QUANTUM), slippage_vs_vwap_bps(agg.side, ours.avg_price, vwap)
