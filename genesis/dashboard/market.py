"""One execution's fills against its market, for the dashboard's chart
(``GET /v1/executions/{id}/market``).

``market_view`` is pure: it turns an ``ExecutionHistory`` (``genesis.analytics.data``: the
executions row, the fills, the window's 1-minute candles and where they came from) into a
JSON-ready dict. The market VWAP is cumulative from the window's start, candle by candle
(``benchmarks.RunningVwap``: volume-weighted typical price, exact ``Decimal``), so its last
point is the VWAP over the whole window so far, the figure ``genesis report`` benchmarks
against. For an execution still live, only candles whose minute has closed by its latest
event are shown: the market's future is not drawn. Amounts are decimal strings.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from genesis.analytics.data import ExecutionHistory, load_history
from genesis.analytics.sql import readonly_engine
from genesis.domain import benchmarks
from genesis.domain.orders import Side

MINUTE = timedelta(minutes=1)
Q_PRICE = Decimal("0.00000001")
Q_BPS = Decimal("0.0001")


def market_view(h: ExecutionHistory) -> dict[str, Any]:
    """The chart's data for ``h``: candles, the cumulative market VWAP, our fills and our
    running average price, the arrival price and the slippage against the market VWAP."""
    e = h.execution
    live = e["ended_at"] is None
    candles = [c for c in h.candles
               if not live or h.window_end is None or c.open_time + MINUTE <= h.window_end]
    running = benchmarks.RunningVwap()
    vwap_points = []
    for c in candles:
        running = running.add([c])
        if running.value is not None:
            vwap_points.append({"at": _t(c.open_time + MINUTE), "vwap": _q(running.value, Q_PRICE)})
    qty = notional = Decimal(0)
    fills = []
    for f in h.fills:
        qty += f["qty"]
        notional += f["qty"] * f["price"]
        fills.append({"at": _t(f["filled_at"]), "price": str(f["price"]), "qty": str(f["qty"]),
                      "liquidity": f["liquidity"], "slice_index": f["slice_index"],
                      "avg_price": _q(notional / qty, Q_PRICE)})
    avg = notional / qty if qty else None
    vwap = running.value
    return {
        "execution_id": e["execution_id"], "symbol": e["symbol"], "side": e["side"], "state": e["state"],
        "window": {"start": _t(h.window_start), "planned_end": _t(e["end_at"]), "as_of": _t(h.window_end)},
        "market_source": h.market_source,
        "candles": [{"open_time": _t(c.open_time), "high": str(c.high), "low": str(c.low), "close": str(c.close),
                     "volume": str(c.volume)} for c in candles],
        "market_vwap": vwap_points,
        "fills": fills,
        "filled_qty": str(qty),
        "avg_price": _q(avg, Q_PRICE),
        "arrival_price": _q(e["arrival_price"], Q_PRICE),
        "window_market_vwap": _q(vwap, Q_PRICE),
        "slippage_vs_market_vwap_bps": _q(benchmarks.slippage_vs_vwap_bps(Side(e["side"]), avg, vwap), Q_BPS),
    }


def load_market_view(db_path: str | Path | URL, execution_id: str) -> dict[str, Any] | None:
    """``market_view`` of ``execution_id`` read through a read-only connection to the SQLite
    file or PostgreSQL URL ``db_path`` (blocking: call
    it in a worker thread); None when the daemon has no such execution (yet)."""
    engine = readonly_engine(db_path)
    try:
        history = load_history(engine, execution_id)
    except LookupError:
        return None
    finally:
        engine.dispose()
    return market_view(history)


def _q(value: Decimal | None, quantum: Decimal) -> str | None:
    return None if value is None else str(value.quantize(quantum))


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
