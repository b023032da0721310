"""``genesis watch``: a live terminal view of active and recent executions.

Read from the store over a read-only connection, so it runs next to the daemon (or over
SSH on the box) without touching it. Times are the daemon's (``daemon_now``): the wall clock
for a daemon on wall time, the latest event's time for a simulation on a virtual clock;
elapsed and remaining are measured from it. ``render`` is pure (rows in, a rich renderable
out); ``render_to_string`` draws one frame without a terminal; ``watch`` is the refresh loop.
"""

from __future__ import annotations

import io
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from genesis.analytics.sql import readonly_engine
from genesis.domain.benchmarks import slippage_vs_vwap_bps
from genesis.domain.orders import Side
from genesis.store import tables as t

ACTIVE_STATES = ("pending", "running", "paused")
WALL_CLOCK_TOLERANCE_SECONDS = 5.0
_sleep = time.sleep  # the refresh pause (tests replace it)
STATE_STYLE = {"running": "bold green", "paused": "bold yellow", "pending": "cyan", "completed": "blue",
               "expired": "magenta", "cancelled": "red", "failed": "bold red"}


def _last_slice(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    s = t.execution_slices.c
    row = conn.execute(select(s.reference_price, s.participation, s.slice_index)
                       .where((s.execution_id == execution_id) & s.executed_at.is_not(None))
                       .order_by(s.executed_at.desc(), s.slice_index.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def daemon_now(conn: Connection, wall_now: datetime | None = None) -> datetime | None:
    """The daemon's clock as well as the store tells it: the latest event's time; or the wall
    clock when that event was committed when it happened (a daemon on wall time), so that a
    live view keeps ticking between slices. A simulated clock never matches the commit time."""
    ev_ = t.events.c
    latest = conn.execute(select(ev_.occurred_at, ev_.created_at).order_by(ev_.sequence_number.desc())
                          .limit(1)).first()
    if latest is None:
        return None
    occurred, created = latest
    as_of = conn.scalar(select(func.max(ev_.occurred_at)))
    if abs((created - occurred).total_seconds()) <= WALL_CLOCK_TOLERANCE_SECONDS:
        wall = wall_now or datetime.now(timezone.utc)
        return max(as_of, wall)
    return as_of


def fetch_rows(engine: Engine, execution_id: str | None = None, recent: int = 10,
               wall_now: datetime | None = None) -> list[dict[str, Any]]:
    """Active executions and the ``recent`` last finished ones (or just ``execution_id``),
    with the figures ``render`` shows. Decimals stay Decimals."""
    e = t.executions.c
    with engine.connect() as conn:
        as_of = daemon_now(conn, wall_now)
        if execution_id is not None:
            rows = conn.execute(select(t.executions).where(e.execution_id == execution_id)).mappings().all()
        else:
            active = conn.execute(select(t.executions).where(e.state.in_(ACTIVE_STATES))
                                  .order_by(e.submitted_at)).mappings().all()
            done = conn.execute(select(t.executions).where(e.state.not_in(ACTIVE_STATES))
                                .order_by(e.ended_at.desc()).limit(recent)).mappings().all()
            rows = [*active, *done]
        out = []
        for r in rows:
            last = _last_slice(conn, r["execution_id"])
            vs_vwap = r["slippage_vs_vwap_bps"]
            if vs_vwap is None:  # the engine records it at slice ends; between them, from its VWAP so far
                vs_vwap = slippage_vs_vwap_bps(Side(r["side"]), r["avg_price"], r["market_vwap"])
            out.append({**dict(r), "as_of": as_of, "slippage_vs_vwap_bps": vs_vwap,
                        "market_price": last["reference_price"] if last else None,
                        "participation": last["participation"] if last else None})
        if execution_id is not None and out:
            s = t.execution_slices.c
            out[0]["recent_slices"] = [dict(x) for x in conn.execute(
                select(t.execution_slices).where((s.execution_id == execution_id) & s.executed_at.is_not(None))
                .order_by(s.slice_index.desc()).limit(8)).mappings()][::-1]
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _num(v: Decimal | None, places: int = 2) -> str:
    return "-" if v is None else f"{v:,.{places}f}"


def _times(r: dict[str, Any]) -> tuple[float | None, float | None]:
    start, end_at, as_of = r["started_at"], r["end_at"], r["as_of"]
    if start is None:
        return None, None
    now: datetime | None = r["ended_at"] or as_of
    elapsed = (now - start).total_seconds() if now else None
    remaining = None
    if r["state"] in ACTIVE_STATES and end_at is not None and as_of is not None:
        remaining = max(0.0, (end_at - as_of).total_seconds())
    elif r["state"] not in ACTIVE_STATES:
        remaining = 0.0
    return elapsed, remaining


def _progress(r: dict[str, Any]) -> RenderableType:
    target, filled = float(r["target_qty"]), float(r["filled_qty"])
    pct = filled / target * 100 if target else 0.0
    bar = ProgressBar(total=target or 1.0, completed=filled, width=12,
                      complete_style="green" if r["state"] != "paused" else "yellow")
    grid = Table.grid(padding=(0, 1))
    grid.add_row(bar, Text(f"{pct:5.1f}%"))
    grid.add_row(Text(f"{r['filled_qty'].normalize():f} / {r['target_qty'].normalize():f}"), "")
    return grid


def render(rows: list[dict[str, Any]]) -> RenderableType:
    """One frame: a table of ``rows`` (from ``fetch_rows``), plus the last slices when a single
    execution is followed."""
    as_of = next((r["as_of"] for r in rows if r.get("as_of")), None)
    header = Text.assemble(("genesis watch", "bold"), f"  as of {as_of.isoformat() if as_of else '-'}",
                           f"  {sum(r['state'] in ACTIVE_STATES for r in rows)} active", "  (Ctrl-C to exit)")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    for col in ("execution", "state", "progress", "time", "prices", "bps", "part."):
        table.add_column(col, no_wrap=True)
    for r in rows:
        elapsed, remaining = _times(r)
        part = r["participation"]
        table.add_row(
            Text.assemble((r["execution_id"], "bold"), f"\n{r['side']} {r['symbol']} {r['algo']}"),
            Text(r["state"], style=STATE_STYLE.get(r["state"], "")),
            _progress(r),
            f"el   {_duration(elapsed)}\nleft {_duration(remaining)}",
            f"avg {_num(r['avg_price'])}\nmkt {_num(r['market_price'])}\narr {_num(r['arrival_price'])}",
            f"IS   {_num(r['implementation_shortfall_bps'])}\nVWAP {_num(r['slippage_vs_vwap_bps'])}",
            "-" if part is None else f"{part * 100:.1f}%")
    if not rows:
        table.add_row("(no executions)", *[""] * 6)
    parts: list[RenderableType] = [header, table]
    if len(rows) == 1 and rows[0].get("recent_slices"):
        parts.append(_slices_table(rows[0]["recent_slices"]))
    return Group(*parts)


def _slices_table(slices: list[dict[str, Any]]) -> Table:
    table = Table(title="last slices", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("slice", "status", "scheduled", "executed", "planned", "filled", "price", "part.", "reason"):
        table.add_column(col)
    for s in slices:
        table.add_row(str(s["slice_index"]), s["status"], s["scheduled_at"].strftime("%H:%M:%S"),
                      s["executed_at"].strftime("%H:%M:%S") if s["executed_at"] else "-",
                      f"{s['planned_qty'].normalize():f}", f"{s['filled_qty'].normalize():f}", _num(s["avg_price"]),
                      "-" if s["participation"] is None else f"{s['participation'] * 100:.1f}%",
                      s["risk_reason"] or s["reason"] or "")
    return table


def render_to_string(db_path: str | Path, execution_id: str | None = None, width: int = 120,
                     recent: int = 10) -> str:
    """One frame as plain text (no terminal, no colours): for tests and ``watch --once``."""
    engine = readonly_engine(db_path)
    try:
        rows = fetch_rows(engine, execution_id, recent)
    finally:
        engine.dispose()
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(render(rows))
    return console.file.getvalue()  # type: ignore[attr-defined]


def watch(db_path: str | Path, execution_id: str | None = None, interval_seconds: float = 1.0,
          recent: int = 10, console: Console | None = None) -> None:
    """Redraw every ``interval_seconds`` until Ctrl-C (``KeyboardInterrupt`` propagates; the
    caller turns it into a clean exit). Full screen, keyboard-free: fine over SSH."""
    engine = readonly_engine(db_path)
    try:
        with Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False) as live:
            while True:
                live.update(render(fetch_rows(engine, execution_id, recent)), refresh=True)
                _sleep(interval_seconds)
    finally:
        engine.dispose()
