"""The TCA chart: matplotlib on the Agg backend (no display needed), PNG bytes out.

Top panel: our cumulative filled quantity, the schedule's cumulative planned quantity (both
as a share of the target) and the market's cumulative volume over the window (as a share of
the window's volume: the curve a VWAP follows). Bottom panel: our fill prices (maker and
taker), the market price (candle closes), the market VWAP, the arrival price and our
average price.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from genesis.analytics.data import ExecutionHistory

MINUTE = timedelta(minutes=1)


def _cumulative(points: list[tuple[datetime, Decimal]], total: Decimal,
                start: datetime | None) -> tuple[list[datetime], list[float]]:
    xs: list[datetime] = [start] if start is not None else []
    ys: list[float] = [0.0] if start is not None else []
    running = Decimal(0)
    for at, qty in sorted(points, key=lambda p: p[0]):
        running += qty
        xs.append(at)
        ys.append(float(running / total) if total else 0.0)
    return xs, ys


def _hline(ax: Any, value: str | None, label: str, style: str, color: str) -> None:
    if value is not None:
        ax.axhline(float(value), linestyle=style, color=color, linewidth=1.2, label=f"{label} {value}")


def render_png(h: ExecutionHistory, report: dict[str, Any], dpi: int = 100) -> bytes:
    """The two-panel chart of ``report`` (from ``tca_report(h)``) as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    e = h.execution
    target = e["target_qty"]
    fig = Figure(figsize=(11, 8), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    costs = report["costs_bps"]
    fig.suptitle(f"{e['execution_id']}  {e['algo'].upper()} {e['side']} {e['target_qty']} {e['symbol']}  "
                 f"IS {costs['implementation_shortfall'] or '-'} bps, vs VWAP {costs['slippage_vs_vwap'] or '-'} bps"
                 f"\nmarket data: {h.market_source}", fontsize=11)

    xs, ys = _cumulative([(f["filled_at"], f["qty"]) for f in h.fills], target, h.window_start)
    if h.window_end is not None and xs:
        xs, ys = xs + [h.window_end], ys + [ys[-1]]
    top.step(xs, ys, where="post", color="tab:blue", linewidth=2, label="filled (share of target)")
    xs, ys = _cumulative([(s["scheduled_at"], s["planned_qty"]) for s in h.slices], target, h.window_start)
    top.step(xs, ys, where="post", color="tab:gray", linestyle="--", label="schedule (planned share)")
    if h.candles:
        volume = sum((c.volume for c in h.candles), Decimal(0))
        xs, ys = _cumulative([(min(c.open_time + MINUTE, h.window_end or c.open_time + MINUTE), c.volume)
                              for c in h.candles], volume, h.window_start)
        top.plot(xs, ys, color="tab:orange", label="market volume (share of window)")
    top.set_ylabel("cumulative share")
    top.set_ylim(0, 1.05)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=9)

    for i, c in enumerate(h.candles):
        bottom.fill_between([c.open_time, c.open_time + MINUTE], float(c.low), float(c.high), color="tab:orange",
                            alpha=0.12, linewidth=0, label="market low-high (1 min)" if i == 0 else None)
    if h.candles:
        bottom.plot([c.open_time + MINUTE for c in h.candles], [float(c.close) for c in h.candles],
                    color="tab:orange", linewidth=1, marker=".", label="market (candle close)")
    for liquidity, color in (("maker", "tab:green"), ("taker", "tab:red")):
        fills = [f for f in h.fills if f["liquidity"] == liquidity]
        if fills:
            sizes = [20 + 200 * float(f["qty"] / target) for f in fills]
            bottom.scatter([f["filled_at"] for f in fills], [float(f["price"]) for f in fills], s=sizes,
                           color=color, alpha=0.8, label=f"fills ({liquidity})", zorder=3)
    prices = report["prices"]
    _hline(bottom, prices["market_vwap"], "market VWAP", "-.", "tab:purple")
    _hline(bottom, prices["arrival_price"], "arrival", ":", "black")
    _hline(bottom, prices["avg_price"], "our average", "--", "tab:blue")
    bottom.set_ylabel(f"price ({e['symbol'].split('/')[-1]})")
    bottom.ticklabel_format(axis="y", useOffset=False, style="plain")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="best", fontsize=8)
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    bottom.set_xlabel("time (UTC)")

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
