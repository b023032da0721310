"""Read models for the CLI (blocking; never called on the daemon's event loop)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from genesis.store import tables as t


def _pct(filled: Decimal, target: Decimal) -> float:
    return float(filled / target * 100) if target else 0.0


def execution_status(engine: Engine, execution_id: str | None = None) -> list[dict[str, Any]]:
    """One dict per execution (projection), plus submissions the daemon has not taken yet
    (state ``queued``) or refused (state ``rejected``)."""
    e = t.executions.c
    q = select(t.executions).order_by(e.submitted_at)
    if execution_id:
        q = q.where(e.execution_id == execution_id)
    out: list[dict[str, Any]] = []
    with engine.connect() as conn:
        known = set()
        for r in conn.execute(q).mappings():
            known.add(r["execution_id"])
            live = _live_figures(conn, r["execution_id"], r["end_at"], r["ended_at"])
            out.append({**live, 
                "execution_id": r["execution_id"], "state": r["state"], "algo": r["algo"],
                "symbol": r["symbol"], "side": r["side"], "target_qty": str(r["target_qty"]),
                "filled_qty": str(r["filled_qty"]), "progress_pct": round(_pct(r["filled_qty"], r["target_qty"]), 2),
                "avg_price": _s(r["avg_price"]), "arrival_price": _s(r["arrival_price"]),
                "implementation_shortfall_bps": _s(r["implementation_shortfall_bps"]),
                "slices_done": r["slices_executed"], "slice_count": r["slice_count"],
                "fees_usdt": str(r["fees_usdt"]), "submitted_at": _t(r["submitted_at"]),
                "started_at": _t(r["started_at"]), "end_at": _t(r["end_at"]), "ended_at": _t(r["ended_at"]),
                "paused_seconds": r["paused_seconds"], "completion_reason": r["completion_reason"],
                "remaining_qty": str(r["remaining_qty"]), "urgency": r["urgency"],
                "slippage_vs_vwap_bps": _s(r["slippage_vs_vwap_bps"]),
                "held_since": _t(r["held_since"]), "hold_reason": r["hold_reason"],
                "held_seconds": r["held_seconds"], "account": r["account"] or None,  # None: not recorded
            })
        c = t.commands.c
        q2 = select(t.commands).where(c.kind == "submit").order_by(c.command_id)
        if execution_id:
            q2 = q2.where(c.execution_id == execution_id)
        for r in conn.execute(q2).mappings():
            if r["execution_id"] in known:
                continue
            p = json.loads(r["payload"])
            state = "queued" if r["processed_at"] is None else (r["outcome"] or "processed")
            out.append({
                "execution_id": r["execution_id"], "state": state, "algo": p.get("algo"),
                "symbol": p.get("symbol"), "side": p.get("side"), "target_qty": p.get("qty"),
                "filled_qty": "0", "progress_pct": 0.0, "submitted_at": _t(r["created_at"]),
                "detail": r["detail"], "account": r["account"],  # None: the taking daemon's
            })
    return out


def _live_figures(conn, execution_id: str, end_at, ended_at) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What a trader watches: market price, participation and time remaining, as of the execution's
    latest event (the daemon's clock: virtual on the simulator, wall time live); none remains
    once it has ended (filled early, or cancelled)."""
    s = t.execution_slices.c
    last_slice = conn.execute(
        select(s.reference_price, s.market_vwap).where((s.execution_id == execution_id) & s.executed_at.is_not(None))
        .order_by(s.executed_at.desc()).limit(1)).first()
    parts = [p for (p,) in conn.execute(select(s.participation).where(  # realised; emergency slices left out
        (s.execution_id == execution_id) & s.participation.is_not(None) & ~s.cap_overridden))]
    as_of = conn.scalar(select(func.max(t.events.c.occurred_at)).where(t.events.c.aggregate_id == execution_id))
    remaining = 0.0 if ended_at else max(0.0, (end_at - as_of).total_seconds()) if end_at and as_of else None
    return {
        "market_price": _s(last_slice[0]) if last_slice else None,
        "market_vwap": _s(last_slice[1]) if last_slice else None,
        "participation_avg": _s((sum(parts) / len(parts)).quantize(Decimal("0.000001"))) if parts else None,
        "participation_max": _s(max(parts)) if parts else None,
        "time_remaining_seconds": remaining,
        "as_of": _t(as_of),
    }


_TRADES_BY_ALGO = text(
    "SELECT e.algo, COUNT(*) AS trades, AVG(CAST(s.slippage_bps AS DOUBLE PRECISION)) AS slippage "
    "FROM execution_slices s JOIN executions e ON e.execution_id = s.execution_id "
    "WHERE CAST(s.filled_qty AS DOUBLE PRECISION) > 0 GROUP BY e.algo ORDER BY e.algo")


def router_metrics(engine: Engine) -> dict[str, Any]:
    """Child trade counts and average slippage (bps) per algorithm: the ``router_metrics``
    view's buckets (``twap``, ``single``, ``vwap``; 0 when none traded), then, by the view's
    definition, one for every other algorithm that traded (POV, IS, and any added later:
    the view's columns are fixed in SQL)."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM router_metrics")).mappings().one()
        others = conn.execute(_TRADES_BY_ALGO).all()
    out = {k: (row[k] if row[k] is not None else (0 if k.endswith("count") else None)) for k in row.keys()}
    for algo, trades, slippage in others:
        if f"{algo}_trades_count" not in out:
            out[f"{algo}_trades_count"], out[f"{algo}_avg_slippage_bps"] = trades, slippage
    return out


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _t(v) -> str | None:  # type: ignore[no-untyped-def]
    return None if v is None else v.isoformat()
