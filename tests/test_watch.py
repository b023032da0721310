"""``genesis watch``: one frame rendered to a string without a terminal, the frame follows
the store, and the live loop exits cleanly on Ctrl-C."""

from __future__ import annotations

import io
import re
import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from genesis.analytics import watch
from genesis.analytics.sql import readonly_engine
from genesis.cli import main
from genesis.domain import events as ev
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from tests.analytics_history import make_history_db, s
from tests.migrated import migrated_sqlite


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_history_db(tmp_path_factory)


def test_one_frame_shows_active_and_recent_executions(history_db):
    frame = watch.render_to_string(history_db, width=120)
    lines = frame.splitlines()
    assert "as of 2025-06-11T13:01:01+00:00" in lines[0] and "1 active" in lines[0]
    for execution_id in ("exec-a", "exec-b", "exec-c", "exec-d"):
        assert execution_id in frame
    assert frame.index("exec-d") < frame.index("exec-a")  # active first
    d = _block(lines, "exec-d")
    assert "running" in d and "buy BTC/USDT twap" in d
    assert "━" in d and " 40.0%" in d and "0.4 / 1" in d  # the progress bar, 0.4 of 1 BTC
    assert "el   1:01" in d and "left 3:59" in d  # as of 13:01:01; the window ends 13:05
    assert "avg 101,010.00" in d and "mkt 101,000.00" in d and "arr 101,000.00" in d
    assert "IS   0.99" in d and "VWAP 0.50" in d and "2.0%" in d  # last slice 0.2 / 10
    a = _block(lines, "exec-a")
    assert "completed" in a and "100.0%" in a and "left 0:00" in a and "el   3:06" in a and "IS   6.15" in a


def _block(lines: list[str], execution_id: str) -> str:
    """The lines of one execution's row (3 lines: id, order, prices)."""
    i = next(k for k, line in enumerate(lines) if line.startswith(execution_id))
    return "\n".join(lines[i:i + 3])


def test_following_one_execution_lists_its_last_slices(history_db):
    frame = watch.render_to_string(history_db, "exec-a", width=120)
    assert "exec-a" in frame and "exec-b" not in frame and "last slices" in frame
    assert "price collar: 250 bps from mid" in frame and "denied" in frame
    assert re.search(r"3\s+filled\s+13:03:00\s+13:03:06\s+0.25\s+0.5\s+100,098.00", frame)


def test_render_is_pure_and_shows_a_paused_execution():
    now = datetime(2025, 1, 1, 12, 10, tzinfo=timezone.utc)
    row = {"execution_id": "x1", "state": "paused", "algo": "vwap", "side": "sell", "symbol": "ETH/USDT",
           "target_qty": D("8"), "filled_qty": D("2"), "avg_price": D("2500.5"), "arrival_price": D("2501"),
           "market_price": D("2499"), "implementation_shortfall_bps": D("2.0"), "slippage_vs_vwap_bps": None,
           "participation": D("0.05"), "started_at": datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc),
           "end_at": datetime(2025, 1, 1, 13, 0, tzinfo=timezone.utc), "ended_at": None, "as_of": now}
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(watch.render([row]))
    frame = console.file.getvalue()
    assert "paused" in frame and " 25.0%" in frame and "2 / 8" in frame and "el   10:00" in frame
    assert "left 50:00" in frame and "VWAP -" in frame and "5.0%" in frame
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(watch.render([]))
    assert "(no executions)" in console.file.getvalue()


async def test_the_next_frame_reads_what_the_store_committed_since(history_db, tmp_path):
    path = tmp_path / "copy.db"
    shutil.copy(history_db, path)
    assert " 40.0%" in watch.render_to_string(path, "exec-d")
    engine = async_engine(path, durable=False)
    try:
        async with EventStore(engine) as store:
            coid = "exec-d-2-0"
            await store.append([ev.OrderIntended("exec-d", s(86520), 2, 0, coid, "market", "gtc", D("0.2"), None,
                                                 D("101000"))])
            await store.append([ev.FillRecorded("exec-d", s(86521), coid, 2, "d2", D("0.2"), D("101020"), D("2"),
                                                "USDT", "taker", s(86521))])
    finally:
        await engine.dispose()
    frame = watch.render_to_string(path, "exec-d")
    # as of 13:02:01: 2:01 since the start, 2:59 to the end at 13:05; (0.4 * 101010 + 0.2 * 101020) / 0.6
    assert " 60.0%" in frame and "0.6 / 1" in frame and "el   2:01" in frame and "left 2:59" in frame
    assert "avg 101,013.33" in frame and "IS   1.32" in frame  # 13.333 / 101000 * 10^4


def test_watch_command_exits_cleanly_on_ctrl_c(history_db, monkeypatch):
    frames: list[float] = []

    def interrupt(seconds: float) -> None:
        frames.append(seconds)
        if len(frames) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(watch, "_sleep", interrupt)
    result = CliRunner().invoke(main, ["watch", "--db", str(history_db), "--interval", "0.5"])
    assert result.exit_code == 0 and frames == [0.5, 0.5]
    result = CliRunner().invoke(main, ["watch", "--db", str(history_db), "--interval", "2"])
    assert result.exit_code == 2  # refreshed at least once a second
    result = CliRunner().invoke(main, ["watch", "--db", str(history_db), "exec-d", "--once"])
    assert result.exit_code == 0 and "exec-d" in result.output and "exec-a" not in result.output


async def test_a_daemon_on_wall_time_keeps_the_clock_ticking_between_events(tmp_path):
    # events committed when they happened (occurred_at ~ created_at): the view uses the wall clock
    path = tmp_path / "live.db"
    migrated_sqlite(path)
    started = datetime.now(timezone.utc)
    engine = async_engine(path, durable=False)
    try:
        async with EventStore(engine) as store:
            await store.append([
                ev.ExecutionSubmitted("live", started, "req-live", "BTC/USDT", "buy", D("1"), "twap", 300, 5),
                ev.ExecutionStarted("live", started, D("100000"), started + timedelta(seconds=300), ())])
    finally:
        await engine.dispose()
    ro = readonly_engine(path)
    try:
        rows = watch.fetch_rows(ro, wall_now=started + timedelta(seconds=100))
    finally:
        ro.dispose()
    assert rows[0]["as_of"] == started + timedelta(seconds=100)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(watch.render(rows))
    assert "el   1:40" in console.file.getvalue() and "left 3:20" in console.file.getvalue()
