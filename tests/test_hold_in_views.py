"""``held_seconds`` (slicing held, not by a user: migration 0009) in the views that show an
execution's timing (migration 0012): ``execution_analysis`` and ``twap_executions``, read
through ``genesis sql`` on SQLite and PostgreSQL; the downgrade restores the old views with
the same figures."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from genesis.cli import main
from genesis.domain import events as ev
from genesis.store import migrate
from tests.analytics_history import BTC, _fill, _order, _slice, _started, build, exec_a, s

HELD = "exec-h"


def exec_held() -> list[list[ev.Event]]:
    """A TWAP buy of 0.1 BTC at T+3h whose slicing was held 12.5 s (market data down) before
    its one slice filled."""
    h, t0 = HELD, 10800
    coid, order = _order(h, s(t0 + 20), 0, 0, "0.1", "100000")
    return [
        [ev.ExecutionSubmitted(h, s(t0), "req-h", BTC, "buy", D("0.1"), "twap", 60, 1),
         _started(h, s(t0), "100000", [(0, "0.1")], s(t0 + 60))],
        [ev.SlicingHeld(h, s(t0 + 5), ev.HOLD_MARKET_DATA_UNAVAILABLE, "sim", BTC, "stream down", 95.0)],
        [ev.SlicingResumed(h, s(t0 + 17.5), ev.HOLD_MARKET_DATA_UNAVAILABLE, 12.5)],
        [order], _fill(h, coid, s(t0 + 21), 0, "h1", "0.1", "99990", "1", "taker")
        + [_slice(h, s(t0 + 21), 0, 1, "filled", "0.1", "0.1", "99990", "100000", "1", "5", "0.02",
                  taker="0.1", scheduled=s(t0))],
        [ev.TwapCompleted(h, s(t0 + 21), D("0.1"), D("0"), D("99990"), D("100000"), D("-1.0000"), D("1"),
                          "filled", D("100000"), D("-1.0000"))],
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | URL:
    target: Path | URL = tmp_path / "held.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    migrate.upgrade(target)
    asyncio.run(build(target, executions=(exec_a, exec_held)))  # type: ignore[arg-type]
    return target


def query(db: Path | URL, sql: str) -> list[dict[str, str]]:
    where = db.render_as_string(hide_password=False) if isinstance(db, URL) else str(db)
    result = CliRunner().invoke(main, ["sql", "--db", where, "--csv", sql])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def test_held_seconds_is_in_the_timing_views_and_the_downgrade_restores_the_old_ones(db: Path | URL) -> None:
    for view in ("execution_analysis", "twap_executions"):
        got = {r["execution_id"]: r for r in query(db, f"SELECT * FROM {view} ORDER BY execution_id")}
        assert float(got[HELD]["held_seconds"]) == 12.5 and float(got["exec-a"]["held_seconds"]) == 0
        assert float(got["exec-a"]["paused_seconds"]) == 30  # beside the paused time, unchanged
    summary = query(db, "SELECT * FROM daily_execution_summary ORDER BY 1, 2, 3")
    analysis = query(db, "SELECT * FROM execution_analysis ORDER BY execution_id")

    migrate.downgrade(db, "0011_execution_account")
    for view in ("execution_analysis", "twap_executions"):
        assert "held_seconds" not in query(db, f"SELECT * FROM {view} ORDER BY execution_id")[0]
    old = query(db, "SELECT * FROM execution_analysis ORDER BY execution_id")
    assert old == [{k: v for k, v in r.items() if k != "held_seconds"} for r in analysis]
    assert query(db, "SELECT * FROM daily_execution_summary ORDER BY 1, 2, 3") == summary

    migrate.upgrade(db)
    assert query(db, "SELECT * FROM execution_analysis ORDER BY execution_id") == analysis


def test_genesis_report_shows_the_held_seconds_beside_the_paused_ones(db: Path | URL) -> None:
    where = db.render_as_string(hide_password=False) if isinstance(db, URL) else str(db)
    reports = {}
    for execution in (HELD, "exec-a"):
        result = CliRunner().invoke(main, ["report", "--db", where, execution, "--json", "--no-store"])
        assert result.exit_code == 0, result.output
        reports[execution] = json.loads(result.output)["window"]
    assert reports[HELD]["held_seconds"] == 12.5 and reports[HELD]["paused_seconds"] == 0.0
    assert reports["exec-a"]["held_seconds"] == 0.0 and reports["exec-a"]["paused_seconds"] == 30.0
    text = CliRunner().invoke(main, ["report", "--db", where, HELD]).output  # stored this time
    assert "held_seconds" in text and "12.5" in text
    stored = query(db, f"SELECT held_seconds, paused_seconds FROM execution_analyses WHERE execution_id = '{HELD}'")
    assert [(float(r["held_seconds"]), float(r["paused_seconds"])) for r in stored] == [(12.5, 0.0)]
