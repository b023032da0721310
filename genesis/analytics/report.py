"""Transaction cost analysis (TCA) of one execution, in exact ``Decimal`` arithmetic.

Definitions (bps signed, positive = worse for us, like ``genesis.domain.benchmarks``):

* implementation shortfall: average fill price against the arrival (decision-time mid).
* market VWAP / TWAP benchmark: volume-weighted / plain mean typical price ``(H+L+C)/3`` of
  the window's candles (see ``genesis.analytics.data`` for where they come from); without
  candles the VWAP is the engine's own (``executions.market_vwap``) and there is no TWAP.
* timing vs execution cost: the shortfall split into ``timing_bps`` (the market price of
  the minutes we traded in, weighted by our fills, against arrival: what the market did while
  we worked) and ``execution_cost_bps`` (our prices against those minutes' market prices:
  spread, impact and fees-free execution skill); the two add up to the shortfall. A minute's
  market price is its candle's typical price; for the minute the execution started in, when
  it began before the start (its candle also holds trading from before the arrival, and is not
  one of the window's), it is the arrival price itself: no move can be measured inside that
  minute, so a fill in it has no timing cost and its whole difference from arrival is
  execution cost. The split is missing only when a later minute we traded in has no candle.
* tracking errors: at the end of each window minute, the mean absolute difference between
  our cumulative filled share and (a) the schedule's planned share of the target, (b) the
  market's cumulative volume share of the window (the curve a perfect VWAP would follow).
* theoretical best execution for the window: ``best_price`` is the lowest low (buy) or the
  highest high (sell) of the window, an unreachable bound; ``capped_best_price`` is the
  average price of buying (selling) the filled quantity in the cheapest (dearest) minutes
  first, at most ``participation_cap`` of each minute's volume, each at its typical price.
  When the capped volume of the whole window is less than the filled quantity,
  ``capped_best_feasible`` is false and the price is over the quantity that was available.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from genesis.analytics.data import ExecutionHistory
from genesis.domain import benchmarks
from genesis.domain import events as ev
from genesis.domain.orders import Side
from genesis.domain.units import BPS
from genesis.venue.base import Candle

ZERO = Decimal(0)
MINUTE = timedelta(minutes=1)
Q_PRICE, Q_BPS, Q_RATIO = Decimal("0.00000001"), Decimal("0.0001"), Decimal("0.000001")


def _q(v: Decimal | None, quantum: Decimal) -> str | None:
    return None if v is None else format(v.quantize(quantum), "f")


def _t(v: datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def _div(a: Decimal, b: Decimal) -> Decimal | None:
    return a / b if b else None


def typical(c: Candle) -> Decimal:
    return (c.high + c.low + c.close) / 3


def bps(side: Side, price: Decimal | None, benchmark: Decimal | None, base: Decimal | None = None) -> Decimal | None:
    """``sign * (price - benchmark) / base * 10,000`` (``base`` defaults to the benchmark)."""
    base = benchmark if base is None else base
    if price is None or benchmark is None or not base:
        return None
    return side.sign * (price - benchmark) / base * BPS


def best_execution(side: Side, candles: list[Candle], qty: Decimal, cap: Decimal) -> dict[str, Any]:
    """The theoretical best for ``qty`` over ``candles`` (see the module docstring)."""
    if not candles or qty <= 0:
        return {"best_price": None, "capped_best_price": None, "capped_best_qty": None, "capped_best_feasible": None}
    best = min(c.low for c in candles) if side is Side.BUY else max(c.high for c in candles)
    # cheapest minutes first for a buy (dearest for a sell); ties in time order
    ranked = sorted(enumerate(candles), key=lambda ic: (side.sign * typical(ic[1]), ic[0]))
    left, notional = qty, ZERO
    for _, c in ranked:
        take = min(left, cap * c.volume)
        notional += take * typical(c)
        left -= take
        if left <= 0:
            break
    done = qty - left
    return {"best_price": best, "capped_best_price": _div(notional, done), "capped_best_qty": done,
            "capped_best_feasible": left <= 0}


def _mean(xs: list[Decimal]) -> Decimal | None:
    return sum(xs, ZERO) / len(xs) if xs else None


def tracking(h: ExecutionHistory) -> tuple[Decimal | None, Decimal | None]:
    """(schedule tracking error, volume-curve tracking error); None without candles/fills."""
    if not h.candles or h.window_end is None:
        return None, None
    target = h.execution["target_qty"]
    filled_total = sum((f["qty"] for f in h.fills), ZERO)
    volume_total = sum((c.volume for c in h.candles), ZERO)
    vs_plan, vs_curve, cum_volume = [], [], ZERO
    for c in h.candles:
        at = min(c.open_time + MINUTE, h.window_end)
        cum_volume += c.volume
        filled = sum((f["qty"] for f in h.fills if f["filled_at"] <= at), ZERO)
        planned = sum((s["planned_qty"] for s in h.slices if s["scheduled_at"] <= at), ZERO)
        if target:
            vs_plan.append(abs(filled - planned) / target)
        if filled_total and volume_total:
            vs_curve.append(abs(filled / filled_total - cum_volume / volume_total))
    return _mean(vs_plan), _mean(vs_curve)


def timing_split(h: ExecutionHistory, side: Side, avg: Decimal | None,
                 arrival: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """(timing bps, execution cost bps), both on the arrival price (see the module docstring);
    None without fills or arrival, or when a fill's minute has no market price."""
    if arrival is None:
        return None, None
    price_of_minute = {c.open_time: typical(c) for c in h.candles}
    if h.window_start is not None:
        start_minute = h.window_start.replace(second=0, microsecond=0)
        price_of_minute.setdefault(start_minute, arrival)  # began before the start: not a window candle
    qty, weighted = ZERO, ZERO
    for f in h.fills:
        price = price_of_minute.get(f["filled_at"].replace(second=0, microsecond=0))
        if price is None:
            return None, None
        qty += f["qty"]
        weighted += f["qty"] * price
    if not qty:
        return None, None
    timed = weighted / qty
    return bps(side, timed, arrival), bps(side, avg, timed, base=arrival)


def tca_report(h: ExecutionHistory, participation_cap: Decimal = Decimal("0.10")) -> dict[str, Any]:
    """The TCA report as a JSON-ready dict (exact decimals as strings)."""
    e, side = h.execution, Side(h.execution["side"])
    filled = sum((f["qty"] for f in h.fills), ZERO)
    notional = sum((f["qty"] * f["price"] for f in h.fills), ZERO)
    maker = sum((f["qty"] for f in h.fills if f["liquidity"] == "maker"), ZERO)
    avg, arrival = _div(notional, filled), e["arrival_price"]
    if h.candles:
        vwap, vwap_source = benchmarks.market_vwap(h.candles), h.market_source
    else:
        vwap, vwap_source = e["market_vwap"], ("engine" if e["market_vwap"] is not None else None)
    twap = benchmarks.twap_benchmark(h.candles)
    volume = sum((c.volume for c in h.candles), ZERO) if h.candles else None
    closed = [s for s in h.slices if s["executed_at"] is not None]
    traded = [s for s in closed if s["filled_qty"] > 0]
    # emergency slices override the cap by design (cap_overridden): not part of its statistics
    parts = [s["participation"] for s in closed if s["participation"] is not None and not s["cap_overridden"]]
    traded_parts = [s["participation"] for s in traded if s["participation"] is not None and not s["cap_overridden"]]
    delays = [Decimal(str((s["executed_at"] - s["scheduled_at"]).total_seconds())) for s in closed]
    vs_plan, vs_curve = tracking(h)
    timing, execution_cost = timing_split(h, side, avg, arrival)
    best = best_execution(side, h.candles, filled, participation_cap)
    end = h.window_end
    statuses = [s["status"] for s in h.slices]
    count = statuses.count
    return {
        "execution_id": e["execution_id"], "algo": e["algo"], "execution_style": e["execution_style"],
        "symbol": e["symbol"], "side": side.value, "state": e["state"], "urgency": e["urgency"],
        "completion_reason": e["completion_reason"],
        "window": {
            "start": _t(h.window_start), "end": _t(end), "planned_end": _t(e["end_at"]),
            "elapsed_seconds": (end - h.window_start).total_seconds() if end and h.window_start else None,
            "paused_seconds": e["paused_seconds"],
            # slicing held by the engine (stream down, order outcome unknown, ...), not by the trader
            "held_seconds": e.get("held_seconds"),
        },
        "market_data": {"source": h.market_source, "candles": len(h.candles),
                        "window_volume": _q(volume, Q_PRICE)},
        "quantities": {
            "target_qty": str(e["target_qty"]), "filled_qty": str(filled),
            "remaining_qty": str(e["target_qty"] - filled),
            "fill_ratio": _q(_div(filled, e["target_qty"]), Q_RATIO),
            "filled_notional_usdt": _q(notional, Q_PRICE),
        },
        "prices": {
            "arrival_price": _q(arrival, Q_PRICE), "avg_price": _q(avg, Q_PRICE),
            "market_vwap": _q(vwap, Q_PRICE), "market_vwap_source": vwap_source,
            "twap_benchmark": _q(twap, Q_PRICE),
            "engine_market_vwap": _q(e["market_vwap"], Q_PRICE),  # what the engine measured live
        },
        "costs_bps": {
            "implementation_shortfall": _q(bps(side, avg, arrival), Q_BPS),
            "slippage_vs_vwap": _q(bps(side, avg, vwap), Q_BPS),
            "slippage_vs_twap": _q(bps(side, avg, twap), Q_BPS),
            "timing": _q(timing, Q_BPS), "execution_cost": _q(execution_cost, Q_BPS),
            "fees": _q(_div(sum((f["fee"] for f in h.fills), ZERO) * BPS, notional), Q_BPS),
        },
        "fees_usdt": str(sum((f["fee"] for f in h.fills), ZERO)),
        "liquidity": {"maker_qty": str(maker), "taker_qty": str(filled - maker),
                      "maker_ratio": _q(_div(maker, filled), Q_RATIO)},
        "participation": {
            "max": _q(max(parts) if parts else None, Q_RATIO),
            "avg": _q(sum(traded_parts, ZERO) / len(traded_parts) if traded_parts else None, Q_RATIO),
            "window": _q(_div(filled, volume) if volume else None, Q_RATIO),
            "cap": str(participation_cap),
            "cap_overridden_slices": sum(1 for s in closed if s["cap_overridden"]),
        },
        "slices": {
            "planned": len(h.slices), "executed": len(traded), "denied": count("denied"),
            "skipped": count("skipped"), "unfilled": count("unfilled"), "failed": count("failed"),
            "open": count("planned") + count("sent"),
            "not_needed": count(ev.SLICE_NOT_NEEDED), "expired": count(ev.SLICE_EXPIRED),
        },
        "timing": {
            "avg_delay_seconds": _q(sum(delays, ZERO) / len(delays) if delays else None, Decimal("0.001")),
            "max_delay_seconds": _q(max(delays) if delays else None, Decimal("0.001")),
            "schedule_tracking_error": _q(vs_plan, Q_RATIO),
            "volume_curve_tracking_error": _q(vs_curve, Q_RATIO),
        },
        "best_execution": {
            "best_price": _q(best["best_price"], Q_PRICE),
            "avg_vs_best_bps": _q(bps(side, avg, best["best_price"]), Q_BPS),
            "capped_best_price": _q(best["capped_best_price"], Q_PRICE),
            "capped_best_qty": None if best["capped_best_qty"] is None else str(best["capped_best_qty"]),
            "capped_best_feasible": best["capped_best_feasible"],
            "avg_vs_capped_best_bps": _q(bps(side, avg, best["capped_best_price"]), Q_BPS),
            "participation_cap": str(participation_cap),
        },
    }
